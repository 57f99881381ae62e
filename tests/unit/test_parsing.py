"""Timestamps, amounts and currencies as exports write them (convsync.core.parsing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convsync.core.parsing import (
    AMOUNT_LIMIT,
    ParseError,
    amount_problem,
    amount_text,
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
        ("1.5", Decimal("1.5")),
        ("0,125", Decimal("0.125")),
        ("0.500", Decimal("0.500")),  # a group never starts with 0: decimals
        ("1234,567", Decimal("1234.567")),  # 1234 is no group of three: decimals
        ("1500.500", Decimal("1500.500")),
        ("1 500,000", Decimal("1500.000")),  # spaces group: the comma is decimal
        ("1,500.000", Decimal("1500.000")),
        ("1.500,5", Decimal("1500.5")),
        ("12.3450", Decimal("12.3450")),
        ("999999999999999", Decimal("999999999999999")),  # 15 digits
        ("9999999999999.99", Decimal("9999999999999.99")),
        ("0.000000000000001", Decimal("0.000000000000001")),
        ("1500.000000000000000000", Decimal("1500.000000000000000000")),  # trailing zeros
        # digits of one other script are read; full-width signs and separators fold
        ("１５００", Decimal("1500")),
        ("１ ５００，５０ ₽", Decimal("1500.50")),
        ("－１２．５", Decimal("-12.5")),
        ("＄２０", Decimal("20")),
        ("١٥٠٠", Decimal("1500")),  # Arabic-Indic
        ("१५००.५", Decimal("1500.5")),  # Devanagari
        ("1 500 ₽", Decimal("1500")),
        ("$20", Decimal("20")),
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


@pytest.mark.parametrize(
    "text",
    ["1,500", "1.500", "12.345", "999,999", "-1.500", "$1,500", "1.500 ₽", "１．５００", "+7,000"],
)
def test_one_separator_before_three_digits_is_refused_as_ambiguous(text: str) -> None:
    with pytest.raises(ValueError, match="ambiguous") as caught:
        parse_amount(text)
    message = str(caught.value)
    assert "1500" in message and "1.5" in message  # both readings, and how to write it
    assert "1,500.00 or 1 500,00" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.345", Decimal("12.345")),
        ("1.500", Decimal("1.500")),
        ("1500.5", Decimal("1500.5")),
        ("1,500.000", Decimal("1500.000")),
    ],
)
def test_a_programs_number_has_a_decimal_point(text: str, expected: Decimal) -> None:
    assert parse_money(text, point_decimal=True) == (expected, None)


@pytest.mark.parametrize("text", ["1,500", "99999999999999999999999", "1500０"])
def test_a_programs_number_follows_the_rest_of_the_rule(text: str) -> None:
    with pytest.raises(ParseError):
        parse_money(text, point_decimal=True)


def test_the_ambiguity_message_names_the_separator_found() -> None:
    with pytest.raises(ValueError, match=r"a single '\.' before exactly three digits"):
        parse_amount("1.500")
    with pytest.raises(ValueError, match="a single ',' before exactly three digits"):
        parse_amount("1,500")


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999999999",  # was sent as 1e23
        "100000000000000000000000",
        "1000000000000000",  # 10^15
        "1 000 000 000 000 000,00",
        "123456789012345.6",  # 16 significant digits
        "0.1234567890123456",
        "$9,999,999,999,999,999.00",
    ],
)
def test_amounts_a_double_cannot_carry_exactly_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not an amount: it (is 10\^15|has 1[6-9]|has 2)"):
        parse_amount(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1500０", "it mixes ASCII and fullwidth digits"),  # not 15000
        ("１５００.50", "it mixes ASCII and fullwidth digits"),
        ("1٥00", "it mixes ASCII and arabic-indic digits"),
        ("1500²", "'²' is not a digit 0–9"),  # not 15002
        ("①500", "'①' is not a digit 0–9"),
        ("1½", "'½' is not a digit 0–9"),
        ("五百", "'五' is not a digit 0–9"),
        ("\u3358", "expected a number like"),  # a sign that folds into a digit and more
    ],
)
def test_digits_of_mixed_scripts_or_other_numerals_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="is not an amount") as caught:
        parse_amount(text)
    assert problem in str(caught.value)


@settings(deadline=None)  # no wall-clock limits in tests
@given(
    st.decimals(min_value=0, max_value=Decimal("1e13") - 1, places=2, allow_nan=False),
    st.sampled_from([0xFF10, 0x0660, 0x0966, 0x09E6]),  # full-width, Arabic-Indic, …
)
def test_a_number_in_one_other_script_reads_as_in_ascii(value: Decimal, zero: int) -> None:
    ascii_text = f"{value:.2f}"
    other = "".join(chr(zero + int(c)) if c.isdigit() else c for c in ascii_text)
    assert parse_amount(other) == parse_amount(ascii_text) == value


@settings(deadline=None)  # no wall-clock limits in tests
@given(st.text(alphabet="0123456789０１５٥.,  ", min_size=1, max_size=12))
def test_an_amount_is_never_read_from_mixed_digits(text: str) -> None:
    scripts = {ord(c) - int(c) for c in text if c.isdecimal()} if text.strip() else set()
    try:
        parse_amount(text)
    except ParseError:
        return
    assert len(scripts) == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Decimal("999999999999999"), None),
        (Decimal("0.000000000000001"), None),
        (Decimal("1500.5000000000000000000"), None),
        (Decimal("-999999999999999"), None),
        (AMOUNT_LIMIT, "10^15 or more"),
        (Decimal("1E+23"), "10^15 or more"),
        (Decimal("1234567890.1234567"), "17 significant digits"),
        (Decimal("NaN"), "not a number"),
        (Decimal("Infinity"), "not a number"),
    ],
)
def test_amount_problem(value: Decimal, problem: str | None) -> None:
    got = amount_problem(value)
    assert got == problem if problem is None else (got is not None and problem in got)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("12.345"), "12.3450"),
        (Decimal("1.500"), "1.5000"),
        (Decimal("-1.500"), "-1.5000"),
        (Decimal("0.125"), "0.125"),
        (Decimal("1500.000"), "1500.000"),
        (Decimal("1.5"), "1.5"),
        (Decimal("1E+3"), "1000"),
        (12.345, "12.3450"),
        (0.1, "0.1"),
        (1500, "1500"),
    ],
)
def test_amount_text_of_typed_numbers_reads_back(value: Decimal | float, text: str) -> None:
    assert amount_text(value) == text
    assert parse_amount(text) == Decimal(repr(value) if isinstance(value, float) else value)


@settings(deadline=None)  # no wall-clock limits in tests
@given(st.decimals(min_value=-(10**12), max_value=10**12, places=3, allow_nan=False))
def test_amount_text_round_trips(value: Decimal) -> None:
    assert parse_amount(amount_text(value)) == value


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


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("99999999999999999999999", True),  # recorded before the map step refused it
        ("1234567890.1234567", True),
        ("999999999999999", False),
        ("1500.50", False),
    ],
)
def test_preflight_refuses_amounts_a_double_cannot_carry(value: str, refused: bool) -> None:
    from convsync.core.errors import RowRejected
    from convsync.core.model import Conversion, Identifiers
    from convsync.destinations.preflight import checked_value

    conversion = Conversion(
        key="k", source="s", record_id="1", goal="g", order_id="1",
        occurred_at=datetime(2026, 11, 20, tzinfo=UTC), value=Decimal(value), currency="RUB",
        ids=Identifiers(gclid="EAIaIQobChMI"),
    )  # fmt: skip
    if not refused:
        assert checked_value(conversion) == Decimal(value)
        return
    with pytest.raises(RowRejected) as caught:
        checked_value(conversion)
    assert caught.value.code == "invalid_value"
    assert "cannot be sent as written" in str(caught.value)
