"""The status page served as ``convsync run`` serves it (``runner.health_endpoint``: the
scheduler's health, the metrics registry, the page, its access rule) over a ledger
seeded with ``history``, on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convsync.config.loader import load_config
from convsync.config.settings import Settings
from convsync.service.healthz import assess
from convsync.service.metrics import build_registry
from convsync.service.runner import health_endpoint
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncPipeline
from tests.statuspage.history import CONFIG, ENV, History, seed, utc_now


@dataclass(frozen=True)
class Seeded:
    """A config folder with a seeded ledger file, to be copied by each test."""

    folder: Path
    history: History

    def copy_to(self, target: Path, ui: str = "") -> Path:
        shutil.copytree(self.folder, target, dirs_exist_ok=True)
        (target / "convsync.yaml").write_text(CONFIG + ui, encoding="utf-8")
        return target


def seeded_folder(folder: Path, url: str | None = None) -> Seeded:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("orders", "leads"):
        (folder / name).mkdir(exist_ok=True)
    (folder / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    with Ledger.open(url or f"sqlite:///{folder / 'ledger.db'}") as ledger:
        history = seed(ledger, utc_now())
    return Seeded(folder, history)


@dataclass
class Page:
    base: str
    ledger: Ledger
    folder: Path


@contextmanager
def served(folder: Path, *, host: str = "127.0.0.1", url: str | None = None) -> Iterator[Page]:
    """The health port of a ``convsync run`` on ``folder``'s config and ledger, with no
    scheduler (nothing runs: the page shows the seeded history); its health is the
    scheduler's (``healthz.assess``) while running."""
    loaded = load_config(folder / "convsync.yaml", env=ENV)
    database_url = url or f"sqlite:///{folder / 'ledger.db'}"
    settings = Settings(database_url=database_url, health_host=host, health_port=0)
    ledger = Ledger.open(database_url)
    try:
        pipeline = SyncPipeline(loaded, ledger)

        def status() -> dict[str, Any]:
            return {**assess(loaded.app, ledger, utc_now(), running=True), "next_run": None}

        registry = build_registry(
            ledger, loaded.app.destinations, running=lambda: True, clock=pipeline.clock
        )
        endpoint = health_endpoint(settings, loaded, ledger, pipeline, status, registry)
        endpoint.start()
        try:
            yield Page(f"http://127.0.0.1:{endpoint.port}", ledger, folder)
        finally:
            endpoint.stop()
    finally:
        ledger.close()
