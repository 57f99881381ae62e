"""The deliver step for one destination: recover expired claims, claim due rows, run
pre-flight, send in batches with retries, and write every row's outcome.

Uploads of unclear fate. A platform without de-duplication (Yandex.Metrica) must never
get a row in a second upload while the first one's fate is unknown — its answer lost to
a timeout, a dropped connection or a 5xx after the file went out, and its list of
uploads not answering either. The destination says so with an ``unclear`` outcome. The
worker retries such rows inside the run like transient ones (the destination looks the
upload up before sending anything again); rows still unclear at the end stay in
``sending`` under the batch id they went with (the upload is found by it), code
``upload_unclear``, their lease moved to the next look-up (``retry_at`` shows it), and
the upload's record (status ``UNCLEAR``) is written in the same transaction. A claim
only takes ``pending`` and due ``deferred`` rows, so nothing can put them in another
upload; when the lease runs out, the recovery step of a later run (any replica: the
takeover locks the rows) takes them back — as it does rows a crash left in ``sending``
— and the destination looks again: found, they are ``delivered`` (``recovered``) and the
upload is followed as any other; not there, they are sent again under the same batch id;
still no answer, they wait again (longer each time), and after days of failed look-ups
they become ``uncertain`` for ``convsync retry --uncertain``. A crash anywhere in this
leaves the rows in ``sending`` with some lease, which ends in the same recovery step.

A deferral's backoff counts from when the outcome is known (after the run's retries),
not from the start of the send, so rows deferred by a slow send are not due at once.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel

from convsync.config.models import DeliveryConfig
from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import (
    UNCLEAR_CODE,
    ClaimedDelivery,
    DeliveryState,
    OutboundRow,
    OutcomeKind,
    RowOutcome,
    Transition,
    UploadRecord,
)
from convsync.core.retry import transient_retry
from convsync.destinations.base import Destination
from convsync.store.ledger import Ledger
from convsync.sync.outbound import prepare
from convsync.sync.progress import NO_PROGRESS, ProgressReporter
from convsync.sync.transitions import RETRIED, DestinationStats, held, transition_of

log = structlog.get_logger("convsync.delivery")


class _StoppedMidway(DestinationUnavailable):
    """The destination stopped on a retry, after an earlier try settled some rows."""

    def __init__(self, cause: DestinationUnavailable, settled: list[Transition]) -> None:
        super().__init__(cause.code, cause.message, cause.retry_at)
        self.settled = settled


class _RowsStillTransient(TransientError):
    """Some rows of a batch failed transiently: try those rows again."""


class DeliveryWorker:
    """Delivers the due rows of one destination."""

    def __init__(
        self,
        destination: Destination[BaseModel, BaseModel],
        targets: Mapping[str, Mapping[str, BaseModel]],
        ledger: Ledger,
        config: DeliveryConfig,
        *,
        run_id: str,
        clock: Callable[[], datetime],
        stop: threading.Event,
        sleep: Callable[[float], None] | None = None,
        initial_wait: float = 5.0,
        progress: ProgressReporter = NO_PROGRESS,
    ) -> None:
        self.dest = destination
        self.targets = targets
        self.ledger = ledger
        self.config = config
        self.run_id = run_id
        self.clock = clock
        self.stop = stop
        self.sleep = sleep
        self.initial_wait = initial_wait
        self.progress = progress
        self.stats = DestinationStats()
        self._stats_lock = threading.Lock()  # batches may be sent from several threads

    def run(self) -> DestinationStats:
        self.progress.begin("send", self.dest.name)
        try:
            self.dest.stop = self.stop
            self.dest.connect()
            # what the platform said of earlier uploads first: an adjustment waits for its
            # conversion to be processed there, and a verdict learnt now lets it go now
            answering = self.dest.reconciles and not self.stop.is_set() and self._reconcile()
            self._recover()
            due = self.ledger.count_due(destination=self.dest.name, now=self.clock())
            self.progress.expect("send", self.dest.name, due)
            if self.dest.max_in_flight > 1:
                self._deliver_overlapped(self.dest.max_in_flight)
            else:
                while not self.stop.is_set():
                    rows = self.ledger.claim(**self._claim_args())
                    if not rows:
                        break
                    self._deliver(rows, False)
            # and what became due during the run: an upload a recovery found is asked at once
            if answering and not self.stop.is_set():
                self._reconcile()
        except DestinationUnavailable as exc:
            self.stats.stopped = f"{exc.code}: {exc.message}"
            log.warning(
                "destination stopped for this run; its deliveries stay pending",
                destination=self.dest.name,
                code=exc.code,
                reason=exc.message,
            )
        finally:
            self.progress.end("send", self.dest.name)
            made = self.dest.upload_requests()
            if made is not None:
                self.stats.requests = made
            self.dest.close()
        return self.stats

    def _deliver_overlapped(self, depth: int) -> None:
        """Up to ``depth`` batches at once: the next batch is claimed and built while
        the platform works on the last one, so neither side waits for the other."""
        with ThreadPoolExecutor(depth, thread_name_prefix=f"send-{self.dest.name}") as pool:
            in_flight: deque[Future[None]] = deque()
            try:
                while not self.stop.is_set():
                    if len(in_flight) >= depth:
                        in_flight.popleft().result()
                        continue
                    rows = self.ledger.claim(**self._claim_args())
                    if not rows:
                        break
                    # each batch's log lines keep the run's context (run_id)
                    context = contextvars.copy_context()
                    in_flight.append(pool.submit(context.run, self._deliver, rows, False))
            finally:
                wait(in_flight)
            for future in in_flight:
                future.result()  # the first failure of the batches still in flight

    def _reconcile(self) -> bool:
        """Ask the platform about uploads of earlier batches that are not final yet; an
        upload not due yet is asked a later run (a run never waits for one). False when
        the platform could not answer now (it is asked again next run)."""
        now = self.clock()
        due = self.ledger.due_uploads(destination=self.dest.name, now=now)
        if not due:
            return True
        try:
            updates = self.dest.reconcile(due, now)
        except TransientError as exc:
            log.warning(
                "upload status not available; asking again next run",
                destination=self.dest.name,
                code=exc.code,
                reason=str(exc),
            )
            return False
        self.ledger.update_uploads(updates, run_id=self.run_id, now=self.clock())
        for update in updates:
            self.stats.uploads[update.status] += 1
            if update.final and update.message:
                log.warning(
                    "upload processed with problems",
                    destination=self.dest.name,
                    upload=update.external_id,
                    status=update.status,
                    reason=update.message,
                    **dict(update.details),
                )
        return True

    def _claim_args(self) -> dict[str, Any]:
        return {
            "destination": self.dest.name,
            "limit": self.dest.max_batch,
            "lease": self.config.lease,
            "batch_id": uuid.uuid4().hex,
            "run_id": self.run_id,
            "now": self.clock(),
        }

    def _recover(self) -> None:
        while not self.stop.is_set():
            args = self._claim_args()
            del args["batch_id"]  # a recovered row keeps the batch it was sent in
            rows = self.ledger.reclaim_expired(**args)
            if not rows:
                break
            self.stats.recovered += len(rows)
            # read now that these rows are ours: no other process changes their uploads
            unclear = self.ledger.unclear_uploads(destination=self.dest.name)
            self.dest.recall(unclear)
            waiting = {str(u.details.get("batch")) for u in unclear}
            looked_up = sorted({r.batch_id or "" for r in rows if r.batch_id in waiting})
            interrupted = sorted({r.batch_id or "" for r in rows if r.batch_id not in waiting})
            if looked_up:
                log.info(
                    "looking up uploads whose answer was lost",
                    destination=self.dest.name,
                    rows=sum(r.batch_id in waiting for r in rows),
                    batches=looked_up,
                )
            if interrupted:
                log.warning(
                    "recovering deliveries left in sending by an interrupted run",
                    destination=self.dest.name,
                    rows=sum(r.batch_id not in waiting for r in rows),
                    old_batches=interrupted,
                )
            self._deliver(rows, True)
        if not self.stop.is_set():
            # uploads whose rows pre-flight settled before they were looked up
            closed = self.ledger.close_unclear_without_rows(
                destination=self.dest.name, now=self.clock()
            )
            if closed:
                log.warning(
                    "uploads of unclear fate closed: their rows were settled before a look-up",
                    destination=self.dest.name,
                    batches=closed,
                )

    def _deliver(self, rows: Sequence[ClaimedDelivery], recovering: bool) -> None:
        # conversions and adjustments go in requests of their own (different RPCs on
        # Google); conversions first, so an adjustment can follow its conversion
        conversions = [r for r in rows if r.adjustment is None]
        adjustments = [r for r in rows if r.adjustment is not None]
        if conversions:
            try:
                done = self._deliver_group(conversions, recovering=recovering)
            except DestinationUnavailable as exc:
                self._apply([held(r.delivery_id, exc) for r in adjustments])
                raise
            # an adjustment claimed with its own conversion follows it once it went through
            states = {t.delivery_id: t.state for t in done}
            now_in = {
                r.conversion.key: states[r.delivery_id]
                for r in conversions
                if r.delivery_id in states
            }
            changed_at = self.clock()
            adjustments = [
                dataclasses.replace(
                    r, base_state=now_in[r.conversion.key], base_changed_at=changed_at
                )
                if r.conversion.key in now_in
                else r
                for r in adjustments
            ]
        if adjustments:
            self._deliver_group(adjustments, recovering=recovering)

    def _deliver_group(
        self, rows: Sequence[ClaimedDelivery], *, recovering: bool
    ) -> list[Transition]:
        now = self.clock()
        outbound, transitions = prepare(
            self.dest, self.targets, rows, now, wait=self.config.retry_backoff
        )
        if recovering and outbound:
            verdicts = self.dest.recover(outbound)
            resend = []
            for row, verdict in zip(outbound, verdicts, strict=True):
                if verdict is None:
                    resend.append(row)
                else:
                    transitions.append(self._transition(row, verdict, now))
            outbound = resend
        try:
            if outbound:
                transitions += self._send(outbound)
        except DestinationUnavailable as exc:
            if isinstance(exc, _StoppedMidway):
                transitions += exc.settled
            sent = {t.delivery_id for t in transitions}
            transitions += [held(r.delivery_id, exc) for r in outbound if r.delivery_id not in sent]
            raise
        finally:
            # also after a recovery that found the whole batch arrived: its upload
            self._apply(transitions, self.dest.take_uploads())
        return transitions

    def _send(self, outbound: list[OutboundRow]) -> list[Transition]:
        """Send with quick retries of transient failures, then defer what still fails."""
        results: dict[int, RowOutcome] = {}
        remaining = list(outbound)
        with self._stats_lock:
            self.stats.batches += 1

        def attempt() -> None:
            nonlocal remaining
            with self._stats_lock:
                self.stats.requests += 1
            outcomes = self.dest.send(remaining)
            if len(outcomes) != len(remaining):
                raise RuntimeError(
                    f"{self.dest.type}.send returned {len(outcomes)} outcomes "
                    f"for {len(remaining)} rows"
                )
            still: list[OutboundRow] = []
            waits: list[float] = []
            for row, outcome in zip(remaining, outcomes, strict=True):
                results[row.delivery_id] = outcome
                if outcome.kind in RETRIED:
                    still.append(row)
                    waits.append(outcome.retry_after or 0.0)
            remaining = still
            if still:
                first = results[still[0].delivery_id]
                raise _RowsStillTransient(
                    f"{len(still)} rows failed transiently: {first.code}: {first.message}",
                    retry_after=max(waits) or None,
                    code=first.code or "transient",
                )

        retrying = transient_retry(
            attempts=self.config.retries_in_run + 1,
            initial_wait=self.initial_wait,
            sleep=self.sleep,
        )
        try:
            for tries in retrying:
                with tries:
                    attempt()
        except TransientError as exc:
            # a row an earlier try left unclear keeps that outcome: it may have arrived
            for row in remaining:
                results.setdefault(row.delivery_id, RowOutcome.transient(exc.code, str(exc)))
        except PermanentError as exc:
            for row in remaining:
                results.setdefault(row.delivery_id, RowOutcome.rejected(exc.code, exc.message))
        except DestinationUnavailable as exc:
            # rows an earlier try already settled keep their outcome (a VK event sent is
            # not sent again, a file that may be stored is not given up); only the rest
            # are held
            now = self.clock()
            settled = [
                self._transition(row, results[row.delivery_id], now)
                for row in outbound
                if row.delivery_id in results
                and results[row.delivery_id].kind is not OutcomeKind.TRANSIENT
            ]
            raise _StoppedMidway(exc, settled) from exc
        # backoff counts from the answer: a send that took minutes of retries must not
        # leave its rows due again at once
        now = self.clock()
        return [
            self._transition(row, results[row.delivery_id], now)
            for row in outbound
            if row.delivery_id in results
        ]

    def _transition(self, row: OutboundRow, outcome: RowOutcome, now: datetime) -> Transition:
        return transition_of(row, outcome, now, self.config)

    def _apply(
        self, transitions: Sequence[Transition], uploads: Sequence[UploadRecord] = ()
    ) -> None:
        if not transitions and not uploads:
            return
        self.ledger.apply(transitions, run_id=self.run_id, now=self.clock(), uploads=uploads)
        with self._stats_lock:
            self._count(transitions)
            self.progress.advance("send", self.dest.name, len(transitions))
        waiting = [t for t in transitions if t.state is DeliveryState.SENDING]
        if waiting:
            log.warning(
                "upload of unclear fate: its rows wait for a look-up",
                destination=self.dest.name,
                rows=len(waiting),
                code=waiting[0].code,
                next_lookup=min(t.lease_until or self.clock() for t in waiting).isoformat(),
                reason=waiting[0].message,
            )
        given_up = [
            t for t in transitions if t.state is DeliveryState.UNCERTAIN and t.code == UNCLEAR_CODE
        ]
        if given_up:
            log.warning(
                "upload of unclear fate given up: its rows are uncertain",
                destination=self.dest.name,
                rows=len(given_up),
                reason=given_up[0].message,
            )

    def _count(self, transitions: Sequence[Transition]) -> None:
        self.stats.count(transitions)
