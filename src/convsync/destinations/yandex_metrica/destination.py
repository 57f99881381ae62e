"""The ``yandex_metrica`` destination: offline conversions of one counter (for Yandex.Direct)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from convsync.destinations.base import Destination, upload_not_built
from convsync.destinations.yandex_metrica.config import MetricaConfig, MetricaTarget
from convsync.destinations.yandex_metrica.payload import build_row, identifier_columns
from convsync.model import Conversion, OutboundRow, RowOutcome


class MetricaDestination(Destination[MetricaConfig, MetricaTarget]):
    """Uploads CSV files of offline conversions to one Metrica counter."""

    type = "yandex_metrica"
    # One batch is one CSV upload: the plan is one file per counter per run, because the
    # scarce resource is requests (5,000 a day per user), not rows. The cap only bounds
    # the memory of one batch; 100,000 rows are a few megabytes, far below the 1 GB limit.
    max_batch = 100_000

    def has_identifier(self, conversion: Conversion, target: MetricaTarget) -> bool:
        return bool(identifier_columns(conversion.ids))

    def build(self, conversion: Conversion, target: MetricaTarget, now: datetime) -> dict[str, Any]:
        return build_row(conversion, self.config.counter_id, target, now)

    def connect(self) -> None:
        raise upload_not_built("Yandex.Metrica", 4)

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        raise upload_not_built("Yandex.Metrica", 4)

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "counter_id": self.config.counter_id}
