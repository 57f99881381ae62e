"""Wiring for the CLI: open the ledger, build the pipeline, take the run lease."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from convsync.config.models import LoadedConfig
from convsync.config.settings import Settings
from convsync.core.errors import RunRefused
from convsync.service.alerts.engine import alerts_after_run
from convsync.service.scheduler import LeaseBusy, SyncScheduler, lease_holder, run_lease
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncPipeline
from convsync.sync.progress import ProgressLog, ProgressReporter, progress_on_stderr
from convsync.sync.summary import RunSummary, SyncOptions

if TYPE_CHECKING:  # loaded when served: `sync --once` needs no HTTP server
    from prometheus_client import CollectorRegistry

    from convsync.config.ui import Language
    from convsync.service.statuspage.endpoint import HealthEndpoint
    from convsync.service.webhooks.server import WebhookServer

log = structlog.get_logger("convsync.runner")


def make_pipeline(
    settings: Settings, loaded: LoadedConfig, ledger: Ledger, progress: ProgressReporter
) -> SyncPipeline:
    return SyncPipeline(
        loaded,
        ledger,
        map_process_min_bytes=settings.map_process_min_bytes,
        child_logging=(settings.log_format, settings.log_level),
        progress=progress,
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
        pipeline = make_pipeline(settings, loaded, ledger, progress_on_stderr())
        if dry_run:
            return pipeline.run(options)  # reads only: no lease needed, none taken
        try:
            alerts = alerts_after_run(loaded, ledger, pipeline.clock)
            with run_lease(ledger, lease_holder()), alerts:
                return pipeline.run(options)
        except LeaseBusy as exc:
            raise RunRefused(f"{exc}; try again when it has finished") from None
    finally:
        ledger.close()


def serve(settings: Settings, loaded: LoadedConfig) -> None:
    """``convsync run``: the schedule, the health endpoint and the webhook endpoint (when
    a webhook source is configured), until SIGTERM."""
    ledger = Ledger.open(settings.database_url)
    try:
        # scheduled runs in a container: progress as log lines, never a live display
        pipeline = make_pipeline(settings, loaded, ledger, ProgressLog())
        scheduler = SyncScheduler(loaded, ledger, pipeline)
        with ExitStack() as stack:
            webhooks = None
            if loaded.app.webhook_sources:
                webhooks = stack.enter_context(webhooks_served(loaded, ledger, pipeline))

            def status() -> dict[str, Any]:
                data = scheduler.health()
                if webhooks is not None:
                    data["webhooks"] = webhooks.app.recorder.totals()
                return data

            if settings.health_port:
                # here, not at the top: `sync --once` serves no metrics
                from convsync.service.metrics import build_registry, count_webhooks

                metrics = build_registry(
                    ledger,
                    loaded.app.destinations,
                    running=lambda: scheduler.scheduler.running and not scheduler.stop.is_set(),
                    clock=pipeline.clock,
                )
                if webhooks is not None:
                    count_webhooks(metrics, webhooks.app.recorder.totals)
                health = health_endpoint(settings, loaded, ledger, pipeline, status, metrics)
                health.start()
                stack.callback(health.stop)
                log.info(
                    "health endpoint listening",
                    host=settings.health_host,
                    port=health.port,
                    paths=["/", "/healthz", "/metrics"],
                )
                if health.app.access is not None and health.app.access.locked:
                    log.warning(
                        "status page locked",
                        reason="it listens beyond localhost and no ui.auth is configured",
                        fix="set ui.auth.token, or ui.auth.username and ui.auth.password",
                    )
            scheduler.serve()
    finally:
        ledger.close()


def health_endpoint(
    settings: Settings,
    loaded: LoadedConfig,
    ledger: Ledger,
    pipeline: SyncPipeline,
    status: Callable[[], dict[str, Any]],
    metrics: CollectorRegistry,
) -> HealthEndpoint:
    """``/healthz``, ``/metrics`` and the status page on the health port."""
    from convsync.service.statuspage.access import PageAccess
    from convsync.service.statuspage.data import gather
    from convsync.service.statuspage.endpoint import HealthApp, HealthEndpoint
    from convsync.service.statuspage.render import render

    def page(health: Mapping[str, Any], lang: Language) -> str:
        return render(gather(loaded.app, ledger, health, pipeline.clock()), lang)

    ui = loaded.app.ui
    app = HealthApp(
        status,
        metrics=metrics,
        page=page,
        access=PageAccess(ui.auth, settings.health_host),
        language=ui.default_language,
    )
    return HealthEndpoint(app, settings.health_host, settings.health_port)


@contextmanager
def webhooks_served(
    loaded: LoadedConfig, ledger: Ledger, pipeline: SyncPipeline
) -> Iterator[WebhookServer]:
    """The webhook endpoint, its writer started first and stopped last: a request in
    hand when the server stops is still recorded and answered."""
    from convsync.service.webhooks.recorder import WebhookRecorder
    from convsync.service.webhooks.server import WebhookApp, WebhookServer

    recorder = WebhookRecorder(loaded, ledger, pipeline.destinations, pipeline.clock)
    recorder.start()
    try:
        config = loaded.app.webhooks
        server = WebhookServer(
            WebhookApp(loaded, recorder, int(config.max_body), pipeline.clock), config
        )
        server.start()
        log.info(
            "webhooks listening",
            host=config.host,
            port=server.port,
            paths=[f"/webhooks/{name}" for name in loaded.app.webhook_sources],
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        recorder.stop()
