"""Timestamps, amounts and currencies as exports write them (convsync.parsing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convsync.parsing import (
    ParseError,
    describe_value,
    normalize_currency,
    parse_amount,
    parse_money,
    parse_timestamp,
)

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
PLUS3 = timezone(timedelta(hours=3))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T14:03:00+03:00", datetime(2026, 11, 20, 14, 3, tzinfo=PLUS3)),
        ("2026-11-20T14:03:00+0300", datetime(2026, 11, 20, 14, 3, tzinfo=PLUS3)),
        ("2026-11-20T11:03:00Z", datetime(2026, 11, 20, 11, 3, tzinfo=UTC)),
        ("2026-11-20 14:03:00", datetime(2026, 11, 20, 14, 3, tzinfo=MSK)),
        ("2026-11-20 14:03", datetime(2026, 11, 20, 14, 3, tzinfo=MSK)),
        ("2026-11-20T14:03:00.250", datetime(2026, 11, 20, 14, 3, 0, 250000, tzinfo=MSK)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=MSK)),
        ("2026-11-20 9:03", datetime(2026, 11, 20, 9, 3, tzinfo=MSK)),
        ("2026-1-2 9:03:07", datetime(2026, 1, 2, 9, 3, 7, tzinfo=MSK)),
        ("2026-11-20 14:03:00 +03:00", datetime(2026, 11, 20, 14, 3, tzinfo=PLUS3)),
        ("2026-11-20 9:03 Z", datetime(2026, 11, 20, 9, 3, tzinfo=UTC)),
        ("20.11.2026 14:03", datetime(2026, 11, 20, 14, 3, tzinfo=MSK)),
        ("20.11.2026 14:03:05", datetime(2026, 11, 20, 14, 3, 5, tzinfo=MSK)),
        ("20.11.2026", datetime(2026, 11, 20, tzinfo=MSK)),
        ("1.2.2026 9:05", datetime(2026, 2, 1, 9, 5, tzinfo=MSK)),
        ("  20.11.2026 14:03  ", datetime(2026, 11, 20, 14, 3, tzinfo=MSK)),
        ("1763636580", datetime(2025, 11, 20, 14, 3, tzinfo=MSK)),
        ("1763636580.5", datetime(2025, 11, 20, 14, 3, 0, 500000, tzinfo=MSK)),
        ("1763636580123", datetime(2025, 11, 20, 14, 3, 0, 123000, tzinfo=MSK)),
        ("999999999", datetime(2001, 9, 9, 5, 46, 39, tzinfo=MSK)),  # MSD, UTC+4
    ],
)
def test_timestamp_vectors(text: str, expected: datetime) -> None:
    got = parse_timestamp(text, MSK)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


def test_unix_time_comes_back_in_the_given_zone() -> None:
    got = parse_timestamp("1763636580", MSK)
    assert got.tzinfo is MSK
    assert (got.hour, got.utcoffset()) == (14, timedelta(hours=3))


def test_naive_time_takes_daylight_saving_into_account() -> None:
    summer = parse_timestamp("2026-07-01 12:00", BERLIN)
    winter = parse_timestamp("01.12.2026 12:00", BERLIN)
    assert (summer.utcoffset(), winter.utcoffset()) == (timedelta(hours=2), timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("32.13.2026 10:00", "month must be in 1..12"),
        ("31.11.2026", "day is out of range for month"),
        ("2026-02-30", "day is out of range for month"),
        ("20.11.2026 25:00", "hour must be in 0..23"),
        ("2026-11-20 14:03+25:00", "the UTC offset must be under 24 hours"),
        ("hello", "expected a date and time like"),
        ("", "expected a date and time like"),
        ("20/11/2026", "expected a date and time like"),
        ("20.11.26", "expected a date and time like"),
        ("12345678", "expected a date and time like"),
        ("123456789012", "expected a date and time like"),
        ("nan", "expected a date and time like"),
        ("12345678²", "expected a date and time like"),
        ("20.11.2026 14+03", "expected a date and time like"),
        ("20.11.2026 1:3", "expected a date and time like"),
    ],
)
def test_timestamp_errors_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="is not a date-time") as caught:
        parse_timestamp(text, MSK)
    assert str(caught.value).startswith(f"{text!r} is not a date-time: ")
    assert problem in str(caught.value)


@settings(deadline=None)  # no wall-clock limits in tests
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_russian_and_iso_forms_of_a_moment_agree(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    ru = parse_timestamp(moment.strftime("%d.%m.%Y %H:%M:%S"), MSK)
    iso = parse_timestamp(moment.isoformat(sep=" "), MSK)
    assert ru == iso == moment.replace(tzinfo=MSK)


@settings(deadline=None)  # no wall-clock limits in tests
@given(
    st.datetimes(
        min_value=datetime(1975, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_unix_seconds_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    assert parse_timestamp(str(int(moment.timestamp())), MSK) == moment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1500", Decimal("1500")),
        ("1500.50", Decimal("1500.50")),
        (" 1500.50 ", Decimal("1500.50")),
        ("1 500,00", Decimal("1500.00")),
        ("1\u00a0500,00", Decimal("1500.00")),
        ("1\u202f500,00", Decimal("1500.00")),
        ("1,500.00", Decimal("1500.00")),
        ("1.500,00", Decimal("1500.00")),
        ("1'500.00", Decimal("1500.00")),
        ("1 234 567,89", Decimal("1234567.89")),
        ("1,234,567", Decimal("1234567")),
        ("1.234.567", Decimal("1234567")),
        ("-12,5", Decimal("-12.5")),
        ("\u221212,5", Decimal("-12.5")),
        ("+7", Decimal("7")),
        ("1,5", Decimal("1.5")),
        ("1.500", Decimal("1.500")),
        ("0,125", Decimal("0.125")),
        ("1234,567", Decimal("1234.567")),
        ("1 500,00 ₽", Decimal("1500.00")),
        ("1500 руб.", Decimal("1500")),
        ("$1,500.00", Decimal("1500.00")),
        ("-$12.50", Decimal("-12.50")),
        ("€ 9,99", Decimal("9.99")),
        ("12 USD", Decimal("12")),
    ],
)
def test_amount_vectors(text: str, expected: Decimal) -> None:
    got = parse_amount(text)
    assert got == expected
    assert got.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize(
    "text",
    [
        "", "abc", "NaN", "nan", "inf", "-Infinity", "1e5", "1_000", "12 apples", "1 50 0",
        "1,50,0.00", "1.500.00,0", "--5", "-$-5", "1500-", "1 500 руб 12", "$ 5 €", "0x10", ".5",
    ],
)  # fmt: skip
def test_amount_garbage_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not an amount"):
        parse_amount(text)


def test_ambiguous_thousands_comma_is_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="ambiguous") as caught:
        parse_amount("1,500")
    assert "1500" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1500", (Decimal("1500"), None)),
        ("1 500,00 ₽", (Decimal("1500.00"), "RUB")),
        ("1500 р.", (Decimal("1500"), "RUB")),
        ("$-12.50", (Decimal("-12.50"), "USD")),
        ("12 eur", (Decimal("12"), "EUR")),
        ("¥100", (Decimal("100"), None)),
    ],
)
def test_parse_money_keeps_the_currency(text: str, expected: tuple[Decimal, str | None]) -> None:
    assert parse_money(text) == expected


def ru_style(value: Decimal, group: str) -> str:
    sign = "-" if value < 0 else ""
    whole, _, frac = f"{abs(value):.2f}".partition(".")
    groups: list[str] = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return f"{sign}{group.join(groups)},{frac}"


money = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False
)


@settings(deadline=None)  # no wall-clock limits in tests
@given(money, st.sampled_from([" ", "\u00a0", "\u202f", "."]))
def test_russian_style_amounts_round_trip(value: Decimal, group: str) -> None:
    assert parse_amount(ru_style(value, group)) == value


@settings(deadline=None)  # no wall-clock limits in tests
@given(money, st.sampled_from(["", "$", "₽ "]))
def test_english_style_amounts_round_trip(value: Decimal, prefix: str) -> None:
    sign = "-" if value < 0 else ""
    assert parse_amount(f"{sign}{prefix}{abs(value):,.2f}") == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RUB", "RUB"), ("rub", "RUB"), (" usd ", "USD"), ("RUR", "RUB"), ("643", "RUB"),
        ("810", "RUB"), ("₽", "RUB"), ("руб.", "RUB"), ("Руб", "RUB"), ("р.", "RUB"),
        ("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("₸", "KZT"), ("KZT", "KZT"),
        ("¥", None), ("XXX", None), ("QQQ", None), ("", None), ("rubles!", None),
        ("999", None), ("ЕВР", None),
    ],
)  # fmt: skip
def test_normalize_currency(text: str, expected: str | None) -> None:
    assert normalize_currency(text) == expected


def test_describe_value_hides_what_may_be_personal() -> None:
    assert describe_value("32.13.2026 10:00") == "'32.13.2026 10:00'"
    assert "jane" not in describe_value("jane@example.com")
    assert "1234" not in describe_value("+7 (999) 123-45-67")
    assert "1234" not in describe_value("89991234567")
    assert describe_value("x" * 100).endswith("…'")


def test_parse_error_can_be_told_without_the_value() -> None:
    with pytest.raises(ParseError) as caught:
        parse_amount("jane@example.com")
    assert "jane" not in caught.value.describe(describe_value(caught.value.text))
    assert caught.value.describe("the value").startswith("the value is not an amount: ")
