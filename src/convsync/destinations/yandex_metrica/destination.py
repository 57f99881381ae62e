"""The ``yandex_metrica`` destination: offline conversions and calls of one counter — the
way conversions reach Yandex.Direct, which has no upload API of its own.

Exactly once. Metrica has no de-duplication: every file it stores counts. A file's
``comment`` is its batch id, and a batch is never sent in a second file while the fate
of its first is unknown. An upload that fails in a way that leaves open whether Metrica
stored it (``UploadMaybeStored``) makes its rows ``unclear``: every later try first
looks the comment up in the counter's list of uploads — found: ``delivered:
recovered``; listed without it: sent again under the same comment; the list not
answering: still unclear. Rows still unclear when the run's tries end wait in
``sending`` under their batch for the recovery step of a later run, which looks again
(``recover``), with the record of the upload (status ``UNCLEAR``) telling since when
and how often (``recall``); see ``convsync.sync.delivery`` and ``uploads``. A batch a crash
left in ``sending`` is looked up the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.http import new_session
from convsync.core.logging import register_secret
from convsync.core.model import (
    UNCLEAR_CODE,
    Conversion,
    OutboundRow,
    OutcomeKind,
    RowOutcome,
    UploadRecord,
)
from convsync.destinations.base import Destination
from convsync.destinations.yandex_metrica import uploads
from convsync.destinations.yandex_metrica.classify import UploadMaybeStored
from convsync.destinations.yandex_metrica.client import NETWORK_CODES, MetricaClient, Uploading
from convsync.destinations.yandex_metrica.config import MetricaConfig, MetricaTarget
from convsync.destinations.yandex_metrica.csvfile import build_csv
from convsync.destinations.yandex_metrica.payload import CALLS, build_row, identifier_columns

#: what Metrica accepts in a comment: digits, Latin and Cyrillic letters, ≤ 255
_COMMENT = re.compile(r"[0-9A-Za-zА-Яа-яЁё]{1,240}")
#: rows of a batch that could not go because the destination stopped after another part
#: of the batch went: due again after this long (a daily quota: at its reset)
_HELD_FOR = timedelta(minutes=15)
#: why a batch a crash left in ``sending`` may be at Metrica
_INTERRUPTED = "the process that sent it stopped before noting Metrica's answer"
#: what a failed look-up can raise
_LOOKUP_FAILED = (TransientError, PermanentError, DestinationUnavailable)


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
        #: records for the worker, by their batch id (the last one of a batch wins)
        self._uploads: dict[str, UploadRecord] = {}
        self._listing: dict[str, Uploading] | None = None
        #: uploads of unclear fate, by comment: looked up before anything else happens
        #: to their rows
        self._unclear: dict[str, uploads.Unclear] = {}
        #: comment → (record batch id, mixed batch) of uploads once unclear: a record
        #: made later for the same rows keeps that key
        self._keys: dict[str, tuple[str, bool]] = {}
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
        self._unclear.clear()
        self._keys.clear()
        self._kinds.clear()
        self._delivered.clear()
        register_secret(self.config.token)
        self._client = MetricaClient(self.name, self.config, self.session_factory(), self.clock)
        try:
            self._call(self._client.check_access)
        except TransientError as exc:
            # a network failure's line names the host, the cause and the key to check
            # already; the table's pending column says the deliveries wait
            said = (
                str(exc)
                if exc.code in NETWORK_CODES
                else f"{exc}; deliveries of destinations.{self.name} stay pending until the "
                "next run."
            )
            raise DestinationUnavailable("metrica_unreachable", said) from None

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        if self._stopped is not None:
            # the worker keeps what earlier tries of these rows settled: an upload left
            # unclear stays unclear (its rows wait in sending), the others are held
            raise self._stopped
        parts = self._parts(rows)
        # a part an earlier try left unclear always gets outcomes: an exception would
        # leave the worker holding that try's unclear outcome for rows now settled
        answer_each = len(parts) > 1 or any(p.comment in self._unclear for p in parts)
        outcomes: list[RowOutcome | None] = [None] * len(rows)
        for part in parts:
            try:
                if self._stopped is not None:
                    raise self._stopped
                outcome = self._send_part(part)
            except DestinationUnavailable as exc:
                went = self._delivered.intersection(p.batch_id for p in parts) or any(
                    p.comment in self._unclear for p in parts
                )
                if not went and not answer_each:
                    raise  # nothing of these batches went: every row stays pending
                # another part went (or may have): raising would drop its outcome, so
                # this part waits instead
                outcome = self._held(part, exc)
            except TransientError as exc:
                if not answer_each:
                    raise
                outcome = RowOutcome.transient(exc.code, str(exc), exc.retry_after)
            except PermanentError as exc:
                if not answer_each:
                    raise
                outcome = RowOutcome.rejected(exc.code, exc.message)
            for i in part.indexes:
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def recover(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        """Rows of a batch left in ``sending`` by a crash, or waiting there while their
        upload's fate was unclear: delivered if Metrica has an upload whose comment is
        the batch's (its record is kept for reconciling); ``None`` if its list has none,
        and the worker sends them again under the same batch id; unclear (waiting
        longer) or, after days of that, uncertain if the list does not answer."""
        try:
            listing: dict[str, Uploading] | None = self._uploadings()
            failure: Exception | None = None
        except _LOOKUP_FAILED as exc:
            listing, failure = None, exc
            if isinstance(exc, DestinationUnavailable):
                self._stopped = exc  # nothing else goes this run; the rows wait
        outcomes: list[RowOutcome | None] = [None] * len(rows)
        for part in self._parts(rows):
            unclear = self._unclear.get(part.comment)
            if listing is None:
                if unclear is None:
                    unclear = self._now_unclear(part, _INTERRUPTED)
                assert failure is not None
                outcome: RowOutcome | None = self._still_unclear(part, unclear, failure)
            elif part.comment in listing:
                outcome = self._found(part, listing[part.comment])
            else:
                if unclear is not None:
                    self._ruled_out(part, unclear)
                outcome = None
            for i in part.indexes:
                outcomes[i] = outcome
        return outcomes

    def recall(self, uploads_unclear: Sequence[UploadRecord]) -> None:
        now = self.clock()
        for record in uploads_unclear:
            unclear = uploads.Unclear.of(record, now)
            if unclear.comment:
                self._unclear[unclear.comment] = unclear
                self._keys[unclear.comment] = (unclear.key, unclear.mixed)

    def take_uploads(self) -> list[UploadRecord]:
        taken, self._uploads = list(self._uploads.values()), {}
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
        unclear = self._unclear.get(comment)
        if unclear is not None:
            # an earlier try ended unclearly: Metrica may have the file already
            try:
                found = self._uploadings(fresh=True).get(comment)
            except _LOOKUP_FAILED as exc:
                if isinstance(exc, DestinationUnavailable):
                    self._stopped = exc
                return self._still_unclear(part, unclear, exc)
            if found is not None:
                return self._found(part, found)
            self._ruled_out(part, unclear)
        data = build_csv([row.payload["row"] for row in part.rows])
        try:
            uploading = self._call(client.upload, data, comment=comment, calls=part.calls)
        except UploadMaybeStored as exc:
            return self._waiting(part, self._now_unclear(part, str(exc)), exc.retry_after)
        return self._accepted(part, uploading)

    def _held(self, part: _Part, exc: DestinationUnavailable) -> RowOutcome:
        """A part that cannot go now that the destination stopped: it waits for the
        quota's reset (or a while) — or, if it may be at Metrica, for its look-up."""
        unclear = self._unclear.get(part.comment)
        if unclear is not None:
            return self._waiting(part, unclear)
        retry_at = exc.retry_at or self.clock() + _HELD_FOR
        return RowOutcome.deferred(exc.code, exc.message, retry_at)

    # --- uploads of unclear fate ---

    def _now_unclear(self, part: _Part, why: str) -> uploads.Unclear:
        key, mixed = self._key(part)
        unclear = uploads.Unclear(
            key, part.batch_id, part.comment, part.calls, mixed, self.clock(), why
        )
        self._unclear[part.comment] = unclear
        self._keys[part.comment] = (key, mixed)
        return unclear

    def _still_unclear(
        self, part: _Part, unclear: uploads.Unclear, failure: Exception
    ) -> RowOutcome:
        """A look-up failed: the rows wait longer, or are given up on (uncertain)."""
        unclear.lookups += 1
        unclear.lookup_error = str(failure)
        retry_after = failure.retry_after if isinstance(failure, TransientError) else None
        return self._waiting(part, unclear, retry_after)

    def _waiting(
        self, part: _Part, unclear: uploads.Unclear, retry_after: float | None = None
    ) -> RowOutcome:
        now = self.clock()
        goals = [row.conversion.goal for row in part.rows]
        look_again_at = uploads.next_lookup(unclear, now)
        if look_again_at is None:
            del self._unclear[part.comment]
            record, message = uploads.given_up_unclear(
                unclear, destination=self.name, goals=goals, counter_id=self.config.counter_id
            )
            self._uploads[record.batch_id] = record
            return RowOutcome(OutcomeKind.UNCERTAIN, UNCLEAR_CODE, message)
        record = uploads.unclear_record(
            unclear, destination=self.name, goals=goals, look_again_at=look_again_at
        )
        self._uploads[record.batch_id] = record
        return RowOutcome.unclear(UNCLEAR_CODE, record.message or "", look_again_at, retry_after)

    def _found(self, part: _Part, uploading: Uploading) -> RowOutcome:
        self._unclear.pop(part.comment, None)
        return self._accepted(part, uploading, recovered=True)

    def _ruled_out(self, part: _Part, unclear: uploads.Unclear) -> None:
        """The list answered without the comment: the file was not stored."""
        del self._unclear[part.comment]
        record = uploads.not_stored_record(
            unclear,
            destination=self.name,
            goals=[row.conversion.goal for row in part.rows],
            now=self.clock(),
        )
        self._uploads[record.batch_id] = record  # until the file sent again replaces it

    # --- one upload ---

    def _accepted(
        self, part: _Part, uploading: Uploading, *, recovered: bool = False
    ) -> RowOutcome:
        key, mixed = self._key(part)
        now = self.clock()
        record = uploads.new_record(
            destination=self.name,
            batch_id=key,
            uploading=uploading,
            rows=[row.payload["row"] for row in part.rows],
            goals=[row.conversion.goal for row in part.rows],
            comment=part.comment,
            mixed_batch=mixed,
            now=now,
            check_now=recovered,
        )
        self._uploads[record.batch_id] = record
        self._delivered.add(part.batch_id)
        if not recovered:
            return RowOutcome.delivered()
        return RowOutcome.delivered(
            "recovered",
            f"Metrica already has upload {uploading.id} of this batch (comment "
            f"{part.comment}), so it was not sent again.",
        )

    def _key(self, part: _Part) -> tuple[str, bool]:
        """The batch id of the part's upload record, and whether its batch is mixed
        (conversions and calls: two uploads, the calls one under ``<batch>-calls``)."""
        known = self._keys.get(part.comment)
        if known is not None:
            return known
        mixed = len(self._kinds.get(part.batch_id, ())) > 1
        key = part.batch_id + uploads.CALLS_BATCH_SUFFIX if part.calls and mixed else part.batch_id
        return key, mixed

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
        run for recovery, again each time an unclear upload needs checking."""
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
