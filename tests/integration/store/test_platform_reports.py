"""The Google Ads API's upload summaries in the ledger: one row per destination × goal ×
upload day, replaced by a re-read; the day of the last read; and what the funnel, its
JSON, CSV and table make of them."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console
from sqlalchemy.engine import Engine

from convsync.cli import views
from convsync.store import Ledger
from convsync.store.funnel import CSV_COLUMNS, FunnelRow, csv_row, report_json
from convsync.store.platform_reports import PlatformDay, add_to_funnel
from tests.integration.store.test_funnel import _record_scenario

from .factory import NOW

TODAY, YESTERDAY = date(2026, 11, 20), date(2026, 11, 19)
ALERTS = {"EXPIRED_EVENT": 0.05, "CLICK_NOT_FOUND": 0.2}
DAYS = [
    PlatformDay("purchase", 555, TODAY, 40, 10, 5, ALERTS),
    PlatformDay("purchase", 555, YESTERDAY, 30, 0, 0, None),
    PlatformDay("purchase", 555, date(2026, 11, 12), 100, 100, 0, None),  # a week before
    PlatformDay("lead", 777, date(2026, 11, 17), 2, 2, 0, None),
]


@pytest.fixture
def reported(ledger: Ledger) -> Ledger:
    """The funnel's scenario (tests/integration/store/test_funnel.py) and a read of
    google's summaries."""
    _record_scenario(ledger)
    ledger.save_platform_summaries("google", DAYS, read_on=TODAY, now=NOW)
    return ledger


def test_a_read_is_stored_per_goal_and_day_and_a_re_read_replaces_the_counts(
    ledger: Ledger,
) -> None:
    assert ledger.summaries_read_on("google") is None
    ledger.save_platform_summaries("google", DAYS, read_on=TODAY, now=NOW)
    assert ledger.summaries_read_on("google") == TODAY
    stored = ledger.platform_summaries("google")
    assert [(d.goal, d.day) for d in stored] == [
        ("lead", date(2026, 11, 17)),
        ("purchase", date(2026, 11, 12)),
        ("purchase", YESTERDAY),
        ("purchase", TODAY),
    ]
    # alerts are kept largest first
    assert list(stored[-1].alerts or {}) == ["CLICK_NOT_FOUND", "EXPIRED_EVENT"]

    # the next day: today's pending events processed, new alerts of the new day
    tomorrow = TODAY + timedelta(days=1)
    later = [
        PlatformDay("purchase", 555, TODAY, 44, 11, 0, None),
        PlatformDay("purchase", 555, tomorrow, 7, 1, 3, {"CLICK_NOT_FOUND": 0.125}),
    ]
    ledger.save_platform_summaries("google", later, read_on=tomorrow, now=NOW + timedelta(days=1))
    assert ledger.summaries_read_on("google") == tomorrow
    by_day = {(d.goal, d.day): d for d in ledger.platform_summaries("google")}
    assert len(by_day) == 5
    # the counts replaced, the alerts of that day kept
    assert by_day[("purchase", TODAY)] == PlatformDay(
        "purchase", 555, TODAY, 44, 11, 0, {"CLICK_NOT_FOUND": 0.2, "EXPIRED_EVENT": 0.05}
    )
    assert by_day[("purchase", tomorrow)].alerts == {"CLICK_NOT_FOUND": 0.125}
    assert ledger.platform_summaries("metrica") == []
    assert ledger.summaries_read_on("metrica") is None


def _rows(ledger: Ledger, days: int) -> dict[tuple[str, str, str], FunnelRow]:
    return {(r.goal, r.destination, r.kind): r for r in ledger.funnel(NOW - timedelta(days=days))}


def _platform(row: FunnelRow) -> tuple[Any, ...]:
    return (
        row.platform_successful, row.platform_failed, row.platform_pending,
        row.platform_alerts, row.platform_alerts_on, row.match_rate, row.match_rate_source,
        row.reports_matching,
    )  # fmt: skip


def test_the_funnel_adds_the_window_days_to_the_conversion_rows(reported: Ledger) -> None:
    rows = _rows(reported, 1)  # from 2026-11-19 12:00 UTC: upload days 19 and 20
    purchase = rows[("purchase", "google", "conversion")]
    assert _platform(purchase) == (70, 10, 5, ALERTS, "2026-11-20", 0.875, "upload_summaries", True)
    assert (purchase.matched, purchase.unmatched) == (0, 0)  # the ledger's own, untouched
    # adjustments are not in Google's counts of the action's conversions
    retraction = rows[("purchase", "google", "retraction")]
    assert _platform(retraction) == (None, None, None, {}, None, None, None, False)
    # the ledger's verdicts: no summaries there
    metrica = rows[("purchase", "metrica", "conversion")]
    assert _platform(metrica) == (None, None, None, {}, None, 0.75, "verdicts", True)

    week = _rows(reported, 7)  # from 2026-11-13: the 12th left out
    assert _platform(week[("purchase", "google", "conversion")])[:3] == (70, 10, 5)
    assert _platform(week[("lead", "google", "conversion")]) == (
        2, 2, 0, {}, None, 0.5, "upload_summaries", True,
    )  # fmt: skip
    # a destination without summaries stays as it was
    assert _platform(week[("lead", "vk", "conversion")])[:3] == (None, None, None)


def test_the_window_end_takes_the_day_of_its_last_moment(reported: Ledger) -> None:
    with reported._read() as connection:
        row, other = FunnelRow("purchase", "google"), FunnelRow("nothing", "google")
        # 2026-11-19 00:00 to 2026-11-20 00:00: the 19th only
        add_to_funnel(
            connection, [row, other], NOW - timedelta(days=1, hours=12), NOW.replace(hour=0)
        )
    assert _platform(row) == (30, 0, 0, {}, None, 1.0, "upload_summaries", True)
    # a goal without counts in the window: Google reports, nothing judged yet
    assert _platform(other) == (0, 0, 0, {}, None, None, None, True)


def test_verdicts_of_the_ledger_win_over_summaries(reported: Ledger) -> None:
    reported.save_platform_summaries(
        "metrica", [PlatformDay("purchase", 1, TODAY, 1, 9, 0)], read_on=TODAY, now=NOW
    )
    metrica = _rows(reported, 1)[("purchase", "metrica", "conversion")]
    assert _platform(metrica) == (1, 9, 0, {}, None, 0.75, "verdicts", True)


def test_json_csv_and_table_show_what_google_reported(reported: Ledger) -> None:
    since = NOW - timedelta(days=1)
    funnel = reported.funnel(since)
    google = report_json(funnel, [])["goals"][0]
    assert (google["goal"], google["destination"], google["kind"]) == (
        "purchase", "google", "conversion",
    )  # fmt: skip
    assert {k: google[k] for k in list(google)[-6:]} == {
        "platform_successful": 70,
        "platform_failed": 10,
        "platform_pending": 5,
        "match_rate_source": "upload_summaries",
        "platform_alerts_on": "2026-11-20",
        "platform_alerts": {"CLICK_NOT_FOUND": 0.2, "EXPIRED_EVENT": 0.05},
    }
    assert (google["match_rate"], google["matched"], google["reports_matching"]) == (0.875, 0, True)
    cells = dict(zip(CSV_COLUMNS, csv_row(funnel[0]), strict=True))
    assert CSV_COLUMNS[-6:] == tuple(list(google)[-6:])
    assert (cells["platform_successful"], cells["match_rate"]) == ("70", "0.875")
    assert cells["platform_alerts"] == "CLICK_NOT_FOUND=0.2;EXPIRED_EVENT=0.05"

    out = Console(file=io.StringIO(), width=100, record=True)
    views.print_report(out, funnel, "last 1d")
    text = out.export_text()
    line = next(x for x in text.splitlines() if x.lstrip().startswith("purchase → google"))
    assert "70*" in line and "87.5%" in line
    assert (
        "purchase → google: *Google Ads upload summaries of the window's days: 70 successful, "
        "10 failed, 5 pending; alerts of 2026-11-20: CLICK_NOT_FOUND 20.0%, EXPIRED_EVENT 5.0%"
    ) in " ".join(text.split())


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_every_query_of_the_summaries_searches_an_index(reported: Ledger, db: Engine) -> None:
    seen: list[tuple[str, Any]] = []

    def note(*args: Any) -> None:
        seen.append((args[2], args[3]))

    sa.event.listen(reported._engine, "before_cursor_execute", note)
    try:
        reported.funnel(NOW - timedelta(days=30), NOW)
        reported.funnel(NOW - timedelta(days=1))
    finally:
        sa.event.remove(reported._engine, "before_cursor_execute", note)
    ours = [(s, p) for s, p in seen if "platform_summaries" in s]
    assert len(ours) >= 4
    with db.connect() as connection:
        plans = [
            row[3]
            for statement, parameters in ours
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    assert plans and [p for p in plans if not p.startswith("SEARCH")] == []
