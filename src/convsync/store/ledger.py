"""The Ledger: the one object the pipeline, scheduler and CLI use to reach the database.

Each public method is one transaction. Write transactions start with ``BEGIN
IMMEDIATE`` on SQLite (see ``engine.py``) and run at READ COMMITTED on PostgreSQL,
where the claim queries lock rows themselves. The SQL lives in the modules named after
the step that uses it (``recording``, ``claims``, ``runs``, ``reports``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import OperationalError

from convsync.core.errors import UserError
from convsync.core.model import (
    AdjustmentCandidate,
    ClaimedDelivery,
    Conversion,
    DeliveryState,
    FileMark,
    PlannedDelivery,
    RecordRejection,
    SourceState,
    Transition,
    UploadRecord,
)
from convsync.store import adjusting, claims, daily, engine, migrate, recording, reports, runs
from convsync.store import funnel as funnel_store
from convsync.store import uploads as upload_store
from convsync.store.alerting import AlertLedger
from convsync.store.funnel import Funnel, FunnelRow
from convsync.store.gauges import DeliveryTally, delivery_tallies
from convsync.store.platform_reports import PlatformReportLedger
from convsync.store.recording import RecordCounts
from convsync.store.reports import FailureRow
from convsync.store.rows import fetch_claimed
from convsync.store.runs import RunRow

__all__ = ["FailureRow", "FunnelRow", "Ledger", "LedgerReadOnlyError", "RecordCounts", "RunRow"]

#: rows per page when streaming due deliveries (each page is its own short transaction)
_DUE_PAGE = 1000


def _aware(*moments: datetime | None) -> None:
    """Refuse naive datetimes up front, as a plain ValueError on both databases (inside
    SQLAlchemy the column type's refusal would arrive wrapped in a StatementError)."""
    for moment in moments:
        if moment is not None and moment.utcoffset() is None:
            raise ValueError(f"naive datetime {moment.isoformat()} given to the ledger")


class LedgerReadOnlyError(RuntimeError):
    """A write was attempted on a ledger opened with ``read_only=True`` (a dry-run bug)."""


class Ledger(PlatformReportLedger, AlertLedger):
    """Conversions, their deliveries and everything else convsync remembers."""

    def __init__(self, opened: engine.LedgerEngine, *, read_only: bool) -> None:
        self._opened = opened
        self._engine = opened.engine
        self.read_only = read_only
        self.url_for_display = opened.display_url
        if read_only and opened.in_memory and opened.display_url != "sqlite://":
            # a dry run or a report before the first run: the file is not made
            self.url_for_display += " (not created yet)"

    @classmethod
    def open(cls, url: str, *, read_only: bool = False) -> Ledger:
        """Open (and upgrade to this code's schema) the ledger at ``url``.

        ``read_only`` (dry-run) changes nothing anywhere: a SQLite file that does not
        exist yet is stood in for by an empty in-memory ledger; an existing ledger whose
        schema is not this code's raises ``UserError`` instead of being migrated.
        """
        parsed = engine.parse_url(url)
        opened = engine.create(parsed, read_only=read_only)
        try:
            if read_only and not opened.in_memory:
                migrate.require_head(opened.engine, opened.display_url)
            elif read_only:
                migrate.create_standin(opened.engine)
            else:
                migrate.upgrade(opened.engine, opened.display_url)
        except OperationalError as exc:
            # unreachable server, wrong password, unwritable folder: the user's to fix
            opened.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise UserError(
                f"cannot open the ledger at {opened.display_url}: {reason} "
                "(check --database-url / CONVSYNC_DATABASE_URL)"
            ) from None
        except BaseException:
            opened.dispose()
            raise
        return cls(opened, read_only=read_only)

    def close(self) -> None:
        self._opened.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = " read-only" if self.read_only else ""
        return f"<Ledger {self.url_for_display}{mode}>"

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self.read_only:
            raise LedgerReadOnlyError(f"the ledger {self.url_for_display} is open read-only")
        with self._engine.connect() as connection:
            connection.execution_options(**{engine.WRITE: True})
            with connection.begin():
                yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as connection, connection.begin():
            yield connection

    # --- record step -------------------------------------------------------------

    def source_state(self, source: str) -> SourceState:
        with self._read() as connection:
            return recording.source_state(connection, source)

    def existing_keys(self, keys: Collection[str]) -> set[str]:
        with self._read() as connection:
            return recording.existing_keys(connection, keys)

    def record_chunk(
        self,
        *,
        run_id: str,
        source: str,
        conversions: Sequence[Conversion],
        deliveries: Sequence[PlannedDelivery],
        rejections: Sequence[RecordRejection],
        cursor: Mapping[str, Any] | None,
        files_done: Sequence[FileMark],
        now: datetime,
        adjustments: Sequence[AdjustmentCandidate] = (),
    ) -> RecordCounts:
        """Record a chunk in ONE transaction: new conversions (deduplicated within the
        chunk and against the ledger), the planned deliveries of the new ones only,
        the adjustments of conversions recorded before, rejections (upserted), the
        cursor and the processed files."""
        _aware(now)
        prepared = recording.prepare_chunk(
            conversions,
            deliveries,
            dialect=self.dialect,
            run_id=run_id,
            now=now,
            adjustments=adjustments,
        )
        return self.write_chunk(
            prepared,
            run_id=run_id,
            source=source,
            rejections=rejections,
            cursor=cursor,
            files_done=files_done,
            now=now,
        )

    def judge_adjustments(
        self, candidates: Sequence[AdjustmentCandidate]
    ) -> list[adjusting.PlannedAdjustment]:
        """The adjustments ``candidates`` would record (for a dry run); changes nothing."""
        with self._read() as connection:
            return adjusting.judge(connection, candidates)

    @property
    def dialect(self) -> Dialect:
        """The database's SQLAlchemy dialect: what ``prepare_chunk`` converts rows for."""
        return self._engine.dialect

    def write_chunk(
        self,
        prepared: recording.PreparedChunk,
        *,
        run_id: str,
        source: str,
        rejections: Sequence[RecordRejection],
        cursor: Mapping[str, Any] | None,
        files_done: Sequence[FileMark],
        now: datetime,
    ) -> RecordCounts:
        """``record_chunk`` for rows prepared beforehand (by ``recording.prepare_chunk``,
        possibly in another process)."""
        _aware(now)
        with self._write() as connection:
            return recording.write_chunk(
                connection,
                prepared,
                run_id=run_id,
                rejections=rejections,
                source=source,
                cursor=cursor,
                files_done=files_done,
                now=now,
            )

    # --- deliver step --------------------------------------------------------------

    def claim(
        self,
        *,
        destination: str,
        limit: int,
        lease: timedelta,
        batch_id: str,
        run_id: str,
        now: datetime,
    ) -> list[ClaimedDelivery]:
        """Move up to ``limit`` due deliveries (pending, or deferred with retry_at ≤ now),
        lowest ids first, to ``sending`` under ``batch_id`` and a lease."""
        _aware(now)
        with self._write() as connection:
            return claims.claim(
                connection,
                destination=destination,
                limit=limit,
                lease=lease,
                batch_id=batch_id,
                run_id=run_id,
                now=now,
            )

    def reclaim_expired(
        self,
        *,
        destination: str,
        limit: int,
        lease: timedelta,
        run_id: str,
        now: datetime,
    ) -> list[ClaimedDelivery]:
        """Take over ``sending`` rows whose lease expired; each keeps the batch id it
        was sent under (in the ledger too)."""
        _aware(now)
        with self._write() as connection:
            return claims.reclaim_expired(
                connection,
                destination=destination,
                limit=limit,
                lease=lease,
                run_id=run_id,
                now=now,
            )

    def apply(
        self,
        transitions: Sequence[Transition],
        *,
        run_id: str,
        now: datetime,
        uploads: Sequence[UploadRecord] = (),
    ) -> None:
        """Write outcomes, with the uploads they went in (one transaction: a delivered
        row is never without the upload that reconciles it, a row waiting for a look-up
        never without the record of the upload it waits for)."""
        _aware(
            now,
            *(t.retry_at for t in transitions),
            *(t.lease_until for t in transitions),
            *(u.next_check_at for u in uploads),
        )
        with self._write() as connection:
            claims.apply(connection, transitions, run_id=run_id, now=now)
            upload_store.record_uploads(connection, uploads, run_id=run_id, now=now)

    def drop_settled_signals(self, now: datetime) -> int:
        """Forget the sealed match signals (IP addresses, user agents, session
        attributes) of every conversion whose deliveries are all settled: none pending,
        sending or deferred. Returns how many conversions had them."""
        _aware(now)
        with self._write() as connection:
            return claims.drop_settled_signals(connection)

    # --- reconcile step and tokens ---------------------------------------------------

    def due_uploads(self, *, destination: str, now: datetime) -> list[UploadRecord]:
        _aware(now)
        with self._read() as connection:
            return upload_store.due_uploads(connection, destination=destination, now=now)

    def unclear_uploads(self, *, destination: str) -> list[UploadRecord]:
        """Uploads of ``destination`` whose answer was lost and that no look-up has found
        or ruled out yet (their rows wait in ``sending``)."""
        with self._read() as connection:
            return upload_store.unclear_uploads(connection, destination=destination)

    def close_unclear_without_rows(self, *, destination: str, now: datetime) -> list[str]:
        """Close the records of uploads of unclear fate whose rows were settled without a
        look-up (see ``uploads.close_unclear_without_rows``); their batch ids."""
        _aware(now)
        with self._read() as connection:  # nearly always none: no write transaction then
            if not upload_store.unclear_uploads(connection, destination=destination):
                return []
        with self._write() as connection:
            return upload_store.close_unclear_without_rows(
                connection, destination=destination, now=now
            )

    def update_uploads(
        self, records: Sequence[UploadRecord], *, run_id: str, now: datetime
    ) -> None:
        _aware(now, *(r.next_check_at for r in records))
        with self._write() as connection:
            upload_store.update_uploads(connection, records, run_id=run_id, now=now)

    def recent_uploads(self, since: datetime, limit: int = 50) -> list[UploadRecord]:
        _aware(since)
        with self._read() as connection:
            return upload_store.recent_uploads(connection, since, limit)

    def load_token(self, name: str) -> dict[str, Any] | None:
        with self._read() as connection:
            return upload_store.load_token(connection, name)

    def save_token(self, name: str, data: Mapping[str, Any], now: datetime) -> None:
        _aware(now)
        with self._write() as connection:
            upload_store.save_token(connection, name, data, now)

    def requeue(
        self,
        *,
        states: Collection[DeliveryState],
        since: datetime,
        now: datetime,
        run_id: str,
        destination: str | None = None,
        goal: str | None = None,
        code: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Send deliveries again (``convsync retry``): matching rejected, deferred or
        uncertain rows go back to ``pending`` with their attempts counted from zero, an
        event row each. Returns how many (with ``dry_run``, how many it would)."""
        _aware(since, now)
        filters: dict[str, Any] = {
            "states": states,
            "since": since,
            "destination": destination,
            "goal": goal,
            "code": code,
        }
        if dry_run:
            with self._read() as connection:
                return len(claims.requeue_ids(connection, lock=False, **filters))
        with self._write() as connection:
            ids = claims.requeue_ids(connection, **filters)
            transitions = [
                Transition(
                    i,
                    DeliveryState.PENDING,
                    "requeued",
                    "sent again on an operator's request (convsync retry)",
                    reset_attempts=True,
                )
                for i in ids
            ]
            claims.apply(connection, transitions, run_id=run_id, now=now)
            return len(ids)

    def count_due(self, *, destination: str, now: datetime) -> int:
        """How many deliveries ``claim`` would take now, in all (for progress)."""
        _aware(now)
        with self._read() as connection:
            return claims.count_due(connection, destination=destination, now=now)

    def oldest_due(self, *, destination: str, now: datetime) -> datetime | None:
        """When the longest-waiting due delivery of ``destination`` was recorded."""
        _aware(now)
        with self._read() as connection:
            return claims.oldest_due(connection, destination=destination, now=now)

    def newest_per_goal(self, goals: Collection[str]) -> dict[str, datetime]:
        """When each goal's newest conversion (or adjustment) was recorded; goals without
        one are left out. An index seek per goal."""
        with self._read() as connection:
            return daily.newest_per_goal(connection, goals)

    def due_deliveries(self, *, destination: str, now: datetime) -> Iterator[ClaimedDelivery]:
        """What ``claim`` would take, changing nothing; streamed page by page (keyset on
        id), so no connection is held between pages and memory stays flat."""
        _aware(now)
        after_id = 0
        while True:
            with self._read() as connection:
                rows = claims.due_rows(
                    connection, destination=destination, limit=_DUE_PAGE, now=now, after_id=after_id
                )
                page = fetch_claimed(connection, [delivery_id for delivery_id, _, _ in rows])
            if not page:
                return
            yield from page
            after_id = page[-1].delivery_id

    def delivery_states(self, keys: Collection[str]) -> dict[tuple[str, str], DeliveryState]:
        with self._read() as connection:
            return claims.delivery_states(connection, keys)

    # --- runs and leases -----------------------------------------------------------

    def start_run(self, *, run_id: str, trigger: str, started_at: datetime) -> None:
        _aware(started_at)
        with self._write() as connection:
            runs.start_run(connection, run_id=run_id, trigger=trigger, started_at=started_at)

    def finish_run(
        self, *, run_id: str, status: str, finished_at: datetime, summary: Mapping[str, Any]
    ) -> None:
        _aware(finished_at)
        with self._write() as connection:
            runs.finish_run(
                connection, run_id=run_id, status=status, finished_at=finished_at, summary=summary
            )

    def recent_runs(self, limit: int = 20) -> list[RunRow]:
        with self._read() as connection:
            return runs.recent_runs(connection, limit)

    def acquire_lease(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        _aware(now)
        with self._write() as connection:
            return runs.acquire_lease(connection, name, holder, ttl, now)

    def renew_lease(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        _aware(now)
        with self._write() as connection:
            return runs.renew_lease(connection, name, holder, ttl, now)

    def lease_holder(self, name: str) -> str | None:
        with self._read() as connection:
            return runs.lease_holder_of(connection, name)

    def take_over_lease(
        self, name: str, stale: str, holder: str, ttl: timedelta, now: datetime
    ) -> bool:
        """Take the lease of a holder known to be dead, if it still holds it."""
        _aware(now)
        with self._write() as connection:
            return runs.take_over_lease(connection, name, stale, holder, ttl, now)

    def release_lease(self, name: str, holder: str) -> None:
        with self._write() as connection:
            runs.release_lease(connection, name, holder)

    # --- reports -------------------------------------------------------------------

    def funnel(self, since: datetime, until: datetime | None = None) -> Funnel:
        """Per goal × destination, what became of the conversions recorded at or after
        ``since`` and before ``until`` (see ``store/funnel.py``)."""
        _aware(since, until)
        with self._read() as connection:
            return funnel_store.funnel(connection, since, until)

    def pulled_since(self, since: datetime) -> dict[str, int]:
        _aware(since)
        with self._read() as connection:
            return runs.pulled_since(connection, since)

    def failures(self, since: datetime, limit: int = 100) -> list[FailureRow]:
        _aware(since)
        with self._read() as connection:
            return reports.failures(connection, since, limit)

    def rejection_count(self, run_id: str) -> int:
        with self._read() as connection:
            return reports.rejection_count(connection, run_id)

    def delivery_tallies(self, *, since: datetime, recent: datetime) -> list[DeliveryTally]:
        """Deliveries changed since ``since`` per goal × destination × state (``/metrics``)."""
        _aware(since, recent)
        with self._read() as connection:
            return delivery_tallies(connection, since=since, recent=recent)
