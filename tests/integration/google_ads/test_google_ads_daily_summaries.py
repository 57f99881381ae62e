"""Whole sync runs to a ``google_ads_api`` destination read Google's upload summaries once
a day (in the config's timezone) into the ledger, through the real client and the fake
Google Ads API, on both databases; a failed read is a warning; a dry run reads nothing;
``convsync report`` shows what Google reported."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from convsync.store.ledger import Ledger
from convsync.store.platform_reports import PlatformDay
from tests.clock import Clock
from tests.google_ads_fake import FakeGoogleAds, RequestFault, permission_denied, unavailable
from tests.integration.google_ads.test_google_ads_sync import CONFIG, env_of, orders, sync, write
from tests.integration.test_cli import convsync

#: 15:00 in Moscow (the config's timezone), the day after the orders
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALERTS = {"CLICK_NOT_FOUND": 0.25}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")  # purchase → action 555
    return tmp_path


def _stored(ledger: Ledger) -> list[tuple[Any, ...]]:
    return [
        (d.goal, d.day.isoformat(), d.successful, d.failed, d.pending, d.alerts)
        for d in ledger.platform_summaries("google")
    ]


def test_a_run_reads_the_summaries_once_a_day_in_the_config_timezone(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds
) -> None:
    fake.add_summary(555, days={"2026-11-21": (3, 1, 2), "2026-11-20": (8, 2, 0)}, alerts=ALERTS)
    write(shop, orders(3))
    clock, env = Clock(NOON), env_of(fake)
    first = sync(shop, ledger, env, clock)
    assert (first.status, first.warnings, first.destinations["google"]["delivered"]) == (
        "ok", [], 3,
    )  # fmt: skip
    assert len(fake.searches) == 1
    assert ledger.summaries_read_on("google") == date(2026, 11, 21)
    assert _stored(ledger) == [
        ("purchase", "2026-11-20", 8, 2, 0, None),
        ("purchase", "2026-11-21", 3, 1, 2, ALERTS),  # the latest day with uploads
    ]

    clock.now = datetime(2026, 11, 21, 20, 59, tzinfo=UTC)  # 23:59 in Moscow
    assert sync(shop, ledger, env, clock).status == "ok"
    assert len(fake.searches) == 1  # read today already

    # a day later Google has processed the pending events and counts a new day
    fake.summaries.clear()
    fake.add_summary(555, days={"2026-11-22": (1, 0, 0), "2026-11-21": (5, 1, 0)}, alerts={})
    clock.now = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # midnight in Moscow, not in UTC
    assert sync(shop, ledger, env, clock).status == "ok"
    assert len(fake.searches) == 2
    assert ledger.summaries_read_on("google") == date(2026, 11, 22)
    assert _stored(ledger) == [
        ("purchase", "2026-11-20", 8, 2, 0, None),
        ("purchase", "2026-11-21", 5, 1, 0, ALERTS),  # counts replaced, its alerts kept
        ("purchase", "2026-11-22", 1, 0, 0, {}),
    ]


@pytest.mark.parametrize(
    ("fault", "code"), [(permission_denied(), "permission_denied"), (unavailable(), "unavailable")]
)
def test_a_failed_read_is_a_warning_and_the_next_run_reads_again(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds, fault: RequestFault, code: str
) -> None:
    fake.add_summary(555, days={"2026-11-21": (2, 0, 0)})
    fake.script_search(fault)
    write(shop, orders(2))
    clock, env = Clock(NOON), env_of(fake)
    with structlog.testing.capture_logs() as logs:
        summary = sync(shop, ledger, env, clock)
    # the deliveries went through; the run is degraded, not failed
    assert (summary.status, summary.destinations["google"]["delivered"]) == ("degraded", 2)
    [warning] = summary.warnings
    assert warning.startswith(
        f"destinations.google: the Google Ads upload summaries were not read ({code}: "
    )
    assert warning.endswith("the next run tries again")
    [line] = [e for e in logs if e["event"] == "upload summaries not read"]
    assert (line["log_level"], line["destination"], line["code"]) == ("warning", "google", code)
    assert ledger.recent_runs(1)[0].status == "degraded"
    assert (ledger.summaries_read_on("google"), _stored(ledger)) == (None, [])

    clock.now += timedelta(minutes=15)
    again = sync(shop, ledger, env, clock)
    assert (again.status, again.warnings, len(fake.searches)) == ("ok", [], 2)
    # the day of the latest uploads: Google's alerts of it, none
    assert _stored(ledger) == [("purchase", "2026-11-21", 2, 0, 0, {})]


@pytest.mark.parametrize("options", [{"dry_run": True}, {"validate": True}])
def test_a_dry_run_or_a_validation_reads_nothing(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds, tmp_path: Path, options: dict[str, Any]
) -> None:
    fake.add_summary(555, days={"2026-11-21": (2, 0, 0)})
    write(shop, orders(1))
    sync(shop, ledger, env_of(fake), Clock(NOON), output=tmp_path / "out.jsonl", **options)
    assert fake.searches == []
    assert (ledger.summaries_read_on("google"), _stored(ledger)) == (None, [])


def test_a_destination_stopped_in_the_run_is_not_read(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds
) -> None:
    env = env_of(fake)
    fake.oauth.revoke(env["G_REFRESH"])
    write(shop, orders(1))
    summary = sync(shop, ledger, env, Clock(NOON))
    assert summary.destinations["google"]["stopped"].startswith("auth_failed")
    assert fake.searches == [] and summary.warnings == []


def test_the_report_shows_what_google_reported(
    shop: Path, ledger: Ledger, ledger_url: str, fake: FakeGoogleAds
) -> None:
    fake.add_summary(555, days={"2026-11-21": (3, 1, 2), "2026-11-20": (8, 2, 0)}, alerts=ALERTS)
    write(shop, orders(3))
    assert sync(shop, ledger, env_of(fake), Clock(NOON)).status == "ok"
    window = ("--since", "2026-11-20", "--until", "2026-11-22")
    done = convsync("--database-url", ledger_url, "report", *window, "--format", "json", cwd=shop)
    assert done.returncode == 0, done.stderr
    [google] = json.loads(done.stdout)["goals"]
    assert (google["goal"], google["sent"], google["matched"], google["reports_matching"]) == (
        "purchase", 3, 0, True,
    )  # fmt: skip
    assert (google["platform_successful"], google["platform_failed"]) == (11, 3)
    assert (google["platform_pending"], google["platform_alerts"]) == (2, ALERTS)
    assert (google["platform_alerts_on"], google["match_rate_source"]) == (
        "2026-11-21", "upload_summaries",
    )  # fmt: skip
    assert google["match_rate"] == round(11 / 14, 4)

    table = convsync("--database-url", ledger_url, "report", *window, cwd=shop)
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "11* 78.6%" in text
    assert (
        "purchase → google: *Google Ads upload summaries of the window's days: 11 successful, "
        "3 failed, 2 pending; alerts of 2026-11-21: CLICK_NOT_FOUND 25.0%"
    ) in text


def test_a_read_that_finds_nothing_notes_the_day(ledger: Ledger) -> None:
    """No upload through the API yet: the day is noted (read again tomorrow), nothing else."""
    ledger.save_platform_summaries("google", [], read_on=date(2026, 11, 21), now=NOON)
    assert ledger.summaries_read_on("google") == date(2026, 11, 21)
    day = PlatformDay("purchase", 555, date(2026, 11, 21), 1, 0, 0)
    ledger.save_platform_summaries("google", [day], read_on=date(2026, 11, 22), now=NOON)
    assert _stored(ledger) == [("purchase", "2026-11-21", 1, 0, 0, None)]
