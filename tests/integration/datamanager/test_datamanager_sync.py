"""Whole sync runs to Google through the Data Manager API, the default API of a
``google_ads`` destination: CSV orders, the real pipeline and ledger, and the real
``google-ads-datamanager`` client over TLS against the fake API on 127.0.0.1 — requests
per run, rows refused alone, quotas and outages, request status read back in later runs,
validate-only, restatements, match signals sealed until delivered, consent, a crash
between Google's answer and the ledger, and secrets kept out of every output."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import structlog

from convsync.config.loader import load_config
from convsync.core.identity import conversion_key
from convsync.core.logging import configure_logging
from convsync.destinations.google_ads.datamanager.destination import DataManagerDestination
from convsync.store.engine import create, parse_url
from convsync.store.ledger import Ledger
from convsync.store.schema import conversions, deliveries
from convsync.sync.pipeline import SyncPipeline
from convsync.sync.summary import RunSummary, SyncOptions
from tests.clock import Clock
from tests.datamanager_fake import (
    ACTION_ID,
    CUSTOMER_ID,
    INGEST,
    STATUS,
    FakeDataManager,
    permission_denied,
    quota_daily,
    quota_per_minute,
    unavailable,
)
from tests.integration.processes import kill_when_held, start_convsync

CONVSYNC = str(Path(sys.executable).parent / "convsync")
LEAD_ACTION = "222333444"
#: the orders' time (Moscow): 2026-11-20 07:00 UTC
CREATED = "2026-11-20 10:00:00"
#: a run a day after the orders
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
RECENT = f"{(datetime.now(UTC) - timedelta(days=1)).date()} 10:00:00"
IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) SignalsTest/2.0"
SESSION = "Z2FkX3NvdXJjZT0xJmd3X2lkPTQy"


def config(
    *,
    fields: str = "",
    destination: str = "",
    goal: str = "",
    send: str = "",
    goals: str = "",
) -> str:
    """The shop's config: a google_ads destination with nothing but its account and OAuth
    client (plus the fake's endpoint and token URI), and the purchase goal; the keyword
    arguments add YAML where each name says."""
    return f"""\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {{status: status, value: total, gclid: gclid{fields}}}
destinations:
  google:
    type: google_ads
    customer_id: "123-456-7890"
    endpoint: "${{G_ENDPOINT}}"
    auth: {{client_id: "${{G_ID}}", client_secret: "${{G_SECRET}}",
           refresh_token: "${{G_REFRESH}}", token_uri: "${{G_TOKEN_URI}}"}}
{destination}goals:
  purchase:
    source: shop
    when: {{status: paid}}
    value: value
    currency: RUB
{goal}    send:
      google: {{conversion_action: {ACTION_ID}{send}}}
{goals}delivery: {{max_attempts: 5, retries_in_run: 1, retry_backoff: 10m, lease: 2s}}
"""


#: a second goal whose conversions go to a conversion action of their own
LEAD_GOAL = f"""\
  lead:
    source: shop
    when: {{status: lead}}
    value: value
    currency: RUB
    send:
      google: {{conversion_action: {LEAD_ACTION}}}
"""


@dataclass(frozen=True)
class Order:
    order_id: str
    status: str = "paid"
    total: str = "100"
    gclid: str | None = None  # None: a click id of the order's own; "": none
    email: str = ""
    ip: str = ""
    ua: str = ""
    session: str = ""
    consent: str = ""


def gclid_of(order_id: str) -> str:
    return f"Cj0KCQiA-gclid-{order_id}"


def orders(n: int, prefix: str = "A", **fields: Any) -> list[Order]:
    return [Order(f"{prefix}-{i}", **fields) for i in range(n)]


def write(shop: Path, rows: list[Order], name: str = "a.csv", created: str = CREATED) -> None:
    """The orders as a CSV file; its mtime moves on at each write. Runs on the real clock
    (a ``convsync`` process) need orders of recently (``RECENT``): Google takes 90 days."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["created_at", *asdict(rows[0])])
    for row in rows:
        values = asdict(row)
        if values["gclid"] is None:
            values["gclid"] = gclid_of(row.order_id)
        writer.writerow([created, *values.values()])
    path = shop / "orders" / name
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(out.getvalue(), encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


def shop_with(tmp_path: Path, text: str) -> Path:
    (tmp_path / "orders").mkdir(exist_ok=True)
    (tmp_path / "convsync.yaml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return shop_with(tmp_path, config())


def env_of(fake: FakeDataManager) -> dict[str, str]:
    auth = fake.destination_config()["auth"]
    return {
        "G_ENDPOINT": fake.endpoint,
        "G_ID": auth["client_id"],
        "G_SECRET": auth["client_secret"],
        "G_REFRESH": auth["refresh_token"],
        "G_TOKEN_URI": auth["token_uri"],
    }


@pytest.fixture
def env(fake: FakeDataManager) -> dict[str, str]:
    return env_of(fake)


def sync(
    shop: Path,
    ledger: Ledger,
    env: dict[str, str],
    clock: Clock,
    sleeps: list[float] | None = None,
    **options: Any,
) -> RunSummary:
    """One run as ``convsync sync --once`` makes it, the destination built from the config
    by the pipeline itself, at ``clock``, with its sleeps recorded in ``sleeps``."""
    loaded = load_config(shop / "convsync.yaml", env=env)
    waits = sleeps if sleeps is not None else []
    pipeline = SyncPipeline(loaded, ledger, clock=clock, sleep=waits.append)
    google = pipeline.destinations["google"]
    assert isinstance(google, DataManagerDestination)  # the default API
    google.clock = clock
    return pipeline.run(SyncOptions(**options))


def key(order_id: str, goal: str = "purchase") -> str:
    return conversion_key("shop", order_id, goal)


def states(ledger: Ledger, ids: list[str], goal: str = "purchase") -> dict[str, str]:
    """Order id → the state of its delivery to Google."""
    found = ledger.delivery_states([key(i, goal) for i in ids])
    return {i: str(found[(key(i, goal), "google")]) for i in ids}


def delivery_rows(url: str) -> list[dict[str, Any]]:
    """Every delivery with its order and adjustment, read behind the ledger's API."""
    opened = create(parse_url(url), read_only=False)
    try:
        with opened.engine.connect() as connection:
            query = sa.select(
                conversions.c.order_id,
                conversions.c.adjustment,
                deliveries.c.state,
                deliveries.c.code,
                deliveries.c.message,
            ).join_from(deliveries, conversions, deliveries.c.conversion_id == conversions.c.id)
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        opened.dispose()


def events_sent(fake: FakeDataManager) -> dict[str, Any]:
    """transaction_id → the event of the last accepted request that carried it."""
    out = {}
    for call in fake.calls_of(INGEST):
        if call.status == "OK" and not call.request.validate_only:
            out.update({e.transaction_id: e for e in call.events})
    return out


def convsync(
    shop: Path, db: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``convsync --database-url DB --config SHOP/convsync.yaml ARGS`` as a user runs it,
    logging JSON at DEBUG (none of the test process's CONVSYNC_ settings)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONVSYNC_")}
    return subprocess.run(
        [CONVSYNC, "--database-url", db, "--config", str(shop / "convsync.yaml"), *args],
        cwd=shop,
        env={**clean, **env, "CONVSYNC_LOG_FORMAT": "json", "CONVSYNC_LOG_LEVEL": "DEBUG"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def quota_reset_after(moment: datetime) -> datetime:
    """The next midnight in Los Angeles (when Google's daily quotas reset), in UTC."""
    pacific = moment.astimezone(ZoneInfo("America/Los_Angeles"))
    midnight = datetime(pacific.year, pacific.month, pacific.day, tzinfo=pacific.tzinfo)
    return (midnight + timedelta(days=1)).astimezone(UTC)


# --- batching, refusals, quotas --------------------------------------------------------------


def test_a_google_ads_destination_without_api_sends_4500_conversions_in_three_requests(
    shop: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str]
) -> None:
    assert "api:" not in (shop / "convsync.yaml").read_text()
    write(shop, orders(4500))
    summary = sync(shop, ledger, env, Clock(T0))
    assert summary.status == "ok" and summary.exit_code == 0
    calls = fake.calls_of(INGEST)
    assert sorted(len(c.events) for c in calls) == [500, 2000, 2000]
    assert {c.status for c in calls} == {"OK"}
    assert not any(c.request.validate_only for c in calls)
    assert summary.destinations["google"]["requests"] == 3
    assert summary.destinations["google"]["delivered"] == 4500
    destination = calls[0].request.destinations[0]
    assert destination.operating_account.account_id == CUSTOMER_ID
    assert destination.product_destination_id == ACTION_ID

    assert fake.state.conversions == {}  # Google processes requests later
    fake.process()
    stored = fake.state.conversions
    assert {k[2] for k in stored} == {f"A-{i}" for i in range(4500)}
    assert {c.count for c in stored.values()} == {1}
    assert {c.receipts for c in stored.values()} == {1}


def test_one_malformed_gclid_among_2000_rejects_that_row_alone(
    shop: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str]
) -> None:
    rows = orders(2000)
    write(shop, rows)
    fake.bad_gclids.add(gclid_of("A-1234"))
    summary = sync(shop, ledger, env, Clock(T0))
    found = states(ledger, [r.order_id for r in rows])
    assert [i for i, s in found.items() if s != "delivered"] == ["A-1234"]
    assert found["A-1234"] == "rejected"
    assert summary.destinations["google"]["requests"] == 2
    assert summary.destinations["google"]["delivered"] == 1999
    assert summary.destinations["google"]["rejected_by_code"] == {"invalid_format": 1}
    [failure] = ledger.failures(T0 - timedelta(days=1))
    assert (failure.order_id, failure.state, failure.code) == (
        "A-1234",
        "rejected",
        "invalid_format",
    )
    message = failure.message or ""
    assert "INVALID_FORMAT at ad_identifiers.gclid" in message
    assert "Check how sources.shop captures the click id" in message
    first, second = fake.calls_of(INGEST)
    assert (first.status, len(first.events)) == ("INVALID_ARGUMENT", 2000)
    assert (second.status, len(second.events)) == ("OK", 1999)
    assert "A-1234" not in {e.transaction_id for e in second.events}


@pytest.mark.parametrize(
    ("fault", "waited", "code"),
    [
        (quota_per_minute(retry_after=7.0), [7.0], "RESOURCE_EXHAUSTED"),  # Google's delay
        (unavailable(), [5.0], "UNAVAILABLE"),  # the first backoff step
    ],
    ids=["per_minute_quota", "unavailable"],
)
def test_a_transient_refusal_is_retried_in_the_run_and_every_row_delivered(
    shop: Path,
    ledger: Ledger,
    fake: FakeDataManager,
    env: dict[str, str],
    fault: Any,
    waited: list[float],
    code: str,
) -> None:
    rows = orders(3)
    write(shop, rows)
    fake.script(fault)
    sleeps: list[float] = []
    summary = sync(shop, ledger, env, Clock(T0), sleeps)
    assert sleeps == waited
    assert [c.status for c in fake.calls_of(INGEST)] == [code, "OK"]
    assert summary.destinations["google"]["requests"] == 2
    assert summary.destinations["google"]["delivered"] == 3
    assert set(states(ledger, [r.order_id for r in rows]).values()) == {"delivered"}
    fake.process()
    assert len(fake.state.conversions) == 3


def test_the_daily_quota_defers_the_rows_to_the_pacific_midnight_and_stops_the_destination(
    shop: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str]
) -> None:
    rows = orders(3)
    write(shop, rows)
    fake.script(quota_daily())
    clock = Clock(T0)
    sleeps: list[float] = []
    summary = sync(shop, ledger, env, clock, sleeps)
    reset = quota_reset_after(T0)
    assert reset == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # midnight PST
    google = summary.destinations["google"]
    assert google["stopped"].startswith("daily_quota_exhausted: ")
    assert google["deferred"] == 3 and "delivered" not in google
    assert [c.status for c in fake.calls] == ["RESOURCE_EXHAUSTED"]  # no further request
    assert sleeps == []  # nor a retry
    failures = ledger.failures(T0 - timedelta(days=1))
    assert {(f.order_id, f.state, f.code, f.retry_at) for f in failures} == {
        (r.order_id, "deferred", "daily_quota_exhausted", reset) for r in rows
    }

    clock.now = reset - timedelta(minutes=1)  # not yet: nothing is sent
    sync(shop, ledger, env, clock)
    assert len(fake.calls) == 1
    clock.now = reset
    summary = sync(shop, ledger, env, clock)
    assert summary.destinations["google"]["delivered"] == 3
    assert set(states(ledger, [r.order_id for r in rows]).values()) == {"delivered"}


def test_the_daily_quota_message_the_deferred_rows_keep_reads_as_sentences(
    shop: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str]
) -> None:
    write(shop, orders(1))
    fake.script(quota_daily())  # Google's message ends with a full stop, as the real one
    sync(shop, ledger, env, Clock(T0))
    [failure] = ledger.failures(T0 - timedelta(days=1))
    message = failure.message or ""
    assert "for consumer 'project_number:" in message  # Google's own words are kept
    assert "daily quota of Data Manager API requests is used up" in message
    assert ".." not in message, message


# --- what Google did with each request -------------------------------------------------------


def test_request_status_is_asked_half_an_hour_later_and_a_success_makes_the_rows_matched(
    tmp_path: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str]
) -> None:
    shop = shop_with(tmp_path, config(goals=LEAD_GOAL))
    write(shop, orders(3) + orders(2, "L", status="lead"))
    clock = Clock(T0)
    sync(shop, ledger, env, clock)
    [call] = fake.calls_of(INGEST)
    uploads = ledger.recent_uploads(T0 - timedelta(days=1))
    assert sorted((u.details["conversion_action"], u.rows) for u in uploads) == [
        (LEAD_ACTION, 2),
        (ACTION_ID, 3),
    ]
    for upload in uploads:
        assert (upload.external_id, upload.status, upload.final) == (
            call.request_id,
            "PROCESSING",
            False,
        )
        assert upload.next_check_at == T0 + timedelta(minutes=30)
        assert len(upload.delivery_ids) == upload.rows

    clock.now = T0 + timedelta(minutes=10)  # not due yet: Google is not asked
    sync(shop, ledger, env, clock)
    assert fake.calls_of(STATUS) == []

    fake.process()
    clock.now = T0 + timedelta(minutes=30)
    summary = sync(shop, ledger, env, clock)
    [asked] = fake.calls_of(STATUS)  # one question per request
    assert asked.request.request_id == call.request_id
    assert summary.destinations["google"]["uploads"] == {"SUCCESS": 2}
    assert summary.destinations["google"]["requests"] == 0  # no upload: status reads only
    final = ledger.recent_uploads(T0 - timedelta(days=1))
    assert {(u.status, u.final, u.message) for u in final} == {("SUCCESS", True, None)}
    assert set(states(ledger, ["A-0", "A-1", "A-2"]).values()) == {"matched"}
    assert set(states(ledger, ["L-0", "L-1"], "lead").values()) == {"matched"}
    assert ledger.failures(T0 - timedelta(days=1)) == []


def test_clicks_google_cannot_find_make_rows_unmatched_and_show_in_failures_and_report(
    tmp_path: Path, sqlite_url: str, fake: FakeDataManager, env: dict[str, str]
) -> None:
    shop = shop_with(tmp_path, config(goals=LEAD_GOAL))
    write(shop, orders(3) + orders(2, "L", status="lead"))
    # every click of the lead upload, one of the three of the purchase upload
    fake.state.unknown_clicks.update({gclid_of("L-0"), gclid_of("L-1"), gclid_of("A-2")})
    clock = Clock(T0)
    with Ledger.open(sqlite_url) as ledger:
        sync(shop, ledger, env, clock)
        [call] = fake.calls_of(INGEST)
        request_id = call.request_id
        fake.process()
        clock.now = T0 + timedelta(minutes=31)
        summary = sync(shop, ledger, env, clock)
        assert summary.destinations["google"]["uploads"] == {"FAILED": 1, "PARTIAL_SUCCESS": 1}
        assert states(ledger, ["L-0", "L-1"], "lead") == {"L-0": "unmatched", "L-1": "unmatched"}
        assert set(states(ledger, ["A-0", "A-1", "A-2"]).values()) == {"delivered"}

        failures = ledger.failures(T0 - timedelta(days=1))
        unmatched = sorted(
            (f for f in failures if f.kind == "delivery"), key=lambda f: f.order_id or ""
        )
        assert [(f.order_id, f.state, f.code) for f in unmatched] == [
            ("L-0", "unmatched", "click_not_found"),
            ("L-1", "unmatched", "click_not_found"),
        ]
        assert all("Google found no click" in (f.message or "") for f in unmatched)
        # the failed upload's rows are listed themselves; the partial one as an upload
        [upload] = [f for f in failures if f.kind == "upload"]
        assert (upload.upload, upload.code, upload.rows) == (request_id, "PARTIAL_SUCCESS", 3)
        assert "could not use 1 of the 3 conversions" in (upload.message or "")
        assert "1 CLICK_NOT_FOUND" in (upload.message or "")

    report = convsync(shop, sqlite_url, env, "report", "--since", "3650d")
    assert report.returncode == 0, report.stderr
    uploads = report.stdout[report.stdout.index("Uploads") :]
    # one line per request and conversion action: "request id → action"
    lines = [line for line in uploads.splitlines() if f"{request_id} → " in line]
    assert len(lines) == 2, uploads
    by_action = {LEAD_ACTION if LEAD_ACTION in line else ACTION_ID: line for line in lines}
    assert "FAILED" in by_action[LEAD_ACTION]
    assert "errors: CLICK_NOT_FOUND 2" in by_action[LEAD_ACTION]
    assert "PARTIAL_SUCCESS" in by_action[ACTION_ID]
    assert "errors: CLICK_NOT_FOUND 1" in by_action[ACTION_ID]


# --- validate-only -----------------------------------------------------------------------------


def test_validate_writes_googles_verdict_per_row_and_nothing_is_recorded_anywhere(
    shop: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str], tmp_path: Path
) -> None:
    rows = orders(4)
    write(shop, rows)
    fake.bad_gclids.add(gclid_of("A-2"))
    out = tmp_path / "check.jsonl"
    summary = sync(shop, ledger, env, Clock(T0), validate=True, output=out)
    assert summary.validation == {"google": {"valid": 3, "rejected": 1}}
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted((x["order_id"], x["result"], x.get("code")) for x in lines) == [
        ("A-0", "valid", "valid"),
        ("A-1", "valid", "valid"),
        ("A-2", "rejected", "invalid_format"),
        ("A-3", "valid", "valid"),
    ]
    [rejected] = [x for x in lines if x["result"] == "rejected"]
    assert "INVALID_FORMAT at ad_identifiers.gclid" in rejected["message"]
    calls = fake.calls_of(INGEST)
    assert len(calls) == 2 and all(c.request.validate_only for c in calls)
    assert fake.state.requests == {}
    fake.process()
    assert fake.state.conversions == {}
    assert set(states(ledger, [r.order_id for r in rows]).values()) == {"pending"}
    assert ledger.recent_uploads(T0 - timedelta(days=1)) == []


# --- restatements and retractions -----------------------------------------------------------

ADJUSTING = config(goal="    retract_when: {status: refunded}\n    restate_on_value_change: true\n")


def test_a_new_total_restates_the_same_transaction_and_a_refund_is_skipped(
    tmp_path: Path, ledger: Ledger, ledger_url: str, fake: FakeDataManager, env: dict[str, str]
) -> None:
    shop = shop_with(tmp_path, ADJUSTING)
    write(shop, orders(3))
    clock = Clock(T0)
    sync(shop, ledger, env, clock)
    fake.process()
    write(shop, [Order("A-0", "refunded"), Order("A-1", total="180.5"), Order("A-2")])
    clock.now += timedelta(hours=2)
    # the run first learns that Google processed the conversions (matched), so the
    # restatement goes at once; the retraction is skipped
    summary = sync(shop, ledger, env, clock)
    fake.process()
    assert summary.destinations["google"]["delivered"] == 1
    restating = fake.calls_of(INGEST)[-1]
    [event] = restating.events
    assert (event.transaction_id, event.conversion_value, event.currency) == ("A-1", 180.5, "RUB")
    stored = fake.state.conversion(CUSTOMER_ID, ACTION_ID, "A-1")
    assert (stored.value, stored.count, stored.receipts) == (180.5, 1, 2)
    refunded = fake.state.conversion(CUSTOMER_ID, ACTION_ID, "A-0")
    assert (refunded.value, refunded.count, refunded.receipts) == (100.0, 1, 1)

    adjustments = {
        (r["order_id"], r["adjustment"]): r for r in delivery_rows(ledger_url) if r["adjustment"]
    }
    assert set(adjustments) == {("A-0", "retraction"), ("A-1", "restatement")}
    assert adjustments[("A-1", "restatement")]["state"] == "delivered"
    skipped = adjustments[("A-0", "retraction")]
    assert (skipped["state"], skipped["code"]) == ("skipped", "retraction_not_supported")
    assert "api: google_ads_api" in skipped["message"]


def test_a_restatement_within_24_hours_of_its_conversion_waits_then_goes(
    tmp_path: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str]
) -> None:
    shop = shop_with(tmp_path, ADJUSTING)
    write(shop, orders(1))
    clock = Clock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))  # 2 h after the order
    sync(shop, ledger, env, clock)
    write(shop, [Order("A-0", total="250")])
    clock.now += timedelta(hours=1)
    sync(shop, ledger, env, clock)
    assert len(fake.calls_of(INGEST)) == 1  # the conversion only
    [waiting] = ledger.failures(clock.now - timedelta(days=1))
    assert (waiting.adjustment, waiting.state) == ("restatement", "deferred")
    assert waiting.retry_at is not None
    assert waiting.retry_at >= datetime(2026, 11, 21, 7, 0, tzinfo=UTC)  # 24 h after it
    clock.now = waiting.retry_at
    sync(shop, ledger, env, clock)
    # and 24 hours after the conversion's delivery (09:00), which Google may still process
    [still] = ledger.failures(clock.now - timedelta(days=1))
    assert (still.code, still.retry_at) == (
        "waiting_for_processing",
        datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
    )
    assert len(fake.calls_of(INGEST)) == 1
    clock.now = still.retry_at
    sync(shop, ledger, env, clock)
    fake.process()
    stored = fake.state.conversion(CUSTOMER_ID, ACTION_ID, "A-0")
    assert (stored.value, stored.count, stored.receipts) == (250.0, 1, 2)


# --- match signals, privacy and consent -----------------------------------------------------

SIGNAL_FIELDS = ", ip_address: ip, user_agent: ua, google_session_attributes: session"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """convsync's logging, at DEBUG, into a buffer (the process's logging restored after)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {
        name: (logging.getLogger(name).level, logging.getLogger(name).propagate)
        for name in ("google", "grpc", "sqlalchemy")
    }
    buffer = io.StringIO()
    configure_logging("json", "DEBUG", stream=buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (old_level, propagate) in libraries.items():
        logging.getLogger(name).setLevel(old_level)
        logging.getLogger(name).propagate = propagate
    structlog.reset_defaults()


def ledger_bytes(db: Path) -> bytes:
    """The SQLite ledger file and its WAL and shared-memory files."""
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert db in files
    return b"".join(p.read_bytes() for p in files)


def sealed_of(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT order_id, sealed FROM conversions").fetchall())


def test_ip_and_user_agent_reach_google_but_never_the_ledger_logs_or_plan_in_the_clear(
    tmp_path: Path,
    sqlite_url: str,
    fake: FakeDataManager,
    env: dict[str, str],
    captured_logs: io.StringIO,
) -> None:
    shop = shop_with(
        tmp_path, config(fields=SIGNAL_FIELDS, destination="    send_ip_address: true\n")
    )
    write(shop, [Order("A-0", ip=IP, ua=AGENT, session=SESSION), Order("A-1")])
    db = tmp_path / "ledger.db"
    clock = Clock(T0)
    plan = tmp_path / "plan.jsonl"
    with Ledger.open(sqlite_url) as ledger:
        sync(shop, ledger, env, clock, dry_run=True, output=plan)
        lines = [json.loads(x) for x in plan.read_text(encoding="utf-8").splitlines()]
        planned = {x["payload"]["transaction_id"]: x["payload"] for x in lines}
        assert sorted(planned) == ["A-0", "A-1"]
        device = planned["A-0"]["ad_identifiers"]["landing_page_device_info"]
        assert device["ip_address"] == "<IPv4 address>"
        assert device["user_agent"] == f"<user agent, {len(AGENT)} characters>"
        shown = planned["A-0"]["ad_identifiers"]["session_attributes"]
        assert shown == f"<session attributes, {len(SESSION)} characters>"

        fake.script(permission_denied())  # the destination stops: the rows wait, sealed
        summary = sync(shop, ledger, env, clock)
        assert summary.destinations["google"]["stopped"].startswith("permission_denied")
        assert states(ledger, ["A-0", "A-1"]) == {"A-0": "pending", "A-1": "pending"}
        waiting = sealed_of(db)
        assert waiting["A-0"] is not None and waiting["A-1"] is None
        assert IP.encode() not in ledger_bytes(db)

        sync(shop, ledger, env, clock)
        assert states(ledger, ["A-0", "A-1"]) == {"A-0": "delivered", "A-1": "delivered"}
        assert sealed_of(db) == {"A-0": None, "A-1": None}  # dropped once delivered
        stored = ledger_bytes(db)
    sent = events_sent(fake)
    assert sent["A-0"].ad_identifiers.landing_page_device_info.ip_address == IP
    assert sent["A-0"].ad_identifiers.landing_page_device_info.user_agent == AGENT
    assert sent["A-0"].ad_identifiers.session_attributes == SESSION
    assert not sent["A-1"].ad_identifiers.landing_page_device_info.ip_address
    logs = captured_logs.getvalue()
    assert '"level": "debug"' in logs  # there are logs to search
    for needle in (IP, AGENT, SESSION):
        assert needle.encode() not in stored, f"{needle!r} is in the ledger"
        assert needle not in logs, f"{needle!r} is in the logs"
        assert needle not in plan.read_text(encoding="utf-8"), f"{needle!r} is in the plan"


def test_without_send_ip_address_no_device_info_is_sent_nor_the_ip_kept(
    tmp_path: Path, sqlite_url: str, fake: FakeDataManager, env: dict[str, str]
) -> None:
    shop = shop_with(tmp_path, config(fields=SIGNAL_FIELDS))
    write(shop, [Order("A-0", ip=IP, ua=AGENT, session=SESSION)])
    with Ledger.open(sqlite_url) as ledger:
        sync(shop, ledger, env, Clock(T0))
        assert states(ledger, ["A-0"]) == {"A-0": "delivered"}
    event = events_sent(fake)["A-0"]
    assert event.ad_identifiers.session_attributes == SESSION  # not personal: still sent
    assert "landing_page_device_info" not in event.ad_identifiers
    assert "event_device_info" not in event
    stored = ledger_bytes(tmp_path / "ledger.db")
    assert IP.encode() not in stored and AGENT.encode() not in stored


CONSENTING = config(
    fields=", email: email, ad_user_data_consent: consent",
    destination="    consent: {ad_user_data: granted}\n",
    send=", enhanced_for_leads: true",
)


def test_consent_goes_as_the_requests_default_and_a_records_denial_holds_back_its_user_data(
    tmp_path: Path, ledger: Ledger, fake: FakeDataManager, env: dict[str, str]
) -> None:
    shop = shop_with(tmp_path, CONSENTING)
    write(
        shop,
        [
            Order("A-0", email="anna@example.com"),  # the destination's default applies
            Order("A-1", email="ivan@example.org", consent="no"),
            Order("A-2", gclid="", email="olga@example.net", consent="no"),  # nothing left
            Order("A-3", gclid="", email="petr@example.com"),
        ],
    )
    summary = sync(shop, ledger, env, Clock(T0))
    assert summary.destinations["google"]["delivered"] == 3
    [call] = fake.calls_of(INGEST)
    assert call.request.consent.ad_user_data.name == "CONSENT_GRANTED"
    events = {e.transaction_id: e for e in call.events}
    assert set(events) == {"A-0", "A-1", "A-3"}
    assert events["A-0"].consent.ad_user_data.name == "CONSENT_STATUS_UNSPECIFIED"
    assert len(events["A-0"].user_data.user_identifiers) == 1
    assert events["A-1"].consent.ad_user_data.name == "CONSENT_DENIED"
    assert events["A-1"].ad_identifiers.gclid == gclid_of("A-1")
    assert "user_data" not in events["A-1"]
    assert len(events["A-3"].user_data.user_identifiers) == 1  # EC4L without a click
    assert call.request.encoding.name == "HEX"
    assert states(ledger, ["A-0", "A-1", "A-2", "A-3"]) == {
        "A-0": "delivered",
        "A-1": "delivered",
        "A-2": "skipped",
        "A-3": "delivered",
    }
    funnel = {r.goal: r for r in ledger.funnel(T0 - timedelta(days=30))}
    assert funnel["purchase"].skipped_by_code == {"no_identifier": 1}


# --- a crash between Google's answer and the ledger ----------------------------------------


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_process_killed_after_google_stored_the_request_sends_it_again_counted_once(
    shop: Path,
    fake: FakeDataManager,
    env: dict[str, str],
    database: str,
    request: pytest.FixtureRequest,
) -> None:
    db = request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url")
    ids = [f"A-{i}" for i in range(5)]
    write(shop, orders(5), created=RECENT)
    hold = fake.hold_next()
    first = start_convsync(shop, env, db)
    kill_when_held(first, hold.accepted.wait, hold.release)  # Google has it; the ledger not
    [stored] = fake.state.requests.values()
    assert sorted(e.transaction_id for e in stored.request.events) == ids
    with Ledger.open(db) as ledger:
        assert set(states(ledger, ids).values()) == {"sending"}

    time.sleep(2.5)  # the delivery lease (2 s) runs out
    second = start_convsync(shop, env, db)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "recovering deliveries left in sending by an interrupted run" in err
    resent = fake.calls_of(INGEST)[-1]
    assert resent.status == "OK" and resent.request_id != stored.request_id
    assert sorted(e.transaction_id for e in resent.events) == ids
    fake.process()
    counted = [fake.state.conversion(CUSTOMER_ID, ACTION_ID, i) for i in ids]
    assert {(c.count, c.receipts) for c in counted} == {(1, 2)}
    with Ledger.open(db) as ledger:
        assert set(states(ledger, ids).values()) == {"delivered"}
        [upload] = ledger.recent_uploads(datetime(2026, 1, 1, tzinfo=UTC))
    assert upload.external_id == resent.request_id and len(upload.delivery_ids) == 5


# --- secrets -----------------------------------------------------------------------------------


def test_no_client_secret_refresh_token_or_access_token_in_any_output(
    shop: Path, sqlite_url: str, fake: FakeDataManager, env: dict[str, str]
) -> None:
    write(shop, orders(3), created=RECENT)
    fake.script(permission_denied())
    failing = convsync(shop, sqlite_url, env, "sync", "--once")
    assert failing.returncode == 1, failing.stderr
    assert "permission_denied" in failing.stdout + failing.stderr
    good = convsync(shop, sqlite_url, env, "sync", "--once")
    assert good.returncode == 0, good.stderr
    listed = convsync(shop, sqlite_url, env, "failures", "--since", "3650d")
    assert listed.returncode == 0, listed.stderr
    assert [c.status for c in fake.calls_of(INGEST)] == ["PERMISSION_DENIED", "OK"]

    outputs = "\n".join(p.stdout + p.stderr for p in (failing, good, listed))
    assert '"level": "debug"' in outputs
    stored = ledger_bytes(shop / "ledger.db").decode("utf-8", "replace")
    issued = sorted(fake.oauth.access_tokens)
    used = {c.metadata["authorization"].removeprefix("Bearer ") for c in fake.calls}
    assert len(issued) >= 2 and used <= set(issued)  # a token per run went over the wire
    for secret in [env["G_SECRET"], env["G_REFRESH"], *issued]:
        assert secret not in outputs, "a secret is in the logs or the command output"
        assert secret not in stored, "a secret is in the ledger"
