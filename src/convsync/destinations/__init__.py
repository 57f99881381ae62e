"""Destination connectors, loaded lazily by type name so heavy clients (google-ads)
load only when configured."""

from __future__ import annotations

import importlib
from typing import Any

#: type name → "module:Class"; a new platform is one package plus one line here
DESTINATION_TYPES: dict[str, str] = {
    "google_ads": "convsync.destinations.google_ads.destination:GoogleAdsDestination",
    "yandex_metrica": "convsync.destinations.yandex_metrica.destination:MetricaDestination",
    "vk_ads": "convsync.destinations.vk_ads.destination:VkAdsDestination",
}


def load_destination_class(type_name: str) -> type[Any]:
    module_name, _, class_name = DESTINATION_TYPES[type_name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
