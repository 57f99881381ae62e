"""``convsync run``: the schedule (APScheduler, in-memory job store per replica) and the
run lease in the ledger, so that of several replicas only one syncs at a time."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from convsync.config.models import LoadedConfig
from convsync.service.alerts.engine import alerts_after_run
from convsync.service.healthz import assess
from convsync.store.ledger import Ledger
from convsync.store.runs import LEASE_TTL, SYNC_LEASE, parse_holder, process_gone
from convsync.sync.pipeline import SyncPipeline
from convsync.sync.summary import RunSummary, SyncOptions

log = structlog.get_logger("convsync.scheduler")


def lease_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


#: the leases this process holds now (several only in tests)
_HELD_HERE: set[str] = set()


def _gone(holder: str) -> bool:
    """Whether ``holder`` (host:pid:nonce) is a process of this host that no longer runs.

    A killed ``convsync sync --once`` or a restarted container would otherwise block
    every run until its lease expires. Only this host's processes can be checked; our
    own pid with another nonce is an earlier life of this pid (pid 1 in a container).
    """
    parsed = parse_holder(holder)
    if parsed is None:
        return False
    host, pid = parsed
    if host == socket.gethostname() and pid == os.getpid():
        return holder not in _HELD_HERE
    return process_gone(host, pid)


class LeaseBusy(Exception):
    """Another process holds the sync lease."""


@contextmanager
def run_lease(
    ledger: Ledger,
    holder: str,
    *,
    ttl: timedelta = LEASE_TTL,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[None]:
    """Hold the sync lease for the block, renewing it in the background so a long run
    keeps it, and a crashed one loses it after ``ttl``."""
    if not ledger.acquire_lease(SYNC_LEASE, holder, ttl, clock()):
        stale = ledger.lease_holder(SYNC_LEASE)
        if not (
            stale is not None
            and _gone(stale)
            and ledger.take_over_lease(SYNC_LEASE, stale, holder, ttl, clock())
        ):
            raise LeaseBusy(f"another convsync process ({stale}) is running a sync right now")
        # the same transaction marked the stale holder's runs interrupted
        log.warning("took over the sync lease of a process that is gone", stale_holder=stale)
    _HELD_HERE.add(holder)
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(ttl.total_seconds() / 3):
            if not ledger.renew_lease(SYNC_LEASE, holder, ttl, clock()):
                log.error("lost the sync lease while running", holder=holder)

    beat = threading.Thread(target=heartbeat, name="lease-heartbeat", daemon=True)
    beat.start()
    try:
        yield
    finally:
        done.set()
        beat.join()
        _HELD_HERE.discard(holder)
        ledger.release_lease(SYNC_LEASE, holder)


class SyncScheduler:
    """Runs the pipeline on the configured schedule until SIGTERM/SIGINT."""

    def __init__(self, loaded: LoadedConfig, ledger: Ledger, pipeline: SyncPipeline) -> None:
        self.loaded = loaded
        self.ledger = ledger
        self.pipeline = pipeline
        self.stop = pipeline.stop
        self.holder = lease_holder()
        self.last: RunSummary | None = None
        self.last_error: str | None = None
        self.runs = 0
        self.scheduler = BackgroundScheduler(
            timezone=loaded.app.zone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )

    def trigger(self) -> IntervalTrigger | CronTrigger:
        schedule = self.loaded.app.schedule
        if schedule.cron is not None:
            return CronTrigger.from_crontab(schedule.cron, timezone=self.loaded.app.zone)
        assert schedule.every is not None  # the config model guarantees one of the two
        return IntervalTrigger(seconds=int(schedule.every.total_seconds()))

    def next_run(self) -> datetime | None:
        job = self.scheduler.get_job("sync")
        return job.next_run_time if job is not None else None

    def tick(self) -> None:
        """One scheduled sync, if no other replica is running one."""
        # here, not at the top: `sync --once` shares this module and serves no metrics
        from convsync.service.metrics import record_run

        try:
            alerts = alerts_after_run(self.loaded, self.ledger, self.pipeline.clock)
            with run_lease(self.ledger, self.holder), alerts:
                self.runs += 1
                started = time.monotonic()
                summary: RunSummary | None = None
                try:
                    summary = self.last = self.pipeline.run(SyncOptions(trigger="schedule"))
                finally:
                    record_run(summary, time.monotonic() - started)
                self.last_error = None
        except LeaseBusy:
            log.info("skipping this tick: another replica is running the sync")

    def serve(self, install_signals: bool = True) -> None:
        """Block until stopped; the current batch finishes and the lease is released."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.scheduler.add_job(
            self._tick_logged, self.trigger(), id="sync", next_run_time=datetime.now(UTC)
        )
        self.scheduler.start()
        log.info("scheduler started", schedule=self._describe(), holder=self.holder)
        self.stop.wait()
        log.info("stopping: finishing the current batch")
        self.scheduler.shutdown(wait=True)
        log.info("scheduler stopped")

    def _tick_logged(self) -> None:
        if self.stop.is_set():
            return
        try:
            self.tick()
        except Exception as exc:  # a job boundary is a top-level handler: log, keep the schedule
            # the run is already marked failed in the ledger; /healthz shows the error
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("sync run failed")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal received", signal=signal.Signals(signum).name)
        self.stop.set()

    def _describe(self) -> str:
        schedule = self.loaded.app.schedule
        return f"cron {schedule.cron}" if schedule.cron else f"every {schedule.every}"

    def health(self) -> dict[str, Any]:
        """``/healthz``: the service's health (``healthz.assess``), this
        process's runs and the next one."""
        nxt = self.next_run()
        running = self.scheduler.running and not self.stop.is_set()
        return {
            **assess(self.loaded.app, self.ledger, datetime.now(UTC), running=running),
            "runs": self.runs,
            "next_run": nxt.isoformat() if nxt else None,
            "last_error": self.last_error,
        }
