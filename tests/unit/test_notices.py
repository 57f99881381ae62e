"""Notices of risky defaults: which parses count a time without a UTC offset, which
phones lack a country code, and the lines a notices counter reads as."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from convsync.config.loader import parse_config
from convsync.core.identity import lacks_country_code
from convsync.core.parsing import NaiveTimes, ParseError, parse_timestamp
from convsync.sources.sql_rows import row_time
from convsync.sync.notices import render_notices

MSK = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("text", "naive"),
    [
        ("2026-11-20 14:03:00", True),
        ("2026-11-20", True),
        ("20.11.2026 14:03", True),
        ("20.11.2026", True),
        ("2026-1-5 9:03", True),  # the loose ISO path
        ("5.1.2026 9:03", True),  # the loose Russian path
        ("2026-11-20T14:03:00+03:00", False),
        ("2026-11-20T11:03:00Z", False),
        ("2026-1-5 9:03 +0300", False),
        ("1795000000", False),  # Unix seconds: an instant
        ("1795000000.5", False),
        ("1795000000123", False),  # Unix milliseconds
    ],
)
def test_parse_timestamp_counts_only_times_without_an_offset(text: str, naive: bool) -> None:
    count = NaiveTimes()
    moment = parse_timestamp(text, MSK, count)
    assert count.count == int(naive)
    assert moment == parse_timestamp(text, MSK)  # counting changes nothing read


def test_a_time_that_does_not_parse_is_not_counted() -> None:
    count = NaiveTimes()
    for text in ("2026-13-45 10:00", "31.02.2026", "soon"):
        with pytest.raises(ParseError):
            parse_timestamp(text, MSK, count)
    assert count.count == 0


def test_naive_times_take_starts_again() -> None:
    count = NaiveTimes()
    parse_timestamp("2026-11-20 14:03", MSK, count)
    parse_timestamp("2026-11-20 14:04", MSK, count)
    assert count.take() == 2
    assert count.take() == 0


def test_sql_row_time_counts_naive_datetimes_dates_and_text() -> None:
    count = NaiveTimes()
    aware = datetime(2026, 11, 20, 10, tzinfo=timezone(timedelta(hours=3)))
    assert row_time(aware, MSK, count) is aware
    assert row_time(datetime(2026, 11, 20, 10), MSK, count) == datetime(
        2026, 11, 20, 10, tzinfo=MSK
    )
    assert row_time(date(2026, 11, 20), MSK, count) == datetime(2026, 11, 20, tzinfo=MSK)
    assert row_time("2026-11-20 10:00", MSK, count) == datetime(2026, 11, 20, 10, tzinfo=MSK)
    assert row_time("2026-11-20T07:00:00Z", MSK, count) == datetime(2026, 11, 20, 7, tzinfo=UTC)
    assert row_time(None, MSK, count) == "it is empty"
    assert count.count == 3


@pytest.mark.parametrize(
    ("raw", "lacks"),
    [
        ("8 (912) 345-67-89", True),
        ("89123456789", True),
        (" 912 345 67 89 ", True),
        ("00 7 912 345 67 89", True),
        ("+7 912 345-67-89", False),  # a country code: no region needed
        ("+79123456789", False),
        ("12-34", False),  # too short for a phone
        ("n/a", False),
        ("ext. 123", False),
        ("", False),
    ],
)
def test_lacks_country_code(raw: str, lacks: bool) -> None:
    assert lacks_country_code(raw) is lacks


CONFIG = """\
sources:
  shop: {type: csv, path: x.csv, id: id, time: created_at, fields: {phone: tel}}
  crm: {type: csv, path: y.csv, id: id, time: t}
destinations:
  vk: {type: vk_ads, pixel_id: 1}
goals:
  won: {source: shop, send: {vk: {goal: won}}}
"""


def test_render_notices_names_source_count_column_and_fix(tmp_path: Path) -> None:
    loaded = parse_config(CONFIG, tmp_path / "c.yaml", {})
    notices = Counter(
        {
            "phone_without_region:shop": 1,
            "naive_time:shop": 1240,
            "naive_time:crm": 1,
            "naive_time:gone": 0,
        }
    )
    lines = render_notices(notices, loaded)
    assert lines == [
        "sources.crm: 1 row has times without a UTC offset (column 't') and were read as "
        "UTC; set timezone at the top of the config (e.g. timezone: Europe/Moscow) if "
        "they are local times",
        "sources.shop: 1,240 rows have times without a UTC offset (column 'created_at') "
        "and were read as UTC; set timezone at the top of the config (e.g. timezone: "
        "Europe/Moscow) if they are local times",
        "sources.shop: 1 row has phones without a country code (column 'tel'), which "
        "were dropped; set phone_region at the top of the config (e.g. phone_region: RU) "
        "to read them",
    ]
    # the app config does as well, and a plain mapping (a summary read back from JSON)
    assert render_notices(dict(notices), loaded.app) == lines


def test_render_notices_of_a_source_no_longer_configured_or_an_unknown_kind(
    tmp_path: Path,
) -> None:
    loaded = parse_config(CONFIG, tmp_path / "c.yaml", {})
    assert render_notices({"naive_time:old": 2, "other:shop": 3000}, loaded) == [
        "sources.old: 2 rows have times without a UTC offset and were read as UTC; set "
        "timezone at the top of the config (e.g. timezone: Europe/Moscow) if they are "
        "local times",
        "sources.shop: other: 3,000 rows",
    ]
    assert render_notices({}, loaded) == []
