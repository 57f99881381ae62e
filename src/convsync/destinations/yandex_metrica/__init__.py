"""Yandex.Metrica offline conversions: the way conversions reach Yandex.Direct.

The destination class is imported on first use only, like every destination: the config
layer imports ``yandex_metrica.config`` (which runs this file) and must not load the
uploader when no Metrica destination is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from convsync.destinations.yandex_metrica.destination import MetricaDestination

__all__ = ["MetricaDestination"]


def __getattr__(name: str) -> Any:
    if name == "MetricaDestination":
        from convsync.destinations.yandex_metrica.destination import MetricaDestination

        return MetricaDestination
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
