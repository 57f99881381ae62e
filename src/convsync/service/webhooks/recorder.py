"""Webhook records into the ledger, many requests to one transaction.

Every request handler hands its records to one writer thread and waits; the writer
takes whatever has queued up while the previous transaction committed, maps it to
goals and writes it in one transaction (group commit), then answers each waiting
handler. A sender is answered 2xx only after that commit, so what was acknowledged is
in the ledger even if the process dies the next instant; what was not acknowledged
the sender sends again, and the ledger's conversion keys make the repeat harmless.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from convsync.config.models import LoadedConfig
from convsync.core.identity import contact_in
from convsync.core.model import Conversion, RawRecord, RecordRejection
from convsync.store.ledger import Ledger
from convsync.store.recording import prepare_chunk
from convsync.sync.goals import GoalMapper

log = structlog.get_logger("convsync.webhooks")

#: the most requests one transaction takes
MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class RecordFate:
    """What became of one posted record."""

    record_id: str
    #: new | duplicate | rejected | no_goal
    status: str
    problems: tuple[RecordRejection, ...] = ()


@dataclass(slots=True)
class _Submission:
    source: str
    records: list[RawRecord]
    future: Future[list[RecordFate]] = field(default_factory=Future)


@dataclass(slots=True)
class _Mapped:
    conversions: list[Conversion] = field(default_factory=list)
    rejections: list[RecordRejection] = field(default_factory=list)


class RecorderStopped(Exception):
    """The recorder is shutting down: the request is not taken (the sender retries)."""


class WebhookRecorder:
    """Maps and records webhook records, one writer thread, batched transactions."""

    def __init__(
        self,
        loaded: LoadedConfig,
        ledger: Ledger,
        destinations: Mapping[str, Any],
        clock: Callable[[], datetime],
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        #: conversions first recorded by webhooks carry this in place of a run's id
        self.run_id = "webhooks-" + uuid.uuid4().hex[:8]
        self.mappers = {
            name: GoalMapper(loaded, name, destinations) for name in loaded.app.webhook_sources
        }
        self._queue: queue.Queue[_Submission | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="webhook-writer", daemon=True)
        self._stopping = threading.Event()
        #: what this writer committed: transactions, and requests in them
        self.transactions = 0
        self.requests = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the writer."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join()
        log.info("webhook writer stopped", **self.totals())

    def totals(self) -> dict[str, int]:
        """Requests recorded since start, and the transactions that held them."""
        return {"requests": self.requests, "transactions": self.transactions}

    def submit(self, source: str, records: list[RawRecord]) -> Future[list[RecordFate]]:
        """Queue ``records`` of ``source``; the future gives each one's fate once the
        transaction holding them has committed."""
        if self._stopping.is_set():
            raise RecorderStopped("convsync is shutting down")
        submission = _Submission(source, records)
        self._queue.put(submission)
        return submission.future

    # --- the writer thread -------------------------------------------------------

    def _loop(self) -> None:
        done = False
        while not done:
            first = self._queue.get()
            batch: list[_Submission] = []
            if first is None:
                done = True
            else:
                batch.append(first)
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                else:
                    batch.append(item)
            if batch:
                self._write_answering(batch)
        # a request queued while the stop was being signalled: not taken, retried later
        while True:
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                return
            if late is not None:
                late.future.set_exception(RecorderStopped("convsync is shutting down"))

    def _write_answering(self, batch: list[_Submission]) -> None:
        try:
            fates = self._write(batch)
        # the thread's edge: the waiting requests answer 503 and the writer goes on
        except Exception as exc:
            if len(batch) > 1:
                # one request that breaks the mapping must not fail the others with it:
                # each goes again in a transaction of its own
                for submission in batch:
                    self._write_answering([submission])
                return
            log.exception("webhook write failed", source=batch[0].source, requests=1)
            batch[0].future.set_exception(exc)
            return
        for submission, fate in zip(batch, fates, strict=True):
            submission.future.set_result(fate)

    def _write(self, batch: Sequence[_Submission]) -> list[list[RecordFate]]:
        now = self.clock()
        mapped: list[dict[str, _Mapped]] = []
        conversions: list[Conversion] = []
        rejections: list[RecordRejection] = []
        deliveries = []
        adjustments = []
        for submission in batch:
            mapper = self.mappers[submission.source]
            result = mapper.map(submission.records)
            conversions.extend(result.conversions)
            deliveries.extend(result.deliveries)
            rejections.extend(result.rejections)
            adjustments.extend(result.adjustments)
            by_record: dict[str, _Mapped] = {}
            for conversion in result.conversions:
                by_record.setdefault(conversion.record_id, _Mapped()).conversions.append(conversion)
            for rejection in result.rejections:
                by_record.setdefault(rejection.record_id or "", _Mapped()).rejections.append(
                    rejection
                )
            mapped.append(by_record)
        prepared = prepare_chunk(
            conversions,
            deliveries,
            dialect=self.ledger.dialect,
            run_id=self.run_id,
            now=now,
            adjustments=adjustments,
        )
        counts = self.ledger.write_chunk(
            prepared,
            run_id=self.run_id,
            source=batch[0].source,
            rejections=rejections,
            cursor=None,
            files_done=[],
            now=now,
        )
        self.transactions += 1
        self.requests += len(batch)
        unclaimed = set(counts.new_keys)
        fates = []
        for submission, by_record in zip(batch, mapped, strict=True):
            region = self.mappers[submission.source].phone_region
            fates.append([self._fate(r, by_record, unclaimed, region) for r in submission.records])
        return fates

    @staticmethod
    def _fate(
        record: RawRecord, by_record: dict[str, _Mapped], unclaimed: set[str], region: str | None
    ) -> RecordFate:
        # a rejection of a record whose id is an e-mail or a phone keeps no record id
        # (identity_in_wrong_column): it is that record's
        hidden = contact_in(record.record_id, "id", region) is not None
        found = by_record.get("" if hidden else record.record_id, _Mapped())
        problems = tuple(found.rejections)
        if found.conversions:
            keys = {c.key for c in found.conversions}
            # the first request of a batch to carry a key is the one that recorded it
            new = keys & unclaimed
            unclaimed -= new
            return RecordFate(record.record_id, "new" if new else "duplicate", problems)
        if problems:
            return RecordFate(record.record_id, "rejected", problems)
        return RecordFate(record.record_id, "no_goal")
