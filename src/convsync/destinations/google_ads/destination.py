"""The ``google_ads`` destination: offline click conversions (and EC4L) for one account."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from convsync.destinations.base import Destination, upload_not_built
from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget
from convsync.destinations.google_ads.payload import (
    build_click_conversion,
    click_id,
    has_hashed_contact,
)
from convsync.model import Conversion, OutboundRow, RowOutcome


class GoogleAdsDestination(Destination[GoogleAdsConfig, GoogleAdsTarget]):
    """Uploads ClickConversions to the conversion customer of one Google Ads account."""

    type = "google_ads"
    #: UploadClickConversionsRequest takes at most 2,000 conversions
    max_batch = 2000

    def has_identifier(self, conversion: Conversion, target: GoogleAdsTarget) -> bool:
        if click_id(conversion.ids) is not None:
            return True
        return target.enhanced_for_leads and has_hashed_contact(conversion.ids)

    def build(
        self, conversion: Conversion, target: GoogleAdsTarget, now: datetime
    ) -> dict[str, Any]:
        return build_click_conversion(conversion, self.config.customer_id, target, now)

    def connect(self) -> None:
        raise upload_not_built("Google Ads", 3)

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        raise upload_not_built("Google Ads", 3)

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "customer_id": self.config.customer_id}
