"""The sql source's cursor rules (convsync.sources.sql_cursor), apart from any database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from convsync.sources.sql_cursor import CursorKindError, SqlCursor, capped, kind_of

MSK = ZoneInfo("Europe/Moscow")
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 20, 14, 3, 0, 123456),
        datetime(2026, 11, 20, 14, 3, tzinfo=timezone(timedelta(hours=3))),
        date(2026, 11, 20),
        12345678901234567890,
        Decimal("12345678901234567890.123456789"),
        1.5,
        "2026-11-20 14:03:00",
        "ABC-0042",
    ],
)
def test_saved_form_is_json_and_round_trips(value: object) -> None:
    cursor = SqlCursor("c", kind_of(value), value)
    saved = json.loads(json.dumps(cursor.as_state()))
    back = SqlCursor.from_state(saved, "c")
    assert back == cursor
    assert back is not None and type(back.value) is type(value)


def test_unusable_saved_cursors_are_ignored() -> None:
    assert SqlCursor.from_state(None, "c") is None
    assert SqlCursor.from_state({"column": "other", "kind": "int", "value": 1}, "c") is None
    assert SqlCursor.from_state({"column": "c", "kind": "int", "value": "x"}, "c") is None
    assert SqlCursor.from_state({"column": "c", "kind": "blob", "value": 1}, "c") is None


def test_kinds_that_cannot_be_cursors() -> None:
    for value in (True, b"x", object()):
        with pytest.raises(CursorKindError):
            kind_of(value)


def test_lookback_moves_times_back_in_their_own_shape() -> None:
    ten = timedelta(minutes=10)
    assert SqlCursor("c", "datetime", datetime(2026, 1, 1, 0, 5)).bound(ten) == datetime(
        2025, 12, 31, 23, 55
    )
    assert SqlCursor("c", "date", date(2026, 1, 1)).bound(ten) == date(2025, 12, 31)
    assert SqlCursor("c", "text", "2026-01-01 00:05:00").bound(ten) == "2025-12-31 23:55:00"
    assert SqlCursor("c", "text", "2026-01-01T00:05").bound(ten) == "2025-12-31T23:55"
    assert (
        SqlCursor("c", "text", "2026-01-01 00:05:00.250+03:00").bound(ten)
        == "2025-12-31 23:55:00.250+03:00"
    )
    assert SqlCursor("c", "text", "2026-01-02").bound(ten) == "2026-01-01"
    assert SqlCursor("c", "int", 7).bound(timedelta(0)) == 7


@pytest.mark.parametrize("cursor", [SqlCursor("c", "int", 7), SqlCursor("c", "text", "ABC-0042")])
def test_lookback_needs_a_time(cursor: SqlCursor) -> None:
    with pytest.raises(CursorKindError, match="cannot be moved back"):
        cursor.bound(timedelta(minutes=1))


def test_advanced_never_moves_back() -> None:
    cursor = SqlCursor("c", "int", 10)
    assert cursor.advanced(9) is cursor
    assert cursor.advanced(11).value == 11
    text = SqlCursor("c", "text", "2026-01-01 10:00:00")
    # the same moment written with more precision is not further
    assert text.advanced("2026-01-01 10:00:00.000").value == "2026-01-01 10:00:00"
    assert text.advanced("2026-01-01 10:00:01").value == "2026-01-01 10:00:01"
    naive = SqlCursor("c", "datetime", datetime(2026, 1, 1))
    assert naive.advanced(datetime(2027, 1, 1, tzinfo=UTC)) is naive  # not comparable


def test_capped_at_the_start_of_the_pull() -> None:
    later = START + timedelta(days=1)
    assert capped("datetime", later, START, MSK) == START
    assert capped("datetime", START - timedelta(1), START, MSK) == START - timedelta(1)
    # naive values are in the source's zone: 12:00 UTC is 15:00 in Moscow
    assert capped("datetime", datetime(2026, 11, 29), START, MSK) == datetime(2026, 11, 28, 15, 0)
    assert capped("text", "2026-11-29 00:00:00", START, MSK) == "2026-11-28 15:00:00"
    assert capped("text", "2026-11-27 00:00:00", START, MSK) == "2026-11-27 00:00:00"
    assert capped("date", date(2026, 12, 1), START, MSK) == date(2026, 11, 28)
    assert capped("int", 10**12, START, MSK) == 10**12
