"""Wiring for the CLI: open the ledger, build the pipeline, take the run lease."""

from __future__ import annotations

from pathlib import Path

import structlog

from convsync.config import LoadedConfig
from convsync.errors import RunRefused
from convsync.health import HealthServer
from convsync.pipeline import SyncPipeline
from convsync.run_summary import RunSummary, SyncOptions
from convsync.scheduler import LeaseBusy, SyncScheduler, lease_holder, run_lease
from convsync.settings import Settings
from convsync.store.ledger import Ledger

log = structlog.get_logger("convsync.runner")


def make_pipeline(settings: Settings, loaded: LoadedConfig, ledger: Ledger) -> SyncPipeline:
    return SyncPipeline(
        loaded,
        ledger,
        map_process_min_bytes=settings.map_process_min_bytes,
        child_logging=(settings.log_format, settings.log_level),
    )


def run_once(
    settings: Settings,
    loaded: LoadedConfig,
    dry_run: bool,
    output: Path | None,
    sources: tuple[str, ...],
    goals: tuple[str, ...],
    *,
    validate: bool = False,
) -> RunSummary:
    """``convsync sync --once``: one run, under the same lease as the scheduler's."""
    options = SyncOptions(
        dry_run=dry_run, validate=validate, output=output, sources=sources, goals=goals
    )
    ledger = Ledger.open(settings.database_url, read_only=dry_run)
    try:
        pipeline = make_pipeline(settings, loaded, ledger)
        if dry_run:
            return pipeline.run(options)  # reads only: no lease needed, none taken
        try:
            with run_lease(ledger, lease_holder()):
                return pipeline.run(options)
        except LeaseBusy as exc:
            raise RunRefused(f"{exc}; try again when it has finished") from None
    finally:
        ledger.close()


def serve(settings: Settings, loaded: LoadedConfig) -> None:
    """``convsync run``: the schedule plus the health endpoint, until SIGTERM."""
    ledger = Ledger.open(settings.database_url)
    try:
        scheduler = SyncScheduler(loaded, ledger, make_pipeline(settings, loaded, ledger))
        server = None
        if settings.health_port:
            server = HealthServer(settings.health_host, settings.health_port, scheduler.health)
            server.start()
            log.info("health endpoint listening", port=server.port, paths=["/healthz", "/metrics"])
        try:
            scheduler.serve()
        finally:
            if server is not None:
                server.stop()
    finally:
        ledger.close()
