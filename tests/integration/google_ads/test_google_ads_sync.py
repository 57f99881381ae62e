"""Whole sync runs to Google Ads: the real ``google-ads`` client, over TLS, against the
fake Google Ads API on 127.0.0.1, with the ledger on both databases — batching, deferral
and later success, adjustments both ways, and a crash between request and ledger."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from convsync.config.loader import load_config
from convsync.core.identity import conversion_key
from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from convsync.sync.summary import RunSummary
from tests.clock import Clock
from tests.google_ads_fake import (
    CLICKS,
    Err,
    FakeGoogleAds,
    RequestFault,
    RowFaults,
    internal,
    quota_exhausted,
)
from tests.integration.processes import kill_when_held, start_convsync

CONFIG = """\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, gclid: gclid}
destinations:
  google:
    type: google_ads
    api: google_ads_api
    customer_id: "123-456-7890"
    endpoint: "${G_ENDPOINT}"
    auth: {client_id: "${G_ID}", client_secret: "${G_SECRET}", refresh_token: "${G_REFRESH}",
           token_uri: "${G_TOKEN_URI}"}
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    retract_when: {status: refunded}
    restate_on_value_change: true
    send:
      google: {conversion_action: 555}
delivery: {max_attempts: 5, retries_in_run: 1, retry_backoff: 10m, lease: 2s}
"""
HEADER = "order_id,created_at,status,total,gclid\n"
ACTION = "customers/1234567890/conversionActions/555"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def env_of(fake: FakeGoogleAds) -> dict[str, str]:
    auth = fake.destination_config()["auth"]
    return {
        "G_ENDPOINT": fake.endpoint,
        "G_ID": auth["client_id"],
        "G_SECRET": auth["client_secret"],
        "G_REFRESH": auth["refresh_token"],
        "G_TOKEN_URI": auth["token_uri"],
    }


def write(
    shop: Path, rows: list[tuple[str, str, str]], name: str = "a.csv", day: str = "2026-11-20"
) -> None:
    """(order id, status, total) rows of ``day``; the file's mtime moves on at each write.
    Runs on the real clock (a ``convsync`` process) need a recent day: Google takes 90."""
    path = shop / "orders" / name
    text = "".join(f"{o},{day} 10:00:00,{s},{t},Cj0KCQiA-gclid-{o}\n" for o, s, t in rows)
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(HEADER + text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


def sync(
    shop: Path,
    ledger: Ledger,
    env: dict[str, str],
    clock: Clock,
    sleeps: list[float] | None = None,
    **options: Any,
) -> RunSummary:
    loaded = load_config(shop / "convsync.yaml", env=env)
    dest = GoogleAdsDestination("google", loaded.app.destinations["google"])  # type: ignore[arg-type]
    dest.clock = clock
    waits = sleeps if sleeps is not None else []
    try:
        pipeline = SyncPipeline(
            loaded, ledger, destinations={"google": dest}, clock=clock, sleep=waits.append
        )
        return pipeline.run(SyncOptions(**options))
    finally:
        dest.close()


def orders(n: int) -> list[tuple[str, str, str]]:
    return [(f"A-{i}", "paid", "100") for i in range(n)]


def test_4500_due_conversions_go_in_exactly_three_requests(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds
) -> None:
    write(shop, orders(4500))
    summary = sync(shop, ledger, env_of(fake), Clock(datetime(2026, 11, 21, 12, tzinfo=UTC)))
    assert summary.status == "ok" and summary.exit_code == 0
    assert [len(c.rows) for c in fake.calls_of(CLICKS)] == [2000, 2000, 500]
    assert summary.destinations["google"]["delivered"] == 4500
    assert len(fake.state.conversions) == 4500
    sent = [r for c in fake.calls_of(CLICKS) for r in c.rows]
    assert {r.order_id for r in sent} == {f"A-{i}" for i in range(4500)}
    assert all(c.request.partial_failure for c in fake.calls_of(CLICKS))


@pytest.mark.parametrize(
    ("fault", "waited"),
    [
        (quota_exhausted(daily=False, retry_delay=7), [7.0]),  # Google's delay honoured
        (internal(), [5.0]),  # the first backoff step
    ],
    ids=["resource_exhausted", "internal"],
)
def test_a_transient_failure_is_retried_in_the_run_then_delivered(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds, fault: RequestFault, waited: list[float]
) -> None:
    write(shop, orders(3))
    fake.script(fault)
    sleeps: list[float] = []
    summary = sync(shop, ledger, env_of(fake), Clock(datetime(2026, 11, 21, tzinfo=UTC)), sleeps)
    assert sleeps == waited
    assert [c.status for c in fake.calls_of(CLICKS)] == [fault.status.name, "OK"]
    assert summary.destinations["google"] == {"requests": 2, "batches": 1, "delivered": 3}
    assert len(fake.state.conversions) == 3


def test_validate_has_google_check_every_due_row_and_nothing_is_recorded(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds, tmp_path: Path
) -> None:
    write(shop, orders(3))
    fake.script(RowFaults({2: [Err("conversion_upload_error", "EXPIRED_EVENT")]}))
    out = tmp_path / "check.jsonl"
    clock = Clock(datetime(2026, 11, 21, tzinfo=UTC))
    summary = sync(shop, ledger, env_of(fake), clock, validate=True, output=out)
    [call] = fake.calls_of(CLICKS)
    assert call.request.validate_only and call.request.partial_failure
    assert fake.state.conversions == {}
    assert summary.validation == {"google": {"valid": 2, "rejected": 1}}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["order_id"], x["result"]) for x in lines] == [
        ("A-0", "valid"),
        ("A-1", "valid"),
        ("A-2", "rejected"),
    ]
    assert lines[2]["code"] == "expired_event"
    assert lines[2]["message"].startswith("EXPIRED_EVENT: ")
    keys = [conversion_key("shop", f"A-{i}", "purchase") for i in range(3)]
    assert {str(s) for s in ledger.delivery_states(keys).values()} == {"pending"}
    sync(shop, ledger, env_of(fake), clock)  # then a real run sends all three (the
    assert len(fake.state.conversions) == 3  # scripted refusal was for one request)


def test_too_recent_event_is_deferred_six_hours_then_delivered(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds
) -> None:
    write(shop, orders(3))
    clock = Clock(datetime(2026, 11, 21, 12, tzinfo=UTC))
    fake.script(RowFaults({1: [Err("conversion_upload_error", "TOO_RECENT_EVENT")]}))
    summary = sync(shop, ledger, env_of(fake), clock)
    assert summary.destinations["google"]["delivered"] == 2
    assert summary.destinations["google"]["deferred"] == 1
    [failure] = ledger.failures(clock.now - timedelta(days=1))
    assert failure.order_id == "A-1" and failure.code == "too_recent_event"
    assert failure.retry_at == clock.now + timedelta(hours=6)

    clock.now += timedelta(hours=5)  # not due yet: nothing is sent
    sync(shop, ledger, env_of(fake), clock)
    assert len(fake.calls_of(CLICKS)) == 1
    clock.now += timedelta(hours=1, seconds=1)
    summary = sync(shop, ledger, env_of(fake), clock)
    assert [r.order_id for r in fake.calls_of(CLICKS)[-1].rows] == ["A-1"]
    assert summary.destinations["google"]["delivered"] == 1
    assert len(fake.state.conversions) == 3


def test_refund_and_new_total_reach_google_as_retraction_and_restatement(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds
) -> None:
    write(shop, orders(3))
    clock = Clock(datetime(2026, 11, 21, 12, tzinfo=UTC))
    sync(shop, ledger, env_of(fake), clock)
    write(shop, [("A-0", "refunded", "100"), ("A-1", "paid", "180.5"), ("A-2", "paid", "100")])
    clock.now += timedelta(days=1)
    summary = sync(shop, ledger, env_of(fake), clock)
    assert summary.destinations["google"]["delivered"] == 2
    [call] = fake.calls_of("UploadConversionAdjustments")
    assert call.request.partial_failure
    by_order = {a.order_id: a for a in call.rows}
    assert by_order["A-0"].adjustment_type.name == "RETRACTION"
    assert by_order["A-1"].adjustment_type.name == "RESTATEMENT"
    assert by_order["A-1"].restatement_value.adjusted_value == 180.5
    assert by_order["A-1"].restatement_value.currency_code == "RUB"
    assert by_order["A-0"].conversion_action == ACTION
    stored = fake.state.conversions
    assert stored[(ACTION, "A-0")].retracted
    assert [v for _, v, _ in stored[(ACTION, "A-1")].restatements] == [180.5]

    # the total changes again: a second restatement, with a later adjustment time
    write(shop, [("A-1", "paid", "210")])
    clock.now += timedelta(hours=2)
    sync(shop, ledger, env_of(fake), clock)
    assert [v for _, v, _ in stored[(ACTION, "A-1")].restatements] == [180.5, 210.0]


def test_an_adjustment_within_24_hours_of_its_conversion_waits(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds
) -> None:
    write(shop, [("A-0", "paid", "100")])
    clock = Clock(datetime(2026, 11, 20, 9, tzinfo=UTC))  # 2 h after the conversion
    sync(shop, ledger, env_of(fake), clock)
    write(shop, [("A-0", "refunded", "100")])
    clock.now += timedelta(hours=1)
    sync(shop, ledger, env_of(fake), clock)
    assert fake.calls_of("UploadConversionAdjustments") == []
    [failure] = ledger.failures(clock.now - timedelta(days=1))
    assert failure.adjustment == "retraction" and failure.code == "too_recent_conversion"
    assert failure.retry_at is not None
    clock.now = failure.retry_at
    sync(shop, ledger, env_of(fake), clock)
    assert fake.state.conversions[(ACTION, "A-0")].retracted


# --- a crash between the request and the ledger -------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_process_killed_after_google_accepted_the_batch_does_not_double_count(
    shop: Path, fake: FakeGoogleAds, database: str, request: pytest.FixtureRequest
) -> None:
    db = request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url")
    write(shop, orders(5), day=str((datetime.now(UTC) - timedelta(days=1)).date()))
    env = env_of(fake)
    hold = fake.hold_next()
    first = start_convsync(shop, env, db)
    # Google has the rows; the ledger says sending
    kill_when_held(first, hold.accepted.wait, hold.release)
    assert len(fake.state.conversions) == 5
    with Ledger.open(db) as ledger:
        keys = [conversion_key("shop", f"A-{i}", "purchase") for i in range(5)]
        assert {str(s) for s in ledger.delivery_states(keys).values()} == {"sending"}

    time.sleep(2.5)  # the lease (2 s) runs out
    second = start_convsync(shop, env, db)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "took over the sync lease of a process that is gone" in err
    assert "recovering deliveries left in sending" in err
    resent = fake.calls_of(CLICKS)[-1]
    assert sorted(r.order_id for r in resent.rows) == [f"A-{i}" for i in range(5)]
    assert len(fake.state.conversions) == 5  # Google counted each order once
    with Ledger.open(db) as ledger:
        assert {str(s) for s in ledger.delivery_states(keys).values()} == {"delivered"}
        funnel = ledger.funnel(datetime(2026, 1, 1, tzinfo=UTC))
    assert funnel[0].accepted == 5


def test_dry_run_shows_the_adjustments_google_would_get(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds, tmp_path: Path
) -> None:
    write(shop, orders(2))
    clock = Clock(datetime(2026, 11, 21, 12, tzinfo=UTC))
    sync(shop, ledger, env_of(fake), clock)
    write(shop, [("A-0", "refunded", "100"), ("A-1", "paid", "120")])
    clock.now += timedelta(days=1)
    plan = tmp_path / "plan.jsonl"
    sync(shop, ledger, env_of(fake), clock, dry_run=True, output=plan)
    lines = [json.loads(x) for x in plan.read_text().splitlines()]
    assert [(x["adjustment"], x["payload"]["adjustment_type"]) for x in lines] == [
        ("retraction", "RETRACTION"),
        ("restatement", "RESTATEMENT"),
    ]
    assert lines[1]["payload"]["restatement_value"] == {
        "adjusted_value": 120.0,
        "currency_code": "RUB",
    }
    assert fake.calls_of("UploadConversionAdjustments") == []
