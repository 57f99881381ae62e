"""A destination for proving the delivery machinery: it records every batch it is given
and answers with scripted outcomes (the real platforms' sends come in later issues)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from convsync.core.errors import RowRejected
from convsync.core.model import Conversion, OutboundRow, RowOutcome
from convsync.destinations.base import Destination
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget

Script = Callable[[Sequence[OutboundRow]], list[RowOutcome]]


def deliver_all(rows: Sequence[OutboundRow]) -> list[RowOutcome]:
    return [RowOutcome.delivered() for _ in rows]


class ScriptedDestination(Destination[VkAdsConfig, VkAdsTarget]):
    """Matches on ``vk_click_id``; ``script`` decides each batch's outcomes (or raises)."""

    type = "vk_ads"
    max_batch = 3

    def __init__(self, name: str, config: VkAdsConfig, script: Script = deliver_all) -> None:
        super().__init__(name, config)
        self.script = script
        self.batches: list[list[dict[str, Any]]] = []
        self.recovered: list[list[int]] = []
        self.recover_verdicts: Callable[[Sequence[OutboundRow]], list[RowOutcome | None]] = (
            lambda rows: [None] * len(rows)
        )

    def has_identifier(self, conversion: Conversion, target: VkAdsTarget) -> bool:
        return conversion.ids.vk_click_id is not None

    def build(self, conversion: Conversion, target: VkAdsTarget, now: datetime) -> dict[str, Any]:
        if conversion.ids.vk_click_id == "reject-me":
            raise RowRejected("bad_click_id", "this click id is refused in pre-flight")
        return {
            "order": conversion.order_id,
            "goal": target.goal,
            "click": conversion.ids.vk_click_id,
        }

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        self.batches.append([dict(r.payload) for r in rows])
        return self.script(rows)

    def recover(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        self.recovered.append([r.delivery_id for r in rows])
        return self.recover_verdicts(rows)

    @property
    def sent_orders(self) -> list[str]:
        return [p["order"] for batch in self.batches for p in batch]
