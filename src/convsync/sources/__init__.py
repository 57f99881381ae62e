"""Source connectors, loaded lazily by type name."""

from __future__ import annotations

import importlib
from typing import Any

#: type name → "module:Class"; a new source is one module plus one line here
SOURCE_TYPES: dict[str, str] = {
    "csv": "convsync.sources.csv:CsvSource",
    "sql": "convsync.sources.sql:SqlSource",
    "amocrm": "convsync.sources.amocrm.source:AmoCrmSource",
    "bitrix24": "convsync.sources.bitrix24.source:Bitrix24Source",
    "hubspot": "convsync.sources.hubspot.source:HubSpotSource",
    "metrica_logs": "convsync.sources.metrica_logs.source:MetricaLogsSource",
    "ga4_bigquery": "convsync.sources.ga4.source:Ga4BigQuerySource",
    "webhook": "convsync.webhooks.source:WebhookSource",
}


def load_source_class(type_name: str) -> type[Any]:
    module_name, _, class_name = SOURCE_TYPES[type_name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
