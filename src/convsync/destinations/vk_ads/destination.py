"""The ``vk_ads`` destination: offline events through one VK Ads pixel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from convsync.destinations.base import Destination, upload_not_built
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
from convsync.destinations.vk_ads.payload import build_event, event_identifier
from convsync.model import Conversion, OutboundRow, RowOutcome


class VkAdsDestination(Destination[VkAdsConfig, VkAdsTarget]):
    """Sends each conversion as a server-to-server pixel event."""

    type = "vk_ads"
    # The tracker takes one event per request, so a batch only groups rows for claiming.
    # It is kept small because the tracker gives no receipt: rows of a batch a crash
    # interrupts end up `uncertain` (never re-sent automatically), and fewer is better.
    max_batch = 200

    def has_identifier(self, conversion: Conversion, target: VkAdsTarget) -> bool:
        return event_identifier(conversion.ids) is not None

    def build(self, conversion: Conversion, target: VkAdsTarget, now: datetime) -> dict[str, Any]:
        return build_event(
            conversion,
            self.config.pixel_id,
            target,
            now,
            max_event_age=self.config.max_event_age,
        )

    def connect(self) -> None:
        raise upload_not_built("VK Ads", 4)

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        raise upload_not_built("VK Ads", 4)

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "pixel_id": self.config.pixel_id}
