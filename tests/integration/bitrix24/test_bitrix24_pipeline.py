"""The Bitrix24 source in a sync: fake portal → goals → real ledger → scripted sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from convsync.config.loader import load_config
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.bitrix24_fake import FakeBitrix24, Fault
from tests.integration.fakes import ScriptedDestination

from .conftest import EMAILS

CONFIG = """\
timezone: Europe/Moscow
phone_region: RU
sources:
  crm:
    type: bitrix24
    webhook_url: "${B24_WEBHOOK}"
    category_id: 1
    lookback: 10m
    rate_limit: {per_second: 50, burst: 50}
    fields: {value: OPPORTUNITY, currency: CURRENCY_ID, vk_click_id: UF_CRM_RB_CLICKID,
             email: contact.EMAIL, stage: STAGE_ID}
destinations:
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  purchase:
    source: crm
    when: {stage: "C1:WON"}
    value: value
    send:
      vk: {goal: purchase}
"""


def win(fake: FakeBitrix24, deal_id: int, at: datetime, stage: str = "C1:WON") -> None:
    fake.portal.add_win(
        deal_id,
        at.astimezone(UTC).isoformat(),
        category=1,
        stage=stage,
        deal={"UF_CRM_RB_CLICKID": f"click{deal_id}", "OPPORTUNITY": "990.50"},
        contact={"EMAIL": [{"VALUE_TYPE": "WORK", "VALUE": EMAILS[0]}]},
    )


def run(tmp_path: Path, fake: FakeBitrix24, ledger: Ledger) -> tuple[dict[str, int], list[str]]:
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    loaded = load_config(tmp_path / "convsync.yaml", env={"B24_WEBHOOK": fake.webhook_url})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(loaded, ledger, destinations={"vk": dest}, sleep=lambda s: None)
    summary = pipeline.run(SyncOptions())
    assert summary.status == "ok", summary.user_errors
    return dict(summary.sources.get("crm", {})), dest.sent_orders


def test_won_deals_are_recorded_once_and_a_restart_resumes(
    tmp_path: Path, fake: FakeBitrix24, ledger: Ledger
) -> None:
    now = datetime.now(UTC)
    for n in range(1, 6):
        win(fake, n, now - timedelta(hours=6 - n))
    win(fake, 6, now - timedelta(minutes=30), stage="C1:PAID")  # won, not this goal's stage
    stats, sent = run(tmp_path, fake, ledger)
    assert stats["pulled"] == 6 and stats["new"] == 5
    assert sorted(sent) == ["1", "2", "3", "4", "5"]
    cursor = ledger.source_state("crm").cursor
    assert cursor is not None and cursor["history_id"] == 6

    # the next run re-reads only the lookback window before the last win (deal 6, 30
    # minutes ago) and records nothing new
    stats, sent = run(tmp_path, fake, ledger)
    assert stats["pulled"] == 1 and stats.get("new", 0) == 0 and sent == []

    # new wins after a restart: only they are pulled past the window
    win(fake, 7, now - timedelta(minutes=1))
    win(fake, 8, now - timedelta(minutes=1))
    stats, sent = run(tmp_path, fake, ledger)
    assert stats["new"] == 2 and sorted(sent) == ["7", "8"]
    history_pages = fake.portal.requests_for("crm.stagehistory.list")
    assert history_pages[-1].params["filter"][">=CREATED_TIME"]  # restarted from the time


def test_no_webhook_code_or_raw_email_in_the_logs_or_the_ledger(
    tmp_path: Path,
    fake: FakeBitrix24,
    ledger: Ledger,
    ledger_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    win(fake, 1, datetime.now(UTC) - timedelta(hours=1))
    fake.portal.faults.append(Fault(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"))
    run(tmp_path, fake, ledger)
    broken = fake.webhook_url.replace(fake.portal.code, "an0therc0de")
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    loaded = load_config(tmp_path / "convsync.yaml", env={"B24_WEBHOOK": broken})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    summary = SyncPipeline(loaded, ledger, destinations={"vk": dest}).run(SyncOptions())
    assert summary.status == "failed" and "webhook_url" in summary.user_errors[0]
    out = capsys.readouterr()
    said = out.out + out.err + "\n".join(summary.user_errors)
    assert "source stopped" in said
    texts = [said]
    if ledger_url.startswith("sqlite:///"):
        texts.append(Path(ledger_url.removeprefix("sqlite:///")).read_bytes().decode("latin-1"))
    for text in texts:
        for needle in (fake.portal.code, "an0therc0de", EMAILS[0]):
            assert needle not in text
