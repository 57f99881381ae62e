"""The ``google_ads`` destination with ``api: data_manager``: offline conversions of one
Google Ads account through the Data Manager API (``IngestEvents``), restatements as the
same event with a new value, and each request's processing results read back later
(``RetrieveRequestStatus``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from convsync.core.errors import DestinationUnavailable, TransientError
from convsync.core.model import Adjustment, Conversion, OutboundRow, RowOutcome, UploadRecord
from convsync.destinations.base import Destination
from convsync.destinations.google_ads.config import (
    REQUEST_TIMEOUT,
    GoogleAdsConfig,
    GoogleAdsTarget,
)
from convsync.destinations.google_ads.datamanager import payload, status

# The network side (google-auth, gRPC, the client library) is imported where it is used:
# a dry run builds payloads with this class and never touches it.
if TYPE_CHECKING:
    from convsync.destinations.google_ads.client import Addresses
    from convsync.destinations.google_ads.datamanager.ingest import BatchResult
    from convsync.destinations.google_ads.datamanager.transport import IngestionClient


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DataManagerDestination(Destination[GoogleAdsConfig, GoogleAdsTarget]):
    """Sends events to one Google Ads account (the operating account) through the Data
    Manager API and follows each accepted request until Google has processed it.

    ``connect`` refreshes the credentials once per run (bad credentials stop the
    destination before a row is claimed). Exactly once: every event carries the order id
    as ``transaction_id``, and Google takes an event with a ``transaction_id`` it already
    has for the conversion action as an adjustment of that conversion, never a second
    one — so a batch left in ``sending`` by a crash is simply sent again (``recover``).
    """

    type = "google_ads"
    #: IngestEventsRequest takes at most 2,000 events
    max_batch = 2000
    supports_adjustments = True  # restatements; a retraction is skipped (see payload)
    supports_validation = True
    #: gRPC channels are thread-safe; Google suggests up to 10 concurrent requests
    max_in_flight = 2
    reconciles = True
    #: Google processes a request "within 24 hours": a restatement sent sooner could reach
    #: it before its conversion (and be taken for the conversion, its value overwritten)
    adjustment_delay = timedelta(hours=24)

    def __init__(self, name: str, config: GoogleAdsConfig) -> None:
        super().__init__(name, config)
        #: the clock of outcome times (deferrals, uploads); replaceable in tests
        self.clock: Callable[[], datetime] = _utc_now
        #: seconds per request
        self.request_timeout = REQUEST_TIMEOUT
        #: requests made since this object was built (for figures)
        self.requests_made = 0
        self._client: IngestionClient | None = None
        self._uploads: list[UploadRecord] = []
        self._uploads_lock = threading.Lock()  # batches are sent from two threads
        self._stopped: DestinationUnavailable | None = None

    # --- payloads (pure) ---

    def has_identifier(self, conversion: Conversion, target: GoogleAdsTarget) -> bool:
        return payload.has_identifier(conversion, self.config, target)

    def attribute_fields(self, target: GoogleAdsTarget) -> frozenset[str]:
        return frozenset(target.custom_variables.values()) | payload.match_fields(self.config)

    def build(
        self, conversion: Conversion, target: GoogleAdsTarget, now: datetime
    ) -> dict[str, Any]:
        return payload.build_event(conversion, self.config, target, now)

    def build_adjustment(
        self, conversion: Conversion, adjustment: Adjustment, target: GoogleAdsTarget, now: datetime
    ) -> dict[str, Any]:
        return payload.build_restatement(conversion, adjustment, self.config, target, now)

    def shown_payload(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        return payload.shown(dict(event))

    # --- the network ---

    def connect(self) -> None:
        """Get an access token and open the channel; bad credentials raise
        ``DestinationUnavailable`` (``auth_failed``, ``auth_key_file`` …) here, once."""
        from convsync.destinations.google_ads import client as google_client

        self.close()
        self._stopped = None
        credentials, secrets = google_client.connected(
            self.name, self.config, timeout=self.request_timeout
        )
        # the gRPC client (~0.2 s of imports) only once the credentials work
        from convsync.destinations.google_ads.datamanager.transport import IngestionClient

        self._client = IngestionClient(
            credentials, self.config.endpoint, timeout=self.request_timeout, secrets=secrets
        )

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        result = self._run(rows, validate_only=False)
        now = self.clock()
        records: list[UploadRecord] = []
        for accepted in result.accepted:
            records.extend(
                status.new_records(
                    destination=self.name,
                    request_id=accepted.request_id,
                    rows={
                        action: [(rows[i].delivery_id, rows[i].conversion.goal) for i in positions]
                        for action, positions in accepted.rows.items()
                    },
                    batch_id=rows[0].batch_id if rows else None,
                    now=now,
                )
            )
        with self._uploads_lock:
            self._uploads.extend(records)
        return result.outcomes

    def validate(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        """The same requests with ``validate_only``: Google checks every event and records
        nothing; a row without a violation comes back ``delivered("valid")``."""
        return self._run(rows, validate_only=True).outcomes

    def recover(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        """Send again (the default): an event whose ``transaction_id`` Google already has
        for the conversion action adjusts that conversion (the same value: no change)
        instead of counting a second one."""
        return super().recover(rows)

    def take_uploads(self) -> list[UploadRecord]:
        with self._uploads_lock:
            taken, self._uploads = self._uploads, []
        return taken

    def reconcile(self, uploads_due: Sequence[UploadRecord], now: datetime) -> list[UploadRecord]:
        """One ``RetrieveRequestStatus`` per request (its records are the request's
        conversion actions); a transient failure ends the round (the rest is asked about
        next run)."""
        from google.api_core import exceptions as core_exceptions

        from convsync.destinations.google_ads.datamanager import classify
        from convsync.destinations.google_ads.datamanager.failures import decode

        client = self._require()
        by_request: dict[str, list[UploadRecord]] = {}
        for record in uploads_due:
            by_request.setdefault(record.external_id, []).append(record)
        updates: list[UploadRecord] = []
        for request_id, records in by_request.items():
            try:
                response = client.retrieve(request_id)
            except core_exceptions.GoogleAPICallError as exc:
                failure = decode(exc, client.secrets)
                error = classify.call_error(
                    failure,
                    destination=self.name,
                    customer_id=self.config.customer_id,
                    now=now,
                    addresses=self._addresses(),
                )
                if isinstance(error, TransientError | DestinationUnavailable):
                    if not updates:  # nothing learnt: the worker logs it, next run asks
                        raise TransientError(
                            str(error), code=getattr(error, "code", "status")
                        ) from None
                    break
                updates += [status.given_up(r, failure.label, now) for r in records]
                continue
            found = {
                s.destination.reference or s.destination.product_destination_id: s
                for s in response.request_status_per_destination
            }
            updates += [
                status.follow_up(r, found.get(str(r.details.get("conversion_action"))), now)
                for r in records
            ]
        return updates

    def close(self) -> None:
        if self._client is not None:
            self.requests_made += self._client.calls
            self._client.close()
            self._client = None

    def upload_requests(self) -> int | None:
        return self._client.ingest_calls if self._client is not None else 0

    def describe(self) -> Mapping[str, Any]:
        return {
            **super().describe(),
            "api": self.config.api,
            "customer_id": self.config.customer_id,
        }

    def _run(self, rows: Sequence[OutboundRow], *, validate_only: bool) -> BatchResult:
        from convsync.destinations.google_ads.datamanager.ingest import BatchSender

        if self._stopped is not None:
            raise self._stopped
        client = self._require()
        client.timeout = self.request_timeout
        sender = BatchSender(
            self.config,
            client.ingest,
            destination=self.name,
            now=self.clock(),
            validate_only=validate_only,
            secrets=client.secrets,
            addresses=self._addresses(),
        )
        try:
            result = sender.run(rows)
        except DestinationUnavailable as exc:
            if exc.retry_at is not None:  # the day's quota: every later call waits too
                self._stopped = exc
            raise
        if result.stopped is not None:
            self._stopped = result.stopped
        return result

    def _addresses(self) -> Addresses:
        """Where the calls go, for the words of one that failed in the network."""
        from convsync.destinations.google_ads.client import Addresses

        return Addresses.of(self.name, self.config, self.request_timeout)

    def _require(self) -> IngestionClient:
        if self._client is None:
            raise RuntimeError("DataManagerDestination.connect() must be called first")
        return self._client
