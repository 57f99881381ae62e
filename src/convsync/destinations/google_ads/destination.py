"""The ``google_ads`` destination: offline click conversions (and EC4L), their retractions
and restatements, for one account, through the official ``google-ads`` client (API v26)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from convsync.core.errors import DestinationUnavailable
from convsync.core.model import Adjustment, Conversion, OutboundRow, OutcomeKind, RowOutcome
from convsync.destinations.base import Destination
from convsync.destinations.google_ads.adjustments import build_conversion_adjustment
from convsync.destinations.google_ads.config import (
    REQUEST_TIMEOUT,
    GoogleAdsConfig,
    GoogleAdsTarget,
)
from convsync.destinations.google_ads.payload import (
    build_click_conversion,
    click_id,
    has_hashed_contact,
)

if TYPE_CHECKING:
    # google-ads and gRPC (~70 MB resident) load when the destination connects, not
    # when a dry run or the mapping process builds payloads
    from convsync.destinations.google_ads.upload import Uploader


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GoogleAdsDestination(Destination[GoogleAdsConfig, GoogleAdsTarget]):
    """Uploads ClickConversions and ConversionAdjustments to one Google Ads customer.

    ``connect`` builds the client and refreshes the credentials once per run; ``send``
    and ``validate`` make one request per batch (conversions and adjustments never mixed).
    After a row is deferred for the used-up daily quota, later calls in the run raise
    ``DestinationUnavailable`` with ``retry_at`` (the quota reset) without a request.
    """

    type = "google_ads"
    #: UploadClickConversionsRequest and UploadConversionAdjustmentsRequest take 2,000 rows
    max_batch = 2000
    supports_adjustments = True
    supports_validation = True
    #: two requests at once: the next batch is built while Google works on one (gRPC
    #: channels are thread-safe); Google asks to limit concurrency per customer
    max_in_flight = 2

    def __init__(self, name: str, config: GoogleAdsConfig) -> None:
        super().__init__(name, config)
        #: the clock of outcome times (deferrals); replaceable in tests
        self.clock: Callable[[], datetime] = _utc_now
        #: seconds per upload request
        self.request_timeout = REQUEST_TIMEOUT
        self._uploader: Uploader | None = None
        self._quota_reset: datetime | None = None

    # --- payloads (pure) ---

    def has_identifier(self, conversion: Conversion, target: GoogleAdsTarget) -> bool:
        if click_id(conversion.ids) is not None:
            return True
        return target.enhanced_for_leads and has_hashed_contact(conversion.ids)

    def attribute_fields(self, target: GoogleAdsTarget) -> frozenset[str]:
        return frozenset(target.custom_variables.values())

    def build(
        self, conversion: Conversion, target: GoogleAdsTarget, now: datetime
    ) -> dict[str, Any]:
        return build_click_conversion(conversion, self.config.customer_id, target, now)

    def build_adjustment(
        self, conversion: Conversion, adjustment: Adjustment, target: GoogleAdsTarget, now: datetime
    ) -> dict[str, Any]:
        return build_conversion_adjustment(
            conversion, adjustment, self.config.customer_id, target, now
        )

    # --- the network ---

    def connect(self) -> None:
        """Build the client and get an access token; bad credentials raise
        ``DestinationUnavailable`` (``auth_failed``, ``auth_key_file`` …) here, once."""
        from convsync.destinations.google_ads import client as google_client
        from convsync.destinations.google_ads.upload import Uploader

        self.close()
        self._quota_reset = None
        credentials, secrets = google_client.connected(
            self.name, self.config, timeout=self.request_timeout
        )
        self._uploader = Uploader(
            google_client.build_client(self.config, credentials),
            self.config.customer_id,
            timeout=self.request_timeout,
            secrets=secrets,
            addresses=google_client.Addresses.of(self.name, self.config, self.request_timeout),
        )

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        return self._upload(rows, validate_only=False)

    def validate(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        """The same request with ``validate_only``: Google checks the rows and records
        nothing. A row without an error comes back ``delivered("valid")``."""
        return self._upload(rows, validate_only=True)

    def recover(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        """Re-send (the default): every row carries an order id, so a replay of a
        conversion Google already has answers ORDER_ID_ALREADY_IN_USE or
        CLICK_CONVERSION_ALREADY_EXISTS (an adjustment: RESTATEMENT_ALREADY_EXISTS,
        CONVERSION_ALREADY_RETRACTED), which ``send`` reports as delivered (duplicate)."""
        return super().recover(rows)

    def close(self) -> None:
        """Close the gRPC channels of this run (``connect`` opens new ones)."""
        if self._uploader is not None:
            self._uploader.close()
            self._uploader = None

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "customer_id": self.config.customer_id}

    def _upload(self, rows: Sequence[OutboundRow], *, validate_only: bool) -> list[RowOutcome]:
        from convsync.destinations.google_ads.outcomes import DAILY_QUOTA_CODE, Batch
        from convsync.destinations.google_ads.upload import ADJUSTMENTS, CONVERSIONS

        if not rows:
            return []
        now = self.clock()
        if self._quota_reset is not None and now < self._quota_reset:
            raise DestinationUnavailable(
                DAILY_QUOTA_CODE,
                "The daily quota of Google Ads API operations is used up; deliveries wait "
                f"until it resets at {self._quota_reset:%Y-%m-%d %H:%M} UTC.",
                retry_at=self._quota_reset,
            )
        if self._uploader is None:
            raise RuntimeError("GoogleAdsDestination.connect() must be called before sending")
        adjusting = rows[0].adjustment is not None
        if any((row.adjustment is not None) is not adjusting for row in rows):
            raise ValueError("a Google Ads batch is all conversions or all adjustments")
        self._uploader.timeout = self.request_timeout
        batch = Batch(
            rows=rows,
            rows_field=ADJUSTMENTS if adjusting else CONVERSIONS,
            now=now,
            destination=self.name,
            customer_id=self.config.customer_id,
            validate_only=validate_only,
        )
        try:
            outcomes = self._uploader.upload(batch)
        except DestinationUnavailable as exc:
            if exc.retry_at is not None:
                self._quota_reset = exc.retry_at
            raise
        for outcome in outcomes:
            if outcome.kind is OutcomeKind.DEFERRED and outcome.code == DAILY_QUOTA_CODE:
                self._quota_reset = outcome.retry_at
        return outcomes
