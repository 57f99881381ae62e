"""The shared pre-flight helpers, on the edges the destination tests do not reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from convsync.core.errors import RowDeferred
from convsync.destinations import preflight


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=1), "1 day"),
        (timedelta(days=112, hours=23), "112 days"),
        (timedelta(hours=5, minutes=59), "5 hours"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=59), "less than a minute"),
        (-timedelta(hours=2), "2 hours"),
    ],
)
def test_format_age(delta: timedelta, text: str) -> None:
    assert preflight.format_age(delta) == text


def test_describe_chars_names_invisible_ones_and_sorts() -> None:
    assert preflight.describe_chars(";\t; \n") == "tab, line break, space, ';'"


def test_shown_cuts_long_values() -> None:
    assert preflight.shown("abc") == "'abc'"
    cut = preflight.shown("x" * 500)
    assert len(cut) == 62
    assert cut.endswith("…'")


@pytest.mark.parametrize(
    ("value", "number", "text"),
    [
        (Decimal("1500.00"), 1500, "1500.00"),
        (Decimal("0.10"), 0.1, "0.10"),
        (Decimal("2.5E+3"), 2500, "2500"),
        (Decimal("-0.00"), 0, "0.00"),
    ],
)
def test_numbers(value: Decimal, number: float, text: str) -> None:
    assert preflight.json_number(value) == number
    assert type(preflight.json_number(value)) is type(number)
    assert preflight.decimal_text(value) == text


def test_deferral_message_speaks_the_conversions_offset_and_retry_is_utc() -> None:
    msk = timezone(timedelta(hours=3))
    now = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    with pytest.raises(RowDeferred) as caught:
        preflight.check_not_future(datetime(2026, 11, 20, 14, 3, tzinfo=msk), now, platform="X")
    assert "now is 2026-11-20 14:00:00+03:00" in caught.value.message
    assert "sent after 2026-11-20 14:04:00+03:00" in caught.value.message
    assert caught.value.retry_at == datetime(2026, 11, 20, 11, 4, tzinfo=UTC)
    assert caught.value.retry_at.tzinfo is UTC
