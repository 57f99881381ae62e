"""A whole sync from the fake BigQuery through a real ledger (SQLite and PostgreSQL) to a
scripted VK destination: a GA4 purchase becomes a conversion once, the re-read days are
recognised, an intraday event read again from its daily table is not sent twice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from convsync.config.loader import load_config
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.bigquery_fake import FakeBigQuery
from tests.clock import Clock

from ..fakes import ScriptedDestination
from .conftest import day, purchase, seed

CONFIG = """\
timezone: UTC
sources:
  ga4:
    type: ga4_bigquery
    project: convsync-test
    dataset: convsync-test.analytics_123456789
    events: [purchase, generate_lead]
    intraday: true
    credentials_file: {key_file}
    api_endpoint: {base_url}
    maximum_bytes_billed: 1GB
    start_date: {start}
destinations:
  vk: {{type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}}
goals:
  purchase:
    source: ga4
    when: {{event_name: purchase}}
    value: value
    send:
      vk: {{goal: purchase}}
"""


def run(workdir: Path, ledger: Ledger) -> tuple[dict[str, int], list[str]]:
    loaded = load_config(workdir / "convsync.yaml", env={})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(
        loaded, ledger, destinations={"vk": dest}, clock=Clock(datetime.now(UTC))
    )
    summary = pipeline.run(SyncOptions())
    assert summary.status == "ok", summary
    return dict(summary.sources["ga4"]), [str(p["click"]) for b in dest.batches for p in b]


def test_sync_sends_each_ga4_purchase_once(
    tmp_path: Path, ledger: Ledger, fake: FakeBigQuery
) -> None:
    start = f"{day(-10)[:4]}-{day(-10)[4:6]}-{day(-10)[6:]}"
    (tmp_path / "convsync.yaml").write_text(
        CONFIG.format(key_file=fake.key_file, base_url=fake.base_url, start=start)
    )
    seed(fake.state, [day(-5), day(-2)])  # purchases 1–4 and page views
    seed(fake.state, [day(0)], start=5, table="events_intraday_")  # 5, 6 today so far
    lead = purchase(9, day(-2), name="generate_lead")  # pulled, but no goal takes it
    fake.state.add_event("events_" + day(-2), **lead)
    stats, sent = run(tmp_path, ledger)
    assert stats["pulled"] == 7 and stats["new"] == 6  # the lead matches no goal
    # VK's click id, parsed from page_location
    assert sorted(sent) == ["rb1", "rb2", "rb3", "rb4", "rb5", "rb6"]
    assert ledger.source_state("ga4").cursor == {"daily": day(-2)}

    # the day closes: today's events move to the daily table; one more arrives late
    fake.state.tables["events_" + day(0)] = fake.state.tables.pop("events_intraday_" + day(0))
    fake.state.add_event("events_" + day(-2), **purchase(8, day(-2)))
    stats, sent = run(tmp_path, ledger)
    assert stats.get("new", 0) == 1 and sent == ["rb8"]
    assert ledger.source_state("ga4").cursor == {"daily": day(0)}
