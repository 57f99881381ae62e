"""A whole sync with Metrica out of reach: the run summary's note for the destination is
the one plain line (host, cause, key), whole in the table, and every row stays pending."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from convsync.cli import views
from convsync.config.loader import load_config
from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock
from tests.integration.metrica.shop import make_shop, write_orders
from tests.network.servers import assert_plain, closed_port

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY = "destinations.metrica.api_base_url"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def test_an_unreachable_metrica_in_the_run_summary(tmp_path: Path, ledger: Ledger) -> None:
    (tmp_path / "shop").mkdir()
    shop = make_shop(tmp_path / "shop", "{max_attempts: 5, retries_in_run: 1}")
    write_orders(shop, 3)
    port = closed_port()
    env = {"M_TOKEN": "y0_test-token", "M_URL": f"http://127.0.0.1:{port}"}
    loaded = load_config(shop / "convsync.yaml", env=env)
    metrica = MetricaDestination("metrica", loaded.app.destinations["metrica"])  # type: ignore[arg-type]
    clock = Clock(T0)
    metrica.clock = clock
    try:
        pipeline = SyncPipeline(
            loaded, ledger, destinations={"metrica": metrica}, clock=clock, sleep=lambda _: None
        )
        summary = pipeline.run(SyncOptions())
    finally:
        metrica.close()

    note = summary.destinations["metrica"]["stopped"]
    assert note == (
        f"metrica_unreachable: Metrica API at 127.0.0.1:{port}: connection refused; check the "
        f"network, DNS, proxy or {KEY}"
    )
    assert_plain(note, host=f"127.0.0.1:{port}", key=KEY, cause="connection refused")
    assert summary.destinations["metrica"].get("delivered", 0) == 0

    shown = io.StringIO()
    views.print_run_summary(Console(file=shown, width=240), summary, None)
    assert note in shown.getvalue()  # whole, on one line of the table
