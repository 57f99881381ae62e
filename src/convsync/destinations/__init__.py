"""Destination connectors: the registry of destination types, loaded lazily by type name
so heavy clients (google-ads) load only when a destination of theirs connects.

A new platform is one package (its ``Destination`` class, its config and target
models) plus one line in :data:`DESTINATION_TYPES`; the config file's
``destinations.<name>`` union and the ``send.<destination>`` models are built from
this table (``config/models.py``), so nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convsync.core.classes import load_class

if TYPE_CHECKING:
    from pydantic import BaseModel

    from convsync.destinations.base import Destination


@dataclass(frozen=True)
class DestinationType:
    """Where a destination type's classes are, as ``"module:Class"`` (imported when
    used), and what the config checks must know without importing them."""

    destination: str  #: its ``Destination``
    config: str  #: the model of a ``destinations.<name>`` block of that type
    target: str  #: the model of a goal's ``send.<name>`` block
    #: it takes adjustments (retractions, restatements): a test keeps this equal to the
    #: class's ``supports_adjustments`` (asking the class would import its client)
    adjustable: bool = False


_GOOGLE = "convsync.destinations.google_ads"
#: type name → its classes, in the order the config's errors and schema list them
DESTINATION_TYPES: dict[str, DestinationType] = {
    "google_ads": DestinationType(
        f"{_GOOGLE}.destination:GoogleAdsDestination",
        f"{_GOOGLE}.config:GoogleAdsConfig",
        f"{_GOOGLE}.config:GoogleAdsTarget",
        adjustable=True,
    ),
    "yandex_metrica": DestinationType(
        "convsync.destinations.yandex_metrica.destination:MetricaDestination",
        "convsync.destinations.yandex_metrica.config:MetricaConfig",
        "convsync.destinations.yandex_metrica.config:MetricaTarget",
    ),
    "vk_ads": DestinationType(
        "convsync.destinations.vk_ads.destination:VkAdsDestination",
        "convsync.destinations.vk_ads.config:VkAdsConfig",
        "convsync.destinations.vk_ads.config:VkAdsTarget",
    ),
}

#: (type name, ``api`` of its config) → "module:Class", where one type speaks two APIs
API_VARIANTS: dict[tuple[str, str], str] = {
    ("google_ads", "data_manager"): f"{_GOOGLE}.datamanager.destination:DataManagerDestination",
}


def adjustable_types() -> frozenset[str]:
    """The types whose destinations take adjustments (retractions, restatements)."""
    return frozenset(name for name, kind in DESTINATION_TYPES.items() if kind.adjustable)


def destination_config_models() -> dict[str, type[BaseModel]]:
    """Each destination type's config model, by type name."""
    return {name: load_class(kind.config) for name, kind in DESTINATION_TYPES.items()}


def target_models() -> dict[str, type[BaseModel]]:
    """Each destination type's model of a goal's ``send.<destination>`` block."""
    return {name: load_class(kind.target) for name, kind in DESTINATION_TYPES.items()}


def load_destination_class(type_name: str, api: str | None = None) -> type[Any]:
    path = API_VARIANTS.get((type_name, api or "")) or DESTINATION_TYPES[type_name].destination
    return load_class(path)


def new_destination(name: str, config: object) -> Destination[BaseModel, BaseModel]:
    """The destination of one ``destinations.<name>`` config: its type's class, or the
    class of the API the config chose (``google_ads`` with ``api: data_manager``)."""
    type_name = str(getattr(config, "type"))  # noqa: B009 - every destination config has one
    api = getattr(config, "api", None)
    cls = load_destination_class(type_name, api if isinstance(api, str) else None)
    return cls(name, config)  # type: ignore[no-any-return]
