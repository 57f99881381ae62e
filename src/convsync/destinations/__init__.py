"""Destination connectors, loaded lazily by type name so heavy clients (google-ads)
load only when configured."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from convsync.destinations.base import Destination

#: type name → "module:Class"; a new platform is one package plus one line here
DESTINATION_TYPES: dict[str, str] = {
    "google_ads": "convsync.destinations.google_ads.destination:GoogleAdsDestination",
    "yandex_metrica": "convsync.destinations.yandex_metrica.destination:MetricaDestination",
    "vk_ads": "convsync.destinations.vk_ads.destination:VkAdsDestination",
}

#: (type name, ``api`` of its config) → "module:Class", where one type speaks two APIs
API_VARIANTS: dict[tuple[str, str], str] = {
    (
        "google_ads",
        "data_manager",
    ): "convsync.destinations.google_ads.datamanager.destination:DataManagerDestination",
}


#: the types whose destinations take adjustments (retractions, restatements): what the
#: config checks need to know without importing a type's client (google-ads costs a
#: second and 70 MB); a test keeps it equal to the classes' ``supports_adjustments``
ADJUSTABLE_TYPES = frozenset({"google_ads"})


def load_destination_class(type_name: str, api: str | None = None) -> type[Any]:
    path = API_VARIANTS.get((type_name, api or "")) or DESTINATION_TYPES[type_name]
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def new_destination(name: str, config: BaseModel) -> Destination[BaseModel, BaseModel]:
    """The destination of one ``destinations.<name>`` config: its type's class, or the
    class of the API the config chose (``google_ads`` with ``api: data_manager``)."""
    type_name = str(getattr(config, "type"))  # noqa: B009 - every destination config has one
    api = getattr(config, "api", None)
    cls = load_destination_class(type_name, api if isinstance(api, str) else None)
    return cls(name, config)  # type: ignore[no-any-return]
