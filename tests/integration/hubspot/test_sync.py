"""A whole sync from the fake HubSpot through a real ledger (SQLite and PostgreSQL) to a
scripted destination: recorded once, the overlap re-pulled and ignored, a restart
resumes from the saved cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from convsync.config.loader import load_config
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock
from tests.hubspot_fake import FakeHubSpot
from tests.hubspot_fake.state import SEARCH

from ..fakes import ScriptedDestination
from .conftest import NOW, seed

CONFIG = """\
timezone: Europe/Moscow
sources:
  crm:
    type: hubspot
    token: ${{HUBSPOT_TOKEN}}
    api_base_url: {base_url}
    lookback: 10m
    search_requests_per_second: 100
    requests_per_second: 100
    # mapped again only because the config check does not know the defaults yet
    fields: {{value: amount}}
destinations:
  vk: {{type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}}
goals:
  won:
    source: crm
    value: value
    currency: USD
    send:
      vk: {{goal: purchase}}
"""


def run(workdir: Path, ledger: Ledger, fake: FakeHubSpot) -> tuple[dict[str, int], list[str]]:
    loaded = load_config(workdir / "convsync.yaml", env={"HUBSPOT_TOKEN": fake.state.token})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(
        loaded, ledger, destinations={"vk": dest}, clock=Clock(datetime.now(UTC))
    )
    summary = pipeline.run(SyncOptions())
    assert summary.status == "ok", summary
    return dict(summary.sources["crm"]), [str(p["click"]) for b in dest.batches for p in b]


def test_sync_records_once_repulls_the_overlap_and_resumes(
    tmp_path: Path, ledger: Ledger, fake: FakeHubSpot
) -> None:
    (tmp_path / "convsync.yaml").write_text(CONFIG.format(base_url=fake.base_url))
    seed(fake.state, 4)  # a day old
    seed(fake.state, 1, start=5, modified=NOW - timedelta(minutes=3))  # inside the lookback
    stats, sent = run(tmp_path, ledger, fake)
    assert stats["pulled"] == 5 and stats["new"] == 5
    # the click id parsed from the contact's first page URL
    assert sorted(sent) == ["rb1", "rb2", "rb3", "rb4", "rb5"]
    cursor = ledger.source_state("crm").cursor
    assert cursor is not None and datetime.fromisoformat(cursor["modified"]) >= NOW

    # the next run re-reads only the lookback: deal 5 (changed 3 minutes before the
    # cursor, if the first run was quick) at most, and records nothing new
    stats, sent = run(tmp_path, ledger, fake)
    assert stats["pulled"] <= 1 and stats.get("new", 0) == 0 and sent == []

    # a deal won since: a restarted worker (new pipeline, same ledger) resumes from the
    # saved cursor minus the lookback
    saved = ledger.source_state("crm").cursor
    assert saved is not None
    seed(fake.state, 1, start=6, modified=datetime.now(UTC))
    stats, sent = run(tmp_path, ledger, fake)
    assert stats.get("new", 0) == 1 and sent == ["rb6"]
    gte = fake.state.requests_to(SEARCH)[-1].body["filterGroups"][0]["filters"][0]["value"]
    expected = datetime.fromisoformat(saved["modified"]) - timedelta(minutes=10)
    assert int(gte) == int(expected.timestamp() * 1000)
