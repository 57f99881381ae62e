"""Whole sync runs over CSV exports that are not what they should be (issue 12): a file
still being written (D2), one line in another encoding (D3), a cell too large for the
csv module (D6). CSV → goals → ledger → the scripted VK destination."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from convsync.config.loader import load_config
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock

from .conftest import HEADER
from .fakes import ScriptedDestination


def run(workdir: Path, ledger: Ledger) -> tuple[ScriptedDestination, dict[str, int]]:
    loaded = load_config(workdir / "convsync.yaml", env={})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(
        loaded, ledger, destinations={"vk": dest}, clock=Clock(), sleep=lambda _s: None
    )
    summary = pipeline.run(SyncOptions())
    assert summary.status == ("degraded" if summary.rejected_records else "ok")
    return dest, dict(summary.sources.get("shop", {}))


def clicks(dest: ScriptedDestination) -> list[str]:
    return [p["click"] for batch in dest.batches for p in batch]


def order(i: int, click: str, status: str = "paid") -> str:
    return f"A-{i},2026-11-20 10:{i:02d}:00,{status},100.50,RUB,,,{click},"


def age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def failures(ledger: Ledger) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (f.origin, f.column, f.code)
        for f in ledger.failures(datetime(2026, 1, 1, tzinfo=UTC))
        if f.kind == "record"
    ]


def test_a_half_written_line_is_sent_once_complete(workdir: Path, ledger: Ledger) -> None:
    """D2: VK received rb_clickid=vkpartial12, and never the completed click id."""
    path = workdir / "orders" / "a.csv"
    path.write_text(HEADER + order(1, "click1") + "\n" + order(2, "vkpartial12")[:-1])
    dest, stats = run(workdir, ledger)
    assert clicks(dest) == ["click1"]
    assert stats["pulled"] == 1

    path.write_text(HEADER + order(1, "click1") + "\n" + order(2, "vkpartial123456789") + "\n")
    dest, stats = run(workdir, ledger)
    assert clicks(dest) == ["vkpartial123456789"]
    assert (stats["pulled"], stats["new"]) == (2, 1)

    dest, stats = run(workdir, ledger)
    assert clicks(dest) == [] and stats.get("pulled", 0) == 0
    assert failures(ledger) == []


def test_a_last_line_without_newline_is_sent_once(workdir: Path, ledger: Ledger) -> None:
    """Exporters that omit the final newline: the last order is sent, once."""
    path = workdir / "orders" / "a.csv"
    path.write_text(HEADER + order(1, "click1") + "\n" + order(2, "click2"))
    dest, _ = run(workdir, ledger)
    assert clicks(dest) == ["click1"]  # the file just changed: its end may be half-written
    age(path, 120)  # the same bytes, a while later
    dest, _ = run(workdir, ledger)
    assert clicks(dest) == ["click2"]
    dest, stats = run(workdir, ledger)
    assert clicks(dest) == [] and stats.get("pulled", 0) == 0

    # and a file finished long ago goes whole in one run
    other = workdir / "orders" / "b.csv"
    other.write_text(HEADER + order(3, "click3") + "\n" + order(4, "click4"))
    age(other)
    dest, _ = run(workdir, ledger)
    assert clicks(dest) == ["click3", "click4"]


def test_one_cp1251_line_in_a_utf8_export(workdir: Path, ledger: Ledger) -> None:
    """D3: with ``when: {status: оплачен}``, 1 conversion was recorded instead of 21, with
    nothing in failures. Now: the 21 UTF-8 orders, and the cp1251 line in failures."""
    config = workdir / "convsync.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("[paid]", "[оплачен]"), encoding="utf-8"
    )
    rows = [order(i, f"click{i}", "оплачен").encode() + b"\n" for i in range(2, 23)]
    edited = order(1, "click1", "оплачен").encode("cp1251") + b"\r\n"  # saved by Excel
    (workdir / "orders" / "a.csv").write_bytes(HEADER.encode() + edited + b"".join(rows))
    dest, stats = run(workdir, ledger)
    assert (stats["pulled"], stats["rejected"], stats["new"]) == (22, 1, 21)
    assert sorted(clicks(dest)) == sorted(f"click{i}" for i in range(2, 23))
    assert failures(ledger) == [("orders/a.csv:2", "status", "bad_encoding")]
    (failure,) = [
        f for f in ledger.failures(datetime(2026, 1, 1, tzinfo=UTC)) if f.kind == "record"
    ]
    assert failure.message is not None and "line 2 is not valid UTF-8" in failure.message


def test_an_oversize_cell_rejects_its_row_and_the_rest_is_sent(
    workdir: Path, ledger: Ledger
) -> None:
    """D6: a cell over 131,072 characters stopped the source on every run, silently."""
    big = "x" * 200_000
    (workdir / "orders" / "a.csv").write_text(
        HEADER
        + order(1, "click1") + "\n"
        + f'A-2,2026-11-20 10:02:00,paid,100,RUB,"{big}",,click2,\n'
        + order(3, "click3") + "\n"
    )  # fmt: skip
    dest, stats = run(workdir, ledger)
    assert clicks(dest) == ["click1", "click3"]
    assert (stats["pulled"], stats["rejected"]) == (3, 1)
    assert failures(ledger) == [("orders/a.csv:3", "email", "field_too_large")]
    dest, stats = run(workdir, ledger)  # the file is remembered: no new failure, no re-read
    assert clicks(dest) == [] and stats.get("pulled", 0) == 0
