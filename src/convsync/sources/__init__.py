"""Source connectors: the registry of source types, loaded lazily by type name.

A new source type is one package (its ``Source`` class and its config model) plus one
line in :data:`SOURCE_TYPES`; the config file's ``sources.<name>`` union is built from
this table (``config/models.py``), so nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convsync.core.classes import load_class

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class SourceType:
    """Where a source type's classes are, as ``"module:Class"`` (imported when used)."""

    source: str  #: its ``Source``
    config: str  #: the model of a ``sources.<name>`` block of that type


#: type name → its classes, in the order the config's errors and schema list them
SOURCE_TYPES: dict[str, SourceType] = {
    "csv": SourceType(
        "convsync.sources.csv:CsvSource", "convsync.sources.csv_config:CsvSourceConfig"
    ),
    "sql": SourceType(
        "convsync.sources.sql:SqlSource", "convsync.sources.sql_config:SqlSourceConfig"
    ),
    "amocrm": SourceType(
        "convsync.sources.amocrm.source:AmoCrmSource",
        "convsync.sources.amocrm.config:AmoCrmSourceConfig",
    ),
    "bitrix24": SourceType(
        "convsync.sources.bitrix24.source:Bitrix24Source",
        "convsync.sources.bitrix24.config:Bitrix24SourceConfig",
    ),
    "hubspot": SourceType(
        "convsync.sources.hubspot.source:HubSpotSource",
        "convsync.sources.hubspot.config:HubSpotSourceConfig",
    ),
    "metrica_logs": SourceType(
        "convsync.sources.metrica_logs.source:MetricaLogsSource",
        "convsync.sources.metrica_logs.config:MetricaLogsSourceConfig",
    ),
    "ga4_bigquery": SourceType(
        "convsync.sources.ga4.source:Ga4BigQuerySource",
        "convsync.sources.ga4.config:Ga4BigQuerySourceConfig",
    ),
    "webhook": SourceType(
        "convsync.sources.webhook.source:WebhookSource",
        "convsync.sources.webhook.config:WebhookSourceConfig",
    ),
}


def load_source_class(type_name: str) -> type[Any]:
    return load_class(SOURCE_TYPES[type_name].source)


def source_config_models() -> dict[str, type[BaseModel]]:
    """Each source type's config model, by type name."""
    return {name: load_class(kind.config) for name, kind in SOURCE_TYPES.items()}
