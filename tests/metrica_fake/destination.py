"""A ``MetricaDestination`` configured for a running fake (no pytest needed)."""

from __future__ import annotations

from typing import Any

from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.destinations.yandex_metrica.config import MetricaConfig

from .server import FakeMetrica


def destination_for(
    fake: FakeMetrica, name: str = "metrica", **overrides: Any
) -> MetricaDestination:
    """A destination on ``fake`` (overrides: config keys, e.g. ``token``, ``counter_id``)."""
    return MetricaDestination(
        name, MetricaConfig.model_validate(fake.destination_config(**overrides))
    )
