"""The ``yandex_metrica`` destination: offline conversions and calls of one counter — the
way conversions reach Yandex.Direct, which has no upload API of its own."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from convsync.destinations.base import Destination
from convsync.destinations.yandex_metrica import uploads
from convsync.destinations.yandex_metrica.classify import UploadMaybeStored
from convsync.destinations.yandex_metrica.client import MetricaClient, Uploading
from convsync.destinations.yandex_metrica.config import MetricaConfig, MetricaTarget
from convsync.destinations.yandex_metrica.csvfile import build_csv
from convsync.destinations.yandex_metrica.payload import CALLS, build_row, identifier_columns
from convsync.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.http import new_session
from convsync.logging import register_secret
from convsync.model import Conversion, OutboundRow, RowOutcome, UploadRecord

#: what Metrica accepts in a comment: digits, Latin and Cyrillic letters, ≤ 255
_COMMENT = re.compile(r"[0-9A-Za-zА-Яа-яЁё]{1,240}")
#: rows of a batch that could not go because the destination stopped after another part
#: of the batch went: due again after this long (a daily quota: at its reset)
_HELD_FOR = timedelta(minutes=15)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def comment_for(batch_id: str, *, calls: bool) -> str:
    """The upload's comment: the batch id (a uuid's hex), ``calls`` added for the calls
    file of the batch — how an interrupted batch is found again."""
    base = (
        batch_id
        if _COMMENT.fullmatch(batch_id)
        else hashlib.sha256(batch_id.encode()).hexdigest()[:32]
    )
    return f"{base}calls" if calls else base


@dataclass(frozen=True, slots=True)
class _Part:
    """The rows of one upload: one batch, one kind (conversions or calls)."""

    batch_id: str
    calls: bool
    indexes: list[int]
    rows: list[OutboundRow]

    @property
    def comment(self) -> str:
        return comment_for(self.batch_id, calls=self.calls)


class MetricaDestination(Destination[MetricaConfig, MetricaTarget]):
    """Uploads one CSV file per batch (a second one for calls) to one Metrica counter and
    follows each upload until Metrica has processed it."""

    type = "yandex_metrica"
    # One batch is one CSV upload: the plan is one file per counter per run, because the
    # scarce resource is requests (5,000 a day per user), not rows. The cap only bounds
    # the memory of one batch; 100,000 rows are about 10 MB, far below the 1 GB limit.
    max_batch = 100_000
    # Metrica serves 3 requests at once per Yandex account, shared with the account's other
    # counters and tools: one request at a time per destination stays well inside it.
    max_in_flight = 1
    reconciles = True

    def __init__(self, name: str, config: MetricaConfig) -> None:
        super().__init__(name, config)
        #: the clock of upload records and quota resets; replaceable in tests
        self.clock: Callable[[], datetime] = _utc_now
        #: (connect, read) seconds; the read part covers Metrica taking in 100,000 rows
        self.request_timeout: float | tuple[float, float] = (10.0, 120.0)
        #: a new HTTP session per run (tests and benchmarks may count or wrap it)
        self.session_factory: Callable[[], requests.Session] = lambda: new_session(
            timeout=self.request_timeout
        )
        #: HTTP requests made since this object was built (for figures)
        self.requests_made = 0
        self._client: MetricaClient | None = None
        self._uploads: list[UploadRecord] = []
        self._listing: dict[str, Uploading] | None = None
        self._maybe_sent: set[str] = set()
        self._kinds: dict[str, set[bool]] = {}
        self._delivered: set[str] = set()
        self._stopped: DestinationUnavailable | None = None

    # --- payloads (pure) ---

    def has_identifier(self, conversion: Conversion, target: MetricaTarget) -> bool:
        return bool(identifier_columns(conversion.ids, calls=target.type == "calls"))

    def attribute_fields(self, target: MetricaTarget) -> frozenset[str]:
        return frozenset(target.call_fields.values())

    def build(self, conversion: Conversion, target: MetricaTarget, now: datetime) -> dict[str, Any]:
        return build_row(conversion, self.config.counter_id, target, now)

    # --- the network ---

    def connect(self) -> None:
        """Check the token and the counter with one cheap call, so that a bad token stops
        the destination before its backlog is claimed."""
        self.close()
        self._listing, self._stopped = None, None
        self._maybe_sent.clear()
        self._kinds.clear()
        self._delivered.clear()
        register_secret(self.config.token)
        self._client = MetricaClient(self.name, self.config, self.session_factory(), self.clock)
        try:
            self._call(self._client.check_access)
        except TransientError as exc:
            raise DestinationUnavailable(
                "metrica_unreachable",
                f"{exc}; deliveries of destinations.{self.name} stay pending until the next run.",
            ) from None

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        if self._stopped is not None:
            raise self._stopped
        parts = self._parts(rows)
        outcomes: list[RowOutcome | None] = [None] * len(rows)
        held: RowOutcome | None = None
        for part in parts:
            try:
                outcome = held or self._send_part(part)
            except DestinationUnavailable as exc:
                if not self._delivered.intersection(p.batch_id for p in parts):
                    raise  # nothing of these batches went: every row stays pending
                # another part of the batch went: raising would drop its outcome, so
                # this part and the ones after it wait instead
                retry_at = exc.retry_at or self.clock() + _HELD_FOR
                outcome = held = RowOutcome.deferred(exc.code, exc.message, retry_at)
            except TransientError as exc:
                if len(parts) == 1:
                    raise
                outcome = RowOutcome.transient(exc.code, str(exc), exc.retry_after)
            except PermanentError as exc:
                if len(parts) == 1:
                    raise
                outcome = RowOutcome.rejected(exc.code, exc.message)
            for i in part.indexes:
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def recover(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        """Rows of a batch left in ``sending`` by a crash: delivered if Metrica has an
        upload whose comment is the batch's (its record is kept for reconciling); else
        ``None``, and the worker sends them again."""
        try:
            listing = self._uploadings()
        except TransientError as exc:
            # the rows stay in sending and are looked up again when their lease runs out
            raise DestinationUnavailable(
                "metrica_unreachable", f"interrupted batches could not be looked up: {exc}"
            ) from None
        outcomes: list[RowOutcome | None] = [None] * len(rows)
        for part in self._parts(rows):
            found = listing.get(part.comment)
            if found is None:
                continue
            outcome = self._accepted(part, found, recovered=True)
            for i in part.indexes:
                outcomes[i] = outcome
        return outcomes

    def take_uploads(self) -> list[UploadRecord]:
        taken, self._uploads = self._uploads, []
        return taken

    def reconcile(self, uploads_due: Sequence[UploadRecord], now: datetime) -> list[UploadRecord]:
        """Ask once about each due upload; a transient failure ends the round (what was
        not asked is asked next run)."""
        if self._stopped is not None:
            raise self._stopped
        client = self._require()
        updates: list[UploadRecord] = []
        for record in uploads_due:
            try:
                uploading = self._call(client.uploading, record.external_id)
            except TransientError:
                if not updates:
                    raise
                break
            except PermanentError as exc:
                updates.append(uploads.given_up(record, exc.message, now))
                continue
            updates.append(
                uploads.follow_up(record, uploading, counter_id=self.config.counter_id, now=now)
            )
        return updates

    def close(self) -> None:
        if self._client is not None:
            self.requests_made += self._client.requests
            self._client.close()
            self._client = None

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "counter_id": self.config.counter_id}

    # --- one upload ---

    def _send_part(self, part: _Part) -> RowOutcome:
        client = self._require()
        comment = part.comment
        if comment in self._maybe_sent:
            # the last try ended unclearly: Metrica may have the file already
            found = self._uploadings(fresh=True).get(comment)
            if found is not None:
                self._maybe_sent.discard(comment)
                return self._accepted(part, found, recovered=True)
        data = build_csv([row.payload["row"] for row in part.rows])
        try:
            uploading = self._call(client.upload, data, comment=comment, calls=part.calls)
        except UploadMaybeStored:
            self._maybe_sent.add(comment)
            raise
        self._maybe_sent.discard(comment)
        return self._accepted(part, uploading)

    def _accepted(
        self, part: _Part, uploading: Uploading, *, recovered: bool = False
    ) -> RowOutcome:
        mixed = len(self._kinds.get(part.batch_id, ())) > 1
        now = self.clock()
        self._uploads.append(
            uploads.new_record(
                destination=self.name,
                batch_id=(
                    part.batch_id + uploads.CALLS_BATCH_SUFFIX
                    if part.calls and mixed
                    else part.batch_id
                ),
                uploading=uploading,
                rows=[row.payload["row"] for row in part.rows],
                goals=[row.conversion.goal for row in part.rows],
                comment=part.comment,
                mixed_batch=mixed,
                now=now,
                check_now=recovered,
            )
        )
        self._delivered.add(part.batch_id)
        if not recovered:
            return RowOutcome.delivered()
        return RowOutcome.delivered(
            "recovered",
            f"Metrica already has upload {uploading.id} of this batch (comment "
            f"{part.comment}), so it was not sent again.",
        )

    def _parts(self, rows: Sequence[OutboundRow]) -> list[_Part]:
        parts: dict[tuple[str, bool], _Part] = {}
        for i, row in enumerate(rows):
            if row.batch_id is None:
                raise ValueError("a Metrica row needs its batch id: it is the upload's comment")
            calls = row.payload.get("type") == CALLS
            key = (row.batch_id, calls)
            if key not in parts:
                parts[key] = _Part(row.batch_id, calls, [], [])
            parts[key].indexes.append(i)
            parts[key].rows.append(row)
            self._kinds.setdefault(row.batch_id, set()).add(calls)
        return list(parts.values())

    def _uploadings(self, *, fresh: bool = False) -> dict[str, Uploading]:
        """The counter's uploads by comment (the newest of a comment wins); read once per
        run for recovery, again when an unclear failure needs checking."""
        if self._listing is None or fresh:
            listing = self._call(self._require().uploadings)
            self._listing = {}
            for item in sorted(listing, key=lambda u: u.id):
                if item.comment:
                    self._listing[item.comment] = item
        return self._listing

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A client call; a used-up daily quota stops every later call of the run."""
        try:
            return method(*args, **kwargs)
        except DestinationUnavailable as exc:
            if exc.retry_at is not None:
                self._stopped = exc
            raise

    def _require(self) -> MetricaClient:
        if self._client is None:
            raise RuntimeError("MetricaDestination.connect() must be called first")
        return self._client
