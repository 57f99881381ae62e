"""The alert engine on a real ledger (SQLite and PostgreSQL) and a fake Telegram: each rule
fires once however often it is evaluated, and resolves once; the Tuesday volume drop; an
alert no longer checked, one that never went out; messages masked as log lines are."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from structlog.testing import capture_logs

from convsync.config.alerts import AlertRules
from convsync.config.loader import load_config
from convsync.config.models import LoadedConfig
from convsync.core.logging import register_secret
from convsync.core.model import Conversion, DeliveryState, Transition
from convsync.service.alerts.engine import evaluate, notify
from convsync.store.ledger import Ledger
from tests.alerts_fake import FakeTelegram
from tests.alerts_fake.telegram import TOKEN
from tests.integration.store.factory import conversion, plan

MSK = ZoneInfo("Europe/Moscow")
#: a Tuesday, 14:00 in Moscow
TUESDAY_2PM = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
A_DAY_BEFORE = TUESDAY_2PM - timedelta(days=1)
UNREACHABLE = "http://127.0.0.1:9"

SHOP = """\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, currency: currency, gclid: gclid,
             metrica_client_id: ym_uid, vk_click_id: rb_clickid}
"""
VK_ONLY = f"""\
destinations:
  vk: {{type: vk_ads, pixel_id: 42, tracker_url: "{UNREACHABLE}/tracker"}}
goals:
  purchase:
    source: shop
    when: {{status: [paid]}}
    value: value
    currency: RUB
    send:
      vk: {{goal: purchase}}
"""


def alerts_section(
    telegram: FakeTelegram, only: str | None = None, **rules: dict[str, Any]
) -> dict[str, Any]:
    """An ``alerts:`` section with one Telegram channel at the fake (its token from the
    environment, as the config requires); with ``only``, every other rule turned off."""
    if only is not None:
        rules = {name: {"enabled": False} for name in AlertRules.model_fields if name != only} | {
            only: rules.get(only, {})
        }
    return {"channels": {"ops": telegram.channel(bot_token="${TG_TOKEN}")}, "rules": rules}


def load(
    folder: Path,
    alerts: dict[str, Any] | None,
    body: str = VK_ONLY,
    env: dict[str, str] | None = None,
) -> LoadedConfig:
    (folder / "orders").mkdir(exist_ok=True)
    text = SHOP + body + (f"alerts: {json.dumps(alerts)}\n" if alerts is not None else "")
    path = folder / "convsync.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={"TG_TOKEN": TOKEN, **(env or {})})


def texts(telegram: FakeTelegram) -> list[str]:
    return [message["text"] for message in telegram.state.messages]


def finish_run(
    ledger: Ledger,
    n: int,
    at: datetime,
    destinations: dict[str, Any] | None = None,
    sources: dict[str, Any] | None = None,
) -> None:
    run_id = f"run-{n:03d}"
    ledger.start_run(run_id=run_id, trigger="schedule", started_at=at - timedelta(minutes=1))
    summary = {
        "dry_run": False,
        "sources": sources or {},
        "goals": {},
        "destinations": destinations or {},
    }
    ledger.finish_run(run_id=run_id, status="ok", finished_at=at, summary=summary)


def record(ledger: Ledger, conversions: Sequence[Conversion], now: datetime) -> None:
    ledger.record_chunk(
        run_id="seed",
        source="shop",
        conversions=conversions,
        deliveries=plan(conversions, ["vk"]),
        rejections=[],
        cursor=None,
        files_done=[],
        now=now,
    )


def orders(prefix: str, count: int, at: datetime) -> list[Conversion]:
    return [
        conversion(f"{prefix}-{i}", occurred_at=at + timedelta(seconds=i)) for i in range(count)
    ]


def waiting(ledger: Ledger, count: int = 1, since: datetime = A_DAY_BEFORE) -> None:
    """``count`` orders recorded at ``since``, their vk deliveries due."""
    record(ledger, orders(f"waiting{since:%j%H%M}", count, since - timedelta(hours=1)), since)


def deliver(ledger: Ledger, at: datetime) -> list[int]:
    """Every due vk delivery delivered at ``at``; their ids."""
    claimed = ledger.claim(
        destination="vk", limit=1000, lease=timedelta(minutes=10), batch_id=f"b{at:%j%H%M}",
        run_id="r", now=at,
    )  # fmt: skip
    ids = sorted(c.delivery_id for c in claimed)
    ledger.apply([Transition(i, DeliveryState.DELIVERED) for i in ids], run_id="r", now=at)
    return ids


# --- each rule: fires once, stays single, resolves once ---


def test_a_failing_destination_alerts_once_and_resolves_once(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "destination_failing"))
    down = {
        "vk": {
            "requests": 0,
            "stopped": "tracker_unreachable: VK pixel tracker at 127.0.0.1:9: connection refused",
        }
    }
    at = TUESDAY_2PM
    for n in range(1, 5):
        finish_run(ledger, n, at, destinations=down)
        with capture_logs() as logs:
            notify(loaded, ledger, at)
        at += timedelta(minutes=15)
        fired = [e for e in logs if e["event"] == "alert fired"]
        assert len(fired) == (1 if n == 2 else 0)
    assert texts(telegram) == [
        "convsync: vk stopped for 2 runs in a row: tracker_unreachable: VK pixel tracker at "
        "127.0.0.1:9: connection refused"
    ]
    finish_run(ledger, 5, at, destinations={"vk": {"requests": 2, "delivered": 40}})
    notify(loaded, ledger, at)
    notify(loaded, ledger, at + timedelta(minutes=15))
    assert texts(telegram)[1:] == [
        "convsync: resolved: vk works again: its last run delivered 40 rows without stopping"
    ]
    assert ledger.alert_states(firing_only=True) == []


def test_a_message_is_masked_as_log_lines_are(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(
        tmp_path, alerts_section(telegram, "destination_failing", destination_failing={"runs": 1})
    )
    register_secret("s3cret-api-key-in-an-answer")
    said = "auth_failed: the key s3cret-api-key-in-an-answer of owner@example.com was revoked"
    finish_run(ledger, 1, TUESDAY_2PM, destinations={"vk": {"stopped": said}})
    notify(loaded, ledger, TUESDAY_2PM)
    assert texts(telegram) == [
        "convsync: vk stopped for 1 run in a row: auth_failed: the key ********** of <email> was revoked"
    ]


def test_a_rejected_share_alerts_once_and_resolves(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "rejected_share"))
    bad = {"shop": {"pulled": 50, "rejected": 25}}
    for n in (1, 2):
        finish_run(ledger, n, TUESDAY_2PM + timedelta(minutes=n), sources=bad)
        notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=n))
    finish_run(ledger, 3, TUESDAY_2PM + timedelta(minutes=3), sources={"shop": {"pulled": 50}})
    notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=3))
    assert texts(telegram) == [
        "convsync: the last run rejected 50 % of its rows: 25 of 50 (0 deliveries, 25 source "
        "records); the limit is 20 % (convsync failures lists them)",
        "convsync: resolved: the last run rejected 0 % of its rows (0 of 50), within the 20 % limit",
    ]


def seed_tuesdays(ledger: Ledger) -> None:
    """Four weeks of orders: 61 on each Tuesday before 14:00 and 40 more from 18:00 (a
    busy evening the comparison by 14:00 must leave out), 200 on each Monday."""
    for week in range(1, 5):
        tuesday = datetime(2026, 11, 24, tzinfo=MSK) - timedelta(weeks=week)
        record(
            ledger,
            orders(f"tue{week}", 61, tuesday + timedelta(hours=8)),
            tuesday + timedelta(hours=13),
        )
        record(
            ledger,
            orders(f"eve{week}", 40, tuesday + timedelta(hours=18)),
            tuesday + timedelta(hours=23),
        )
        monday = tuesday - timedelta(days=1)
        record(
            ledger,
            orders(f"mon{week}", 200, monday + timedelta(hours=9)),
            monday + timedelta(hours=20),
        )


def test_a_tuesday_volume_drop_alerts_once_and_resolves_when_volume_returns(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "volume_drop"))
    seed_tuesdays(ledger)
    today = datetime(2026, 11, 24, tzinfo=MSK)
    record(ledger, orders("today", 12, today + timedelta(hours=9)), TUESDAY_2PM)  # 20 %
    notify(loaded, ledger, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=15))
    assert texts(telegram) == [
        "convsync: purchase: 12 conversions today by 14:00, usually 61 on a Tuesday (−80 %)"
    ]
    (state,) = ledger.alert_states(firing_only=True)
    assert (state.rule, state.subject, state.details["usual"]) == ("volume_drop", "purchase", 61)
    back = TUESDAY_2PM + timedelta(minutes=45)  # 14:45
    record(ledger, orders("later", 50, today + timedelta(hours=14, minutes=10)), back)
    notify(loaded, ledger, back)
    notify(loaded, ledger, back + timedelta(minutes=15))
    assert texts(telegram)[1:] == [
        "convsync: resolved: purchase: 62 conversions today by 14:45, usually 61 on a Tuesday"
    ]


def settle(ledger: Ledger, conversions: Sequence[Conversion], matched: int, at: datetime) -> None:
    """Record ``conversions``, deliver them to vk and settle them at ``at``: the first
    ``matched`` matched, the rest unmatched."""
    record(ledger, conversions, at)
    ids = deliver(ledger, at)
    verdicts = [
        Transition(
            i,
            DeliveryState.MATCHED if n < matched else DeliveryState.UNMATCHED,
            "no_match" if n >= matched else None,
        )
        for n, i in enumerate(ids)
    ]
    ledger.apply(verdicts, run_id="r", now=at)


def test_a_match_rate_drop_alerts_once_and_resolves(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(
        tmp_path, alerts_section(telegram, "match_rate_drop", match_rate_drop={"min_rows": 10})
    )
    for day in range(1, 6):  # 80 % matched on each of five days before
        at = TUESDAY_2PM - timedelta(days=day)
        settle(ledger, orders(f"d{day}", 10, at - timedelta(hours=2)), 8, at)
    settle(ledger, orders("today", 10, TUESDAY_2PM - timedelta(hours=3)), 3, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=15))
    later = TUESDAY_2PM + timedelta(hours=1)
    settle(ledger, orders("later", 30, later - timedelta(hours=1)), 30, later)  # 33 of 40
    notify(loaded, ledger, later)
    assert texts(telegram) == [
        "convsync: vk: 30 % of the deliveries settled today matched (3 of 10), usually 80 % (−50 points)",
        "convsync: resolved: vk: 82 % of the deliveries settled today matched (33 of 40), usually 80 %",
    ]


def test_an_old_backlog_alerts_once_and_resolves_when_it_is_delivered(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "backlog_age"))
    waiting(ledger, 3, TUESDAY_2PM - timedelta(hours=7))
    notify(loaded, ledger, TUESDAY_2PM - timedelta(hours=2))  # 5 h: within the limit
    notify(loaded, ledger, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=15))
    deliver(ledger, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=30))
    assert texts(telegram) == [
        "convsync: vk: 3 deliveries waiting, the oldest for 7 h (since 2026-11-24 07:00 "
        "Europe/Moscow); the limit is 6h",
        "convsync: resolved: vk: no delivery has waited longer than 6h (0 due)",
    ]


def test_a_silent_source_alerts_once_and_resolves_with_new_records(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "source_silent"))
    last = TUESDAY_2PM - timedelta(days=2, hours=1)
    record(ledger, orders("old", 2, last - timedelta(hours=1)), last)
    notify(loaded, ledger, TUESDAY_2PM - timedelta(hours=2))  # silent for 1 d 23 h
    notify(loaded, ledger, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM + timedelta(hours=1))
    record(ledger, orders("new", 1, TUESDAY_2PM), TUESDAY_2PM + timedelta(hours=2))
    notify(loaded, ledger, TUESDAY_2PM + timedelta(hours=2))
    assert texts(telegram) == [
        "convsync: shop: no new records for 2 d 1 h (the last recorded 2026-11-22 13:00 "
        "Europe/Moscow); the limit is 2d",
        "convsync: resolved: shop: new records again (the last recorded 2026-11-24 16:00 Europe/Moscow)",
    ]


# --- what is no longer checked, what never went out ---


def test_an_alert_of_a_rule_turned_off_resolves(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    waiting(ledger)
    notify(load(tmp_path, alerts_section(telegram, "backlog_age")), ledger, TUESDAY_2PM)
    off = load(tmp_path, alerts_section(telegram, "source_silent"))
    (change,) = evaluate(off, ledger, TUESDAY_2PM + timedelta(minutes=1))
    assert (change.rule, change.firing) == ("backlog_age", False)
    notify(off, ledger, TUESDAY_2PM + timedelta(minutes=2))
    assert texts(telegram)[1:] == [
        "convsync: resolved: vk: backlog_age is no longer checked (turned off, or gone from the config)"
    ]


def test_an_alert_that_never_went_out_resolves_without_a_message(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "backlog_age"))
    waiting(ledger)
    (fired,) = evaluate(loaded, ledger, TUESDAY_2PM)  # recorded; notify never ran
    assert fired.firing
    deliver(ledger, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=15))
    assert texts(telegram) == []
    assert ledger.unnotified_alerts() == []
