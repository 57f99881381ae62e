"""Risky defaults through the real CSV source and pipeline: times without a UTC offset
read as UTC and phones without a country code dropped are counted per source when the
config leaves ``timezone`` / ``phone_region`` unset, in one process or two, logged as
``risky default``, and found by ``convsync validate``'s scan as by a run."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import structlog

from convsync.config.loader import load_config
from convsync.store.ledger import Ledger
from convsync.sync.notice_scan import scan_notices
from convsync.sync.notices import render_notices
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from convsync.sync.summary import RunSummary

from .conftest import CONFIG, write_orders
from .fakes import ScriptedDestination, deliver_all

WITH_TIMEZONE = "timezone: Europe/Moscow\n"
WITH_REGION = "phone_region: RU\n"
ROWS = [
    # 3 times without an offset, 2 with one, 1 Unix time (an instant: no offset to miss)
    "A-1,2026-11-20 10:01:00,paid,100,RUB,,8 (912) 345-67-89,click1,",
    "A-2,20.11.2026 10:02,paid,100,RUB,,,click2,",
    "A-3,2026-11-20 10:03:00,new,100,RUB,,8 912 345-67-90,click3,",  # no goal: phone unread
    "A-4,2026-11-20T10:04:00+03:00,paid,100,RUB,,+7 912 345-67-91,click4,",
    "A-5,2026-11-20T07:05:00Z,paid,100,RUB,,89123456792,click5,",
    "A-6,1795000000,paid,100,RUB,,,click6,",
]
BOTH = {"naive_time:shop": 3, "phone_without_region:shop": 2}


def configure(workdir: Path, *, timezone: bool, region: bool) -> None:
    text = CONFIG if timezone else CONFIG.replace(WITH_TIMEZONE, "")
    text = text if region else text.replace(WITH_REGION, "")
    (workdir / "convsync.yaml").write_text(text, encoding="utf-8")


def run(workdir: Path, ledger: Ledger) -> RunSummary:
    """A real run, delivered by a scripted VK."""
    loaded = load_config(workdir / "convsync.yaml", env={})
    vk = ScriptedDestination("vk", loaded.app.destinations["vk"], deliver_all)  # type: ignore[arg-type]
    return SyncPipeline(loaded, ledger, destinations={"vk": vk}).run(SyncOptions())


def test_unset_timezone_and_region_are_counted_logged_and_rendered(
    workdir: Path, ledger: Ledger
) -> None:
    configure(workdir, timezone=False, region=False)
    write_orders(workdir, ROWS)
    with structlog.testing.capture_logs() as logs:
        summary = run(workdir, ledger)
    assert summary.notices == BOTH
    assert summary.as_dict()["notices"] == BOTH
    lines = render_notices(summary.notices, load_config(workdir / "convsync.yaml", env={}))
    assert lines == [
        "sources.shop: 3 rows have times without a UTC offset (column 'created_at') and "
        "were read as UTC; set timezone at the top of the config (e.g. timezone: "
        "Europe/Moscow) if they are local times",
        "sources.shop: 2 rows have phones without a country code (column 'phone'), which "
        "were dropped; set phone_region at the top of the config (e.g. phone_region: RU) "
        "to read them",
    ]
    warned = [e["reason"] for e in logs if e["event"] == "risky default"]
    assert warned == lines
    assert all(e["log_level"] == "warning" for e in logs if e["event"] == "risky default")
    assert summary.status == "ok"  # advice, not a failure


def test_a_set_timezone_and_region_give_no_notice(workdir: Path, ledger: Ledger) -> None:
    configure(workdir, timezone=True, region=True)
    write_orders(workdir, ROWS)
    with structlog.testing.capture_logs() as logs:
        summary = run(workdir, ledger)
    assert summary.sources["shop"]["pulled"] == 6
    assert summary.notices == {}
    assert "notices" not in summary.as_dict()
    assert not [e for e in logs if e["event"] == "risky default"]


def test_each_setting_silences_only_its_own_notice(workdir: Path, tmp_path: Path) -> None:
    write_orders(workdir, ROWS)
    found = {}
    for timezone, region in ((True, False), (False, True)):
        configure(workdir, timezone=timezone, region=region)
        ledger = Ledger.open(f"sqlite:///{tmp_path / f'{timezone}-{region}.db'}")
        try:
            found[timezone, region] = run(workdir, ledger).notices
        finally:
            ledger.close()
    assert found[True, False] == {"phone_without_region:shop": 2}
    assert found[False, True] == {"naive_time:shop": 3}


def test_a_source_timezone_counts_as_set(workdir: Path, ledger: Ledger) -> None:
    configure(workdir, timezone=False, region=True)
    config = workdir / "convsync.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("type: csv\n", "type: csv\n    timezone: Asia/Omsk\n"))
    write_orders(workdir, ROWS)
    assert run(workdir, ledger).notices == {}


def test_counts_are_the_same_in_a_mapping_process(workdir: Path, tmp_path: Path) -> None:
    configure(workdir, timezone=False, region=False)
    write_orders(workdir, ROWS * 3, name="a.csv")
    write_orders(workdir, [r.replace("A-", "B-") for r in ROWS], name="b.csv")
    loaded = load_config(workdir / "convsync.yaml", env={})
    counts = []
    for min_bytes in (None, 0):
        ledger = Ledger.open(f"sqlite:///{tmp_path / f'{min_bytes}.db'}")
        try:
            # the configured destinations, which a mapping process builds for itself; 4
            # rows a chunk, so that counts are handed over chunk by chunk
            pipeline = SyncPipeline(loaded, ledger, chunk_size=4, map_process_min_bytes=min_bytes)
            counts.append(pipeline.run(SyncOptions()).notices)
        finally:
            ledger.close()
    assert counts[0] == counts[1] == {"naive_time:shop": 12, "phone_without_region:shop": 8}


def test_validate_scan_gives_the_lines_of_a_run(workdir: Path, ledger: Ledger) -> None:
    configure(workdir, timezone=False, region=False)
    write_orders(workdir, ROWS)
    loaded = load_config(workdir / "convsync.yaml", env={})
    scanned = scan_notices(loaded)
    assert scanned == render_notices(run(workdir, ledger).notices, loaded)
    assert len(scanned) == 2
    # the scan reads the files as they are, whatever the ledger remembers
    assert scan_notices(load_config(workdir / "convsync.yaml", env={})) == scanned


def test_validate_scan_is_empty_with_both_set_and_skips_unreadable_sources(
    workdir: Path,
) -> None:
    configure(workdir, timezone=True, region=True)
    write_orders(workdir, ROWS)
    assert scan_notices(load_config(workdir / "convsync.yaml", env={})) == []
    configure(workdir, timezone=False, region=False)
    (workdir / "orders" / "a.csv").write_text("order_id,created_at\nB-1,2026-11-20\n")
    assert scan_notices(load_config(workdir / "convsync.yaml", env={})) == []


SQL_CONFIG = """\
sources:
  crm:
    type: sql
    url: sqlite:///crm.db
    query: SELECT id, closed_at, status, phone FROM deals WHERE id >= :cursor
    id: id
    time: closed_at
    cursor: id
    start: 0
    fields: {status: status, phone: phone}
destinations:
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  won:
    source: crm
    when: {status: won}
    send:
      vk: {goal: won}
"""


def test_validate_scan_reads_an_sql_source(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE deals (id INTEGER, closed_at TEXT, status TEXT, phone TEXT)"
        )
        connection.exec_driver_sql(
            "INSERT INTO deals VALUES "
            "(1, '2026-11-20 10:00:00', 'won', '8 (912) 345-67-89'), "
            "(2, '2026-11-20T10:00:00+03:00', 'won', '+7 912 345-67-89'), "
            "(3, '2026-11-21', 'lost', '8 (912) 345-67-89')"
        )
    engine.dispose()
    (tmp_path / "convsync.yaml").write_text(SQL_CONFIG, encoding="utf-8")
    lines = scan_notices(load_config(tmp_path / "convsync.yaml", env={}))
    assert [line.split(";")[0] for line in lines] == [
        "sources.crm: 2 rows have times without a UTC offset (column 'closed_at') and were "
        "read as UTC",
        "sources.crm: 1 row has phones without a country code (column 'phone'), which were dropped",
    ]
