"""One sync run: pull → map → record → deliver → (reconcile) → report.

Nothing here is platform-specific: sources and destinations are wired in by name.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel

from convsync.config.models import LoadedConfig
from convsync.core.errors import UserError
from convsync.core.model import (
    FAILED,
    RUNNING,
    Adjustment,
    AdjustmentCandidate,
    ClaimedDelivery,
    DeliveryState,
    RecordRejection,
    SourceState,
)
from convsync.core.tokens import ReadOnlyTokens
from convsync.destinations import new_destination
from convsync.destinations.base import Destination
from convsync.sources.base import Source
from convsync.store.adjusting import adjustment_time
from convsync.store.ledger import Ledger
from convsync.store.tokens import LedgerTokens
from convsync.sync import lateness
from convsync.sync.delivery import DeliveryWorker
from convsync.sync.mapping import (
    MapJob,
    MappingProcess,
    PlannedChunk,
    ReadyChunk,
    make_source,
    planned_chunks,
    ready_chunks,
)
from convsync.sync.notices import render_notices
from convsync.sync.plan import PlanEntry, PlanWriter, row_entry
from convsync.sync.progress import NO_PROGRESS, ProgressReporter, estimate_records
from convsync.sync.summary import RunSummary, SyncOptions, Tally
from convsync.sync.validation import Validator

log = structlog.get_logger("convsync.pipeline")

AnyDestination = Destination[BaseModel, BaseModel]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SyncPipeline:
    """Runs syncs of one config against one ledger."""

    def __init__(
        self,
        loaded: LoadedConfig,
        ledger: Ledger,
        *,
        destinations: Mapping[str, AnyDestination] | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        chunk_size: int = 5000,
        initial_wait: float = 5.0,
        map_process_min_bytes: int | None = None,
        child_logging: tuple[str, str] = ("json", "INFO"),
        progress: ProgressReporter = NO_PROGRESS,
    ) -> None:
        self.loaded = loaded
        self.ledger = ledger
        self.clock = clock
        self.sleep = sleep
        self.stop = stop or threading.Event()
        self.chunk_size = chunk_size
        self.initial_wait = initial_wait
        # inputs at least this large are mapped in a second process (None: never); only
        # with the configured destinations, which a child can build for itself
        self.map_process_min_bytes = None if destinations else map_process_min_bytes
        self.child_logging = child_logging
        self.progress = progress
        app = loaded.app
        self.destinations: dict[str, AnyDestination] = dict(destinations or {})
        for name, cfg in app.destinations.items():
            if name not in self.destinations:
                self.destinations[name] = new_destination(name, cfg)
        #: rotating tokens of sources and destinations, kept in the ledger
        self.tokens = LedgerTokens(ledger, clock)
        for dest in self.destinations.values():
            dest.tokens = self.tokens

    def source(self, name: str) -> Source[Any]:
        return make_source(self.loaded, name, self.chunk_size)

    def run(self, options: SyncOptions) -> RunSummary:
        self._check_filters(options)
        run_id = uuid.uuid4().hex[:16]
        summary = RunSummary(run_id, options.dry_run, self.clock())
        summary.ledger = self.ledger.url_for_display
        structlog.contextvars.bind_contextvars(run_id=run_id)
        started = time.monotonic()
        if not options.dry_run:
            self.ledger.start_run(
                run_id=run_id, trigger=options.trigger, started_at=summary.started_at
            )
        log.info(
            "run started",
            dry_run=options.dry_run,
            trigger=options.trigger,
            ledger=summary.ledger,
            config=str(self.loaded.path.absolute()),
        )
        plan = PlanWriter(options.output) if options.dry_run else None
        try:
            self.progress.start_run()
            for name in self.loaded.app.sources:
                if options.sources and name not in options.sources:
                    continue
                if self.stop.is_set():
                    break
                try:
                    if plan is not None:
                        self._pull_and_plan(name, options, summary, plan)
                    else:
                        self._pull_and_record(name, options, summary)
                except UserError as exc:
                    # a source the user must fix (a file without a mapped column) stops
                    # alone: the other sources and the deliveries still go on
                    summary.user_errors.append(str(exc))
                    log.error("source stopped", source=name, reason=str(exc))  # noqa: TRY400 (a user error: no traceback)
            if plan is not None:
                self._plan_queued(options, plan)
                plan.finish()
                summary.plan = plan.counts
                summary.held = plan.held
            elif options.validate and not self.stop.is_set():
                summary.validation = self._validator().run(options.output)
            elif not self.stop.is_set():
                try:
                    self._deliver(summary)
                finally:
                    # settled deliveries need their IP addresses and user agents no more
                    if dropped := self.ledger.drop_settled_signals(self.clock()):
                        log.debug("sealed match signals dropped", conversions=dropped)
                self._read_platform_reports(summary)
                self._check_lateness(summary)
            summary.conclude(interrupted=self.stop.is_set())
        finally:
            self.progress.stop_run()
            if plan is not None:
                plan.close()
            if summary.status == RUNNING:  # an unexpected error
                summary.status = FAILED
            summary.finished_at = self.clock()
            if not options.dry_run:
                self.ledger.finish_run(
                    run_id=run_id,
                    status=summary.status,
                    finished_at=summary.finished_at,
                    summary=summary.as_dict(),
                )
            summary.risky_defaults = render_notices(summary.notices, self.loaded)
            for notice in summary.risky_defaults:
                log.warning("risky default", reason=notice)
            log.info(
                "run finished",
                status=summary.status,
                duration_s=round(time.monotonic() - started, 3),
                **summary.as_dict(),
            )
            structlog.contextvars.unbind_contextvars("run_id")
        return summary

    def _check_filters(self, options: SyncOptions) -> None:
        app = self.loaded.app
        for name in options.sources:
            if name not in app.sources:
                raise UserError(
                    f"--source {name}: no such source (configured: {', '.join(app.sources)})"
                )
        for name in options.goals:
            if name not in app.goals:
                raise UserError(f"--goal {name}: no such goal (configured: {', '.join(app.goals)})")

    # --- pull, map, record -------------------------------------------------------------

    def _pull_and_record(self, name: str, options: SyncOptions, summary: RunSummary) -> None:
        stats = summary.sources.setdefault(name, Counter())
        state = self.ledger.source_state(name)
        job = self._job(name, options, summary, state, mode="record", plan_lines=False)
        process = self._mapping_process(name, state, job)
        chunks = (
            process
            if process is not None
            else ready_chunks(job, self.destinations, self.ledger.dialect, self.clock, self.tokens)
        )
        # a goal filter maps only some goals: then the cursor must not move past records
        # that the other goals have not seen yet
        keep_cursor = not options.goals
        self._begin_pull(name, state)
        try:
            for ready in chunks:
                self._count_mapped(name, ready, summary)
                counts = self.ledger.write_chunk(
                    ready.prepared,
                    run_id=summary.run_id,
                    source=name,
                    rejections=ready.rejections,
                    cursor=ready.cursor if keep_cursor else None,
                    files_done=ready.files_done if keep_cursor else [],
                    now=self.clock(),
                )
                stats["new"] += counts.new_conversions
                stats["planned"] += counts.pending
                stats["skipped"] += counts.skipped
                if counts.adjustments:
                    stats["adjustments"] += counts.adjustments
                if self.stop.is_set():
                    break
        finally:
            self.progress.end("pull", name)
            if process is not None:
                process.close()

    def _job(
        self,
        name: str,
        options: SyncOptions,
        summary: RunSummary,
        state: SourceState,
        *,
        mode: Literal["record", "plan"],
        plan_lines: bool,
    ) -> MapJob:
        dialect = self.ledger.dialect
        return MapJob(
            loaded=self.loaded,
            source=name,
            goals=options.goals,
            chunk_size=self.chunk_size,
            state=state,
            run_id=summary.run_id,
            dialect=f"{dialect.name}+{dialect.driver}",
            log_format=self.child_logging[0],
            log_level=self.child_logging[1],
            mode=mode,
            plan_lines=plan_lines,
        )

    def _mapping_process(self, name: str, state: SourceState, job: MapJob) -> MappingProcess | None:
        """A second process for a backlog of at least ``map_process_min_bytes``."""
        if self.map_process_min_bytes is None:
            return None
        backlog = self.source(name).backlog_bytes(state)
        if backlog is None or backlog < self.map_process_min_bytes:
            return None
        log.info("mapping in a second process", source=name, backlog_bytes=backlog)
        return MappingProcess(job)

    def _begin_pull(self, name: str, state: SourceState) -> None:
        expected = estimate_records(self.source(name), state)
        self.progress.begin("pull", name, expected=expected, estimated=True)

    def _count_mapped(
        self, name: str, ready: ReadyChunk | PlannedChunk, summary: RunSummary
    ) -> None:
        self.progress.advance("pull", name, ready.pulled)
        stats = summary.sources[name]
        stats["pulled"] += ready.pulled
        stats["rejected"] += len(ready.rejections)
        for goal, count in ready.mapped.items():
            summary.goals.setdefault(goal, Counter())["mapped"] += count
        self._log_rejections(name, ready.rejections)
        for r in ready.rejections:
            tally = summary.rejected_records.setdefault((name, r.code), Tally())
            tally.add(f"{r.record_id} ({r.origin})" if r.record_id else r.origin, r.reason)
        for warning in ready.warnings:
            log.warning("source incomplete", source=name, reason=warning)
        summary.warnings += ready.warnings
        summary.notices.update(ready.notices)

    def _pull_and_plan(
        self, name: str, options: SyncOptions, summary: RunSummary, plan: PlanWriter
    ) -> None:
        stats = summary.sources.setdefault(name, Counter())
        state = self.ledger.source_state(name)
        job = self._job(name, options, summary, state, mode="plan", plan_lines=plan.with_lines)
        # always in this process: a dry run has no ledger writes for a mapping process to
        # overlap (measured at 1M records: 1.07-1.17x the speed for 3-16 % more CPU and
        # twice the memory)
        chunks = planned_chunks(job, self.destinations, self.clock, ReadOnlyTokens(self.tokens))
        self._begin_pull(name, state)
        try:
            for ready in chunks:
                self._count_mapped(name, ready, summary)
                self._plan_new(ready.conversions, plan, stats, summary)
                if ready.adjustments:
                    stats["adjustments"] += self._plan_adjustments(ready.adjustments, plan, summary)
                if self.stop.is_set():
                    break
        finally:
            self.progress.end("pull", name)

    @staticmethod
    def _log_rejections(source: str, rejections: Sequence[RecordRejection]) -> None:
        for rejection in rejections:
            log.warning(
                "record rejected",
                source=source,
                origin=rejection.origin,
                column=rejection.column,
                code=rejection.code,
                reason=rejection.reason,
                goal=rejection.goal,
            )

    def _plan_new(
        self,
        conversions: Sequence[tuple[str, str, list[PlanEntry]]],
        plan: PlanWriter,
        stats: Counter[str],
        summary: RunSummary,
    ) -> None:
        """Plan the conversions the ledger does not hold yet."""
        existing = self.ledger.existing_keys([key for key, _, _ in conversions])
        for key, goal, entries in conversions:
            if key in existing:
                continue
            stats["new"] += 1
            summary.goals[goal]["new"] += 1
            for entry in entries:
                plan.add(entry)
                stats["skipped" if entry[3] == "skipped" else "planned"] += 1

    def _plan_adjustments(
        self, candidates: Sequence[AdjustmentCandidate], plan: PlanWriter, summary: RunSummary
    ) -> int:
        """Plan the adjustments that records would make of conversions recorded before."""
        now = self.clock()
        planned = self.ledger.judge_adjustments(candidates)
        for adjustment in planned:
            summary.goals[adjustment.conversion.goal][adjustment.kind.value] += 1
            for dest_name in adjustment.destinations:
                row = ClaimedDelivery(
                    0,
                    dest_name,
                    adjustment.conversion.goal,
                    DeliveryState.PENDING,
                    0,
                    None,
                    adjustment.conversion,
                    Adjustment(
                        adjustment.kind,
                        adjustment_time(now),
                        adjustment.value,
                        adjustment.currency,
                    ),
                    adjustment.base_states[dest_name],
                )
                plan.add(self._row_entry(row, now, queued=False, plan=plan))
        return len(planned)

    def _plan_queued(self, options: SyncOptions, plan: PlanWriter) -> None:
        """Deliveries recorded by earlier runs that a real run would send now."""
        now = self.clock()
        for dest_name in self.destinations:
            for row in self.ledger.due_deliveries(destination=dest_name, now=now):
                if self._selected(row, options):
                    plan.add(self._row_entry(row, now, queued=True, plan=plan))

    def _row_entry(
        self, row: ClaimedDelivery, now: datetime, *, queued: bool, plan: PlanWriter
    ) -> PlanEntry:
        return row_entry(
            self.destinations[row.destination],
            row,
            self.loaded.targets,
            now,
            wait=self.loaded.app.delivery.retry_backoff,
            queued=queued,
            with_line=plan.with_lines,
        )

    @staticmethod
    def _selected(row: ClaimedDelivery, options: SyncOptions) -> bool:
        if options.goals and row.goal not in options.goals:
            return False
        return not options.sources or row.conversion.source in options.sources

    # --- deliver -----------------------------------------------------------------------

    def _validator(self) -> Validator:
        return Validator(
            self.destinations,
            self.loaded.targets,
            self.ledger,
            self.loaded.app.delivery,
            clock=self.clock,
            sleep=self.sleep,
            initial_wait=self.initial_wait,
        )

    def _read_platform_reports(self, summary: RunSummary) -> None:
        """What a platform reports of the uploads only as a whole, read once a day: the
        Google Ads API's upload summaries, for the funnel. A failed read is a warning."""
        if self.stop.is_set():
            return
        from convsync.sync.platform_summaries import read_due_summaries

        summary.warnings += read_due_summaries(
            self.loaded, self.ledger, self.destinations, summary.destinations, self.clock
        )

    def _check_lateness(self, summary: RunSummary) -> None:
        """A delivery still due after the run that has waited longer than
        ``health.max_pending_age``, or a source silent for longer than
        ``health.max_source_silence``, is a warning: the run is degraded."""
        for item in lateness.late(self.loaded.app, self.ledger, self.clock()):
            warning = f"{item.where}: {item.why}"
            if item.kind == "source":
                log.warning("source silent", source=item.name, reason=warning)
            else:
                log.warning("backlog too old", destination=item.name, reason=warning)
            summary.warnings.append(warning)

    def _deliver(self, summary: RunSummary) -> None:
        """Each destination on its own thread: a slow or throttled platform holds up
        only itself."""
        workers = {
            name: DeliveryWorker(
                dest,
                self.loaded.targets,
                self.ledger,
                self.loaded.app.delivery,
                run_id=summary.run_id,
                clock=self.clock,
                stop=self.stop,
                sleep=self.sleep,
                initial_wait=self.initial_wait,
                progress=self.progress,
            )
            for name, dest in self.destinations.items()
        }
        context = structlog.contextvars.get_contextvars()
        with ThreadPoolExecutor(
            max_workers=max(len(workers), 1), thread_name_prefix="deliver"
        ) as pool:
            futures = {
                pool.submit(_with_context, context, worker.run): name
                for name, worker in workers.items()
            }
            wait(futures)
        first_error: BaseException | None = None
        for future, name in futures.items():
            error = future.exception()
            stats = workers[name].stats
            summary.destinations[name] = stats.as_dict()
            if error is not None:
                summary.destinations[name]["error"] = f"{type(error).__name__}: {error}"
                log.error("delivery failed", destination=name, exc_info=error)
                first_error = first_error or error
            else:
                # describe(): the account (customer, counter, pixel) for the reader at 3 am
                log.info(
                    "destination summary", **self.destinations[name].describe(), **stats.as_dict()
                )
        if first_error is not None:
            raise first_error


def _with_context(context: Mapping[str, Any], fn: Callable[[], Any]) -> Any:
    structlog.contextvars.bind_contextvars(**context)
    return fn()
