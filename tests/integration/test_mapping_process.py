"""A large backlog may be mapped in a second process for the record step: the ledger
ends up exactly as with one process, and a source the user must fix still stops alone.
A dry run always maps in its own process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from convsync.config.loader import load_config
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline

from .conftest import write_orders

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
#: yesterday: these runs use the real clock, and VK takes events up to 30 days old
DAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
ROWS = [
    f"A-1,{DAY} 10:01:00,paid,1 500,RUB,a@example.com,+7 900 000-00-01,click1,",
    f"A-2,{DAY} 10:02:00,paid,10,RUB,,,,EAIaIQobChMIabcdef",
    f"A-3,{DAY} 10:03:00,new,10,RUB,,,click3,",
    f"A-4,{DAY} 10:04:00,paid,lots,RUB,,,click4,",
    "A-5,not a time,paid,10,RUB,,,click5,",
]


def sync(workdir: Path, ledger: Ledger, min_bytes: int | None) -> dict[str, dict[str, int]]:
    loaded = load_config(workdir / "convsync.yaml", env={})
    pipeline = SyncPipeline(loaded, ledger, map_process_min_bytes=min_bytes)
    summary = pipeline.run(SyncOptions())
    assert summary.user_errors == []
    return {name: dict(counts) for name, counts in summary.sources.items()}


def test_a_mapping_process_records_what_one_process_records(workdir: Path, tmp_path: Path) -> None:
    write_orders(workdir, ROWS)
    one = Ledger.open(f"sqlite:///{tmp_path / 'one.db'}")
    two = Ledger.open(f"sqlite:///{tmp_path / 'two.db'}")
    try:
        in_process = sync(workdir, one, None)
        in_child = sync(workdir, two, 0)
        assert (
            in_child
            == in_process
            == {"shop": {"pulled": 5, "rejected": 2, "new": 2, "planned": 1, "skipped": 1}}
        )
        assert one.funnel(one.recent_runs(1)[0].started_at.replace(year=2000)) == two.funnel(
            two.recent_runs(1)[0].started_at.replace(year=2000)
        )
        failures = sorted(
            (f.origin, f.code)
            for f in two.failures(two.recent_runs(1)[0].started_at.replace(year=2000))
        )
        assert failures == [("orders/a.csv:5", "bad_value"), ("orders/a.csv:6", "bad_time")]
        # the file manifest was saved with the chunks: nothing is read again
        assert sync(workdir, two, 0) == {"shop": {}}
    finally:
        one.close()
        two.close()


def test_a_source_error_in_the_mapping_process_stops_that_source(
    workdir: Path, ledger: Ledger
) -> None:
    (workdir / "orders" / "b.csv").write_text(
        "order_id,created_at\nB-1,2026-11-20\n", encoding="utf-8"
    )
    loaded = load_config(workdir / "convsync.yaml", env={})
    summary = SyncPipeline(loaded, ledger, map_process_min_bytes=0).run(SyncOptions())
    (problem,) = summary.user_errors
    assert "orders/b.csv" in problem and "sources.shop.fields.status" in problem
    assert summary.status == "failed"


def test_a_dry_run_maps_in_its_own_process_whatever_the_setting(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a dry run has no ledger writes for a second process to overlap: the setting that
    # asks for one for any backlog (0) leaves its plan as it is, and starts none
    def refuse(self: object) -> None:
        raise AssertionError("a dry run started a mapping process")

    monkeypatch.setattr("convsync.sync.mapping.MappingProcess.__iter__", refuse)
    write_orders(workdir, ROWS)
    loaded = load_config(workdir / "convsync.yaml", env={})
    plans = []
    for min_bytes, name in ((None, "one.jsonl"), (0, "two.jsonl")):
        ledger = Ledger.open(f"sqlite:///{tmp_path / 'absent.db'}", read_only=True)
        try:
            pipeline = SyncPipeline(loaded, ledger, map_process_min_bytes=min_bytes)
            summary = pipeline.run(SyncOptions(dry_run=True, output=tmp_path / name))
        finally:
            ledger.close()
        plans.append(((tmp_path / name).read_text(encoding="utf-8"), summary.plan, summary.held))
    assert plans[0] == plans[1]
    text, counts, held = plans[0]
    assert '"order":"A-1"' not in text and '"rb_clickid":"click1"' in text
    assert counts == {("vk", "purchase"): {"send": 1, "skipped": 1}}
    skipped = held[("vk", "purchase", "skipped", "no_identifier")]
    assert skipped.count == 1 and skipped.examples == ["A-2"]
    assert skipped.message == "no identifier vk_ads can match"
    assert '"skipped":{"code":"no_identifier"' in text
    assert not (tmp_path / "absent.db").exists()
