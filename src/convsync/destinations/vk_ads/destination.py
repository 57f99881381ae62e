"""The ``vk_ads`` destination: offline events through one VK Ads pixel."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from convsync.core.errors import DestinationUnavailable
from convsync.core.http import TimeoutSession, new_session
from convsync.core.logging import register_secret
from convsync.core.model import Conversion, OutboundRow, OutcomeKind, RowOutcome
from convsync.core.tokens import MemoryTokens
from convsync.destinations.base import Destination
from convsync.destinations.vk_ads.api import RateGovernor, VkAdsApi
from convsync.destinations.vk_ads.auth import VkAdsAuth
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
from convsync.destinations.vk_ads.payload import build_event, event_identifier
from convsync.destinations.vk_ads.tracker import (
    DEFAULT_TIMEOUT,
    EVENT_RETRIES,
    FIRST_RETRY_WAIT,
    TrackerClient,
)

#: what a row left in ``sending`` by a crash becomes (``recover``)
NO_RECEIPT = RowOutcome(
    OutcomeKind.UNCERTAIN,
    "no_receipt",
    "The run sending this conversion was interrupted, and the VK pixel tracker gives no "
    "receipt: the event may or may not have reached VK Ads, so it is not re-sent "
    "automatically. Check the pixel's statistics for the goal, then run `convsync retry "
    "--state uncertain` to send it again if it is missing.",
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class VkAdsDestination(Destination[VkAdsConfig, VkAdsTarget]):
    """Sends each conversion as a server-to-server pixel event.

    ``connect`` opens the tracker's session and thread pool for the run (no network);
    ``send`` sends a batch's events at once, at most ``concurrency`` in flight and
    ``max_events_per_second`` started per second, and retries an event the tracker
    certainly did not count (429, 5xx, no connection) in the batch, with a backoff of its
    own, while the pool goes on with the others (see ``tracker``): only what still fails
    comes back ``transient``. The Ads API client (``api``) is built on first use only, so
    a pixel-only destination never asks VK for a token.
    """

    type = "vk_ads"
    # The tracker takes one event per request, so a batch only groups rows for claiming.
    # It is small because the tracker gives no receipt: the rows of batches a kill
    # interrupts end up `uncertain` (never re-sent automatically), and a stop (SIGTERM,
    # `docker stop` waits 10 s) lets the batches in hand finish: 40 events are 2 s at the
    # default 20 events/s (a stop also ends the waits for in-batch retries). Two batches
    # in flight share the pool and the pacing, so the pool stays busy while the worker
    # records one batch and claims the next, or while one batch's retries wait.
    max_batch = 40
    max_in_flight = 2

    def __init__(self, name: str, config: VkAdsConfig) -> None:
        super().__init__(name, config)
        #: the clock of token expiry and Retry-After dates; replaceable in tests
        self.clock: Callable[[], datetime] = _utc_now
        #: (connect, read) seconds per request
        self.request_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT
        #: in-batch retries of an event certainly not counted, and the first backoff
        self.event_retries = EVENT_RETRIES
        self.first_retry_wait = FIRST_RETRY_WAIT
        self._tracker: TrackerClient | None = None
        self._api: VkAdsApi | None = None
        self._api_session: TimeoutSession | None = None

    # --- payloads (pure) ---

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

    # --- the network ---

    def connect(self) -> None:
        self.close()
        if self.config.client_secret is not None:
            register_secret(self.config.client_secret)
        self._tracker = TrackerClient(
            self.name,
            self.config.tracker_url,
            concurrency=self.config.concurrency,
            per_second=self.config.max_events_per_second,
            timeout=self.request_timeout,
            clock=self.clock,
            retries=self.event_retries,
            first_wait=self.first_retry_wait,
            stop=self.stop,
        )

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        if not rows:
            return []
        if self._tracker is None:
            raise RuntimeError("VkAdsDestination.connect() must be called before sending")
        if any(row.adjustment is not None for row in rows):
            raise ValueError("VK Ads takes no adjustments")
        return self._tracker.send(rows)

    def recover(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        """Never re-send: the tracker keeps no receipt and no idempotency key, so a row
        a crash left in ``sending`` may have been counted already (``uncertain``)."""
        return [NO_RECEIPT for _ in rows]

    def api(self) -> VkAdsApi:
        """The VK Ads API client of this run, built on first use; raises
        ``DestinationUnavailable`` when the destination has no API client configured."""
        if self._api is not None:
            return self._api
        if self.config.client_id is None or self.config.client_secret is None:
            raise DestinationUnavailable(
                "api_client_missing",
                f"destinations.{self.name} needs client_id and client_secret (the VK Ads API "
                "client of the account) for this.",
            )
        session = new_session(timeout=self.request_timeout, cookies=False)
        auth = VkAdsAuth(self.name, self.config, session, self.tokens or MemoryTokens(), self.clock)
        self._api_session = session
        self._api = VkAdsApi(
            self.config.api_base_url, auth, session, RateGovernor(self.name), self.clock
        )
        return self._api

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None
        if self._api_session is not None:
            self._api_session.close()
            self._api_session = None
        self._api = None

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "pixel_id": self.config.pixel_id}
