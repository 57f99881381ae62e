"""A whole sync from the fake Logs API through a real ledger (SQLite and PostgreSQL) to a
scripted VK destination: Metrica goals mapped to convsync goals by goal id, recorded
once, the re-read days ignored, a restart resuming from the saved date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from convsync.config.loader import load_config
from convsync.sources.metrica_logs.source import MetricaLogsSource
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock
from tests.metrica_logs_fake import FakeMetricaLogs

from ..fakes import ScriptedDestination
from .conftest import GOAL, OTHER_GOAL, seed

CONFIG = """\
timezone: Europe/Moscow
sources:
  web:
    type: metrica_logs
    counter_id: {counter_id}
    token: ${{METRICA_TOKEN}}
    api_base_url: {base_url}
    goal_ids: [{goal}, {other}]
    poll_interval: 1s
destinations:
  vk: {{type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}}
goals:
  lead:
    source: web
    when: {{metrica_goal_id: "{goal}"}}
    value: value
    currency: RUB
    send:
      vk: {{goal: lead}}
  call:
    source: web
    when: {{metrica_goal_id: "{other}", utm_source: yandex}}
    send:
      vk: {{goal: call}}
"""

DAY0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(fake: FakeMetricaLogs, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for the fake, the source (made by the pipeline) and the pipeline; no
    real waits."""
    now = Clock(DAY0)
    fake.state.clock = now
    monkeypatch.setattr(MetricaLogsSource, "clock", staticmethod(now))
    monkeypatch.setattr(MetricaLogsSource, "sleep", staticmethod(lambda seconds: None))
    monkeypatch.setattr(MetricaLogsSource, "rate_override", 1000.0)
    return now


def run(
    workdir: Path, ledger: Ledger, fake: FakeMetricaLogs, clock: Clock
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    loaded = load_config(workdir / "convsync.yaml", env={"METRICA_TOKEN": fake.state.token})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(loaded, ledger, destinations={"vk": dest}, clock=clock)
    summary = pipeline.run(SyncOptions())
    assert summary.status == "ok", summary
    sent = [(str(p["goal"]), str(p["click"])) for b in dest.batches for p in b]
    return dict(summary.sources["web"]), sorted(sent)


def test_metrica_goals_sync_once_and_the_rereads_are_ignored(
    tmp_path: Path, ledger: Ledger, fake: FakeMetricaLogs, clock: Clock
) -> None:
    text = CONFIG.format(counter_id=fake.state.counter_id, base_url=fake.base_url, goal=GOAL,
                         other=OTHER_GOAL)  # fmt: skip
    (tmp_path / "convsync.yaml").write_text(text)
    seed(fake.state, 2, days_back=3)  # two leads
    seed(fake.state, 1, start=3, days_back=1, goals=(OTHER_GOAL, GOAL))  # a call and a lead
    stats, sent = run(tmp_path, ledger, fake, clock)
    assert stats["pulled"] == 4 and stats["new"] == 4
    # the rb_clickid parsed from each visit's landing URL
    assert sent == [("call", "rb3"), ("lead", "rb1"), ("lead", "rb2"), ("lead", "rb3")]
    assert ledger.source_state("web").cursor["date"] == "2026-11-24"  # type: ignore[index]
    assert fake.state.unclean() == []

    # later the same day: nothing is asked of Metrica at all
    fake.state.calls.clear()
    stats, sent = run(tmp_path, ledger, fake, clock)
    assert fake.state.calls == [] and sent == [] and stats.get("new", 0) == 0

    # the next day (a restarted worker, same ledger): the 3 days before the cursor are
    # read again, their conversions already recorded; only the new lead is sent
    clock.now += timedelta(days=1)
    seed(fake.state, 1, start=4, days_back=1)
    stats, sent = run(tmp_path, ledger, fake, clock)
    create = fake.state.calls_of("create")[0].query
    assert (create["date1"], create["date2"]) == ("2026-11-22", "2026-11-25")
    assert stats["pulled"] == 5 and stats.get("new", 0) == 1
    assert sent == [("lead", "rb4")]
    assert fake.state.unclean() == []
