"""The amoCRM source in a whole sync: fake account → goals → real ledger → scripted
destination; a second run re-reads only the lookback and records nothing new; a restart
resumes from the saved cursor."""

from __future__ import annotations

from pathlib import Path

import pytest

from convsync.config.loader import load_config
from convsync.core.errors import ConfigError
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.amocrm_fake import FakeAmo
from tests.amocrm_fake.server import TOKEN
from tests.integration.fakes import ScriptedDestination

from .conftest import now

CONFIG = """\
timezone: Europe/Moscow
sources:
  crm:
    type: amocrm
    subdomain: test
    pipeline_id: 7001
    auth: {{token: "${{AMO_TOKEN}}"}}
    lookback: 10m
    api_base_url: {base}
    fields:
      vk_click_id: {{field_name: Клик VK}}
      gclid: lead.GCLID
      email: contact.email
      # implicit (value ← lead.price, status ← lead.status), written out until the
      # config check knows a source's implicit fields
      value: lead.price
      status: lead.status
destinations:
  vk: {{type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}}
goals:
  won:
    source: crm
    when: {{status: won}}
    value: value
    currency: RUB
    send:
      vk: {{goal: purchase}}
"""


def run(tmp_path: Path, amo: FakeAmo, ledger: Ledger) -> tuple[dict[str, int], ScriptedDestination]:
    path = tmp_path / "convsync.yaml"
    path.write_text(CONFIG.format(base=amo.base_url), encoding="utf-8")
    loaded = load_config(path, env={"AMO_TOKEN": TOKEN})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(loaded, ledger, destinations={"vk": dest}, sleep=lambda _s: None)
    summary = pipeline.run(SyncOptions())
    assert summary.status == "ok", summary
    return dict(summary.sources.get("crm", {})), dest


def test_won_leads_are_recorded_once_and_a_restart_resumes(
    tmp_path: Path, amo: FakeAmo, ledger: Ledger
) -> None:
    old, recent = now() - 7200, now() - 120
    amo.add_won_lead(1, old, vk_click="rb-1", email="a@example.ru", contact_id=9)
    amo.add_won_lead(2, old + 60, vk_click="rb-2")
    amo.add_won_lead(3, recent, vk_click="rb-3", status_id=143)  # won, then lost
    amo.add_won_lead(4, recent + 1, gclid="only-google")  # no VK id: skipped, not failed
    counts, dest = run(tmp_path, amo, ledger)
    assert counts["pulled"] == 4 and counts["new"] == 3
    assert sorted(dest.sent_orders) == ["1", "2"]

    counts, dest = run(tmp_path, amo, ledger)  # within the 10-minute lookback: 3 and 4
    assert counts.get("pulled", 0) == 2 and counts.get("new", 0) == 0
    assert dest.batches == []

    amo.add_won_lead(5, now() - 30, vk_click="rb-5")  # won since
    amo.requests.clear()
    counts, dest = run(tmp_path, amo, ledger)
    assert counts.get("new", 0) == 1 and dest.sent_orders == ["5"]
    state = ledger.source_state("crm")
    assert state.cursor is not None and state.cursor["created_at"] >= now() - 5
    since = next(dict(s.query) for s in amo.requests if s.path == "/api/v4/events")
    assert int(since["filter[created_at][from]"]) >= now() - 700  # resumed, not from scratch


def test_a_literal_token_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "convsync.yaml"
    text = CONFIG.format(base="http://127.0.0.1:9").replace('"${AMO_TOKEN}"', "abcdef123456")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sources\.crm\.auth\.token: credentials are not"):
        load_config(path, env={})
