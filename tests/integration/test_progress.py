"""Progress of a sync run: ``progress`` log lines off a terminal, a live display on one
(convsync.sync.progress), read from what a real run over a CSV file writes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from convsync.config.loader import load_config
from convsync.core.logging import configure_logging
from convsync.core.model import FileMark, SourceState
from convsync.store.ledger import Ledger
from convsync.sync.mapping import make_source
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from convsync.sync.progress import ProgressDisplay, ProgressLog, ProgressReporter, estimate_records
from tests.clock import Clock
from tests.logging_state import _restore_logging  # noqa: F401 (an autouse fixture)

from .conftest import write_orders
from .fakes import ScriptedDestination


class Ticks:
    """A monotonic clock one second further on every time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def orders(n: int) -> list[str]:
    return [
        f"A-{i},2026-11-20 10:{i % 60:02d}:00,paid,100.50,RUB,,,click{i}," for i in range(1, n + 1)
    ]


def pipeline(workdir: Path, ledger: Ledger, progress: ProgressReporter) -> SyncPipeline:
    loaded = load_config(workdir / "convsync.yaml", env={})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]  # a VK config, typed as the union
    dest.max_batch = 100
    return SyncPipeline(
        loaded,
        ledger,
        destinations={"vk": dest},
        clock=Clock(),
        sleep=lambda _s: None,
        chunk_size=100,
        progress=progress,
    )


def json_logs(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


@pytest.mark.parametrize("dry_run", [False, True], ids=["sync", "dry_run"])
def test_a_long_run_logs_progress_lines_with_growing_counts(
    workdir: Path, sqlite_url: str, dry_run: bool
) -> None:
    write_orders(workdir, orders(3000))
    logs = io.StringIO()
    configure_logging("json", "INFO", stream=logs)
    with Ledger.open(sqlite_url) as ledger:
        summary = pipeline(workdir, ledger, ProgressLog(interval=5, clock=Ticks())).run(
            SyncOptions(dry_run=dry_run)
        )
    assert summary.sources["shop"]["pulled"] == 3000

    lines = json_logs(logs)
    progress = [line for line in lines if line["event"] == "progress"]
    assert {line["run_id"] for line in progress} == {summary.run_id}
    pulls = [line for line in progress if line["stage"] == "pull"]
    assert len(pulls) >= 2
    assert {line["source"] for line in pulls} == {"shop"}
    records = [line["records"] for line in pulls]
    assert records == sorted(records) and 0 < records[0] < records[-1] <= 3000
    # the file's header and rows, every line read for the estimate
    assert {line["expected"] for line in pulls} == {3001}
    assert all(line["estimated"] is True for line in pulls)
    assert all(0 < line["percent"] < 100 and line["eta_s"] >= 0 for line in pulls)
    assert all(line["rate_per_s"] > 0 for line in pulls)

    sends = [line for line in progress if line["stage"] == "send"]
    if dry_run:
        assert sends == []
        return
    assert len(sends) >= 2
    assert {line["destination"] for line in sends} == {"vk"}
    rows = [line["rows"] for line in sends]
    assert rows == sorted(rows) and rows[0] < rows[-1] <= 3000
    # the due rows are counted before sending (an estimate: a row may come due twice)
    assert {line["expected"] for line in sends} == {3000}
    assert all(line["estimated"] is True and 0 < line["percent"] <= 100 for line in sends)
    # every progress line comes before the run's canonical line
    finished = next(i for i, line in enumerate(lines) if line["event"] == "run finished")
    assert all(lines.index(line) < finished for line in progress)


def test_a_run_shorter_than_the_interval_logs_no_progress_line(
    workdir: Path, sqlite_url: str
) -> None:
    write_orders(workdir, orders(300))
    logs = io.StringIO()
    configure_logging("json", "INFO", stream=logs)
    with Ledger.open(sqlite_url) as ledger:
        summary = pipeline(workdir, ledger, ProgressLog(interval=3600)).run(SyncOptions())
    events = [line["event"] for line in json_logs(logs)]
    assert summary.destinations["vk"]["delivered"] == 300
    assert "run finished" in events
    assert "progress" not in events


def test_an_estimate_passed_is_dropped_not_shown_past_100_percent() -> None:
    logs = io.StringIO()
    configure_logging("json", "INFO", stream=logs)
    progress = ProgressLog(interval=1, clock=Ticks())
    progress.start_run()
    try:
        progress.begin("pull", "shop", expected=10, estimated=True)
        progress.advance("pull", "shop", 5)
        progress.advance("pull", "shop", 10)
    finally:
        progress.stop_run()
    lines = [line for line in json_logs(logs) if line["event"] == "progress"]
    assert lines[0]["records"] == 5 and lines[0]["percent"] == 50.0
    assert lines[-1]["records"] == 15
    assert not {"expected", "percent", "eta_s"} & lines[-1].keys()


def test_the_terminal_display_shows_counts_rate_and_eta() -> None:
    out = io.StringIO()
    display = ProgressDisplay(Console(file=out, force_terminal=True, width=120), clock=Ticks())
    display.begin("pull", "shop", expected=1000, estimated=True)
    display.advance("pull", "shop", 250)
    display.begin("send", "vk")
    display.advance("send", "vk", 40)
    display.console.print(display.table())
    shown = out.getvalue()
    assert "shop" in shown and "250 / ~1,000 records" in shown and "25%  ETA" in shown
    assert "vk" in shown and "40 rows" in shown and "/s" in shown


def test_the_terminal_display_of_a_run_takes_the_log_lines_above_it(
    workdir: Path, sqlite_url: str
) -> None:
    write_orders(workdir, orders(300))
    logs = io.StringIO()
    configure_logging("console", "INFO", stream=logs)
    out = io.StringIO()
    display = ProgressDisplay(Console(file=out, force_terminal=True, width=160))
    with Ledger.open(sqlite_url) as ledger:
        pipeline(workdir, ledger, display).run(SyncOptions())
    shown = out.getvalue()
    # the last frame, before the display is cleared
    assert "shop" in shown and "300 records" in shown
    assert "vk" in shown and "300 rows" in shown
    # lines logged while it was shown went through its console; the rest did not
    assert "destination summary" in shown and "destination summary" not in logs.getvalue()
    assert "run finished" in logs.getvalue() and "run finished" not in shown


def test_the_records_of_a_csv_backlog_are_estimated_from_its_size(
    workdir: Path,
) -> None:
    path = write_orders(workdir, orders(2000))
    source = make_source(load_config(workdir / "convsync.yaml", env={}), "shop")
    assert estimate_records(source, SourceState()) == 2001  # header and rows
    st = path.stat()
    read = SourceState(files={"orders/a.csv": FileMark("orders/a.csv", st.st_size, st.st_mtime_ns)})
    assert estimate_records(source, read) is None  # nothing left to read


def test_a_large_csv_file_is_estimated_from_its_head_and_its_end(workdir: Path) -> None:
    path = write_orders(workdir, orders(60_000))
    assert path.stat().st_size > 3 * 2**20  # more than the two samples read
    source = make_source(load_config(workdir / "convsync.yaml", env={}), "shop")
    estimate = estimate_records(source, SourceState())
    assert estimate is not None and abs(estimate - 60_001) < 600
