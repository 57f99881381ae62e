"""A scheduler, its pipeline and a real health server whose ``/metrics`` the tests
scrape, over the integration tests' ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from convsync.config.loader import load_config
from convsync.service.metrics import build_registry
from convsync.service.scheduler import SyncScheduler
from convsync.service.statuspage.endpoint import HealthApp, HealthEndpoint
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncPipeline
from tests.clock import Clock
from tests.integration import conftest as integration
from tests.integration.fakes import ScriptedDestination

from .scrape import Scrape, scrape

# the integration tests' fixtures: a ledger on SQLite and on PostgreSQL, a config folder
ledger, ledger_url, pg_url, sqlite_url = (
    integration.ledger,
    integration.ledger_url,
    integration.pg_url,
    integration.sqlite_url,
)
workdir = integration.workdir


@dataclass
class Served:
    """A scheduler whose runs send to a scripted ``vk``, and the ``/metrics`` it serves."""

    scheduler: SyncScheduler
    destination: ScriptedDestination
    clock: Clock
    registry: CollectorRegistry
    running: threading.Event
    server: HealthEndpoint

    def scrape(self, accept: str | None = None) -> Scrape:
        return scrape(self.server.port, accept)


@pytest.fixture
def served(workdir: Path, ledger: Ledger) -> Iterator[Served]:
    loaded = load_config(workdir / "convsync.yaml", env={})
    destination = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    clock = Clock()
    sleeps: list[float] = []
    pipeline = SyncPipeline(
        loaded, ledger, destinations={"vk": destination}, clock=clock, sleep=sleeps.append
    )
    scheduler = SyncScheduler(loaded, ledger, pipeline)
    running = threading.Event()
    running.set()
    registry = build_registry(ledger, ["vk"], running=running.is_set, clock=clock)
    server = HealthEndpoint(HealthApp(scheduler.health, metrics=registry), "127.0.0.1", 0)
    server.start()
    try:
        yield Served(scheduler, destination, clock, registry, running, server)
    finally:
        server.stop()
