"""Pre-flight rules that several platforms share, written once.

Each check raises ``RowRejected`` (permanent) or ``RowDeferred`` (later) with a code and a
sentence a marketer can act on. Messages name the value that broke the rule (click ids,
times, amounts) but never a hash or anything that could be personal data.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from convsync.core.errors import RowDeferred, RowRejected
from convsync.core.model import CLOCK_SKEW_MARGIN, Conversion
from convsync.core.parsing import amount_problem

#: A conversion this far ahead of the clock is a wrong date or time zone in the source,
#: not a clock that runs a little fast: waiting for it would hide the mistake for days.
FUTURE_DEFER_LIMIT = timedelta(days=1)


_ISO_CURRENCY = re.compile(r"[A-Z]{3}")
_CHAR_NAMES = {" ": "space", "\t": "tab", "\n": "line break", "\r": "carriage return"}
_SHOWN_MAX = 60


def require_aware(moment: datetime, what: str) -> None:
    """A naive time here is a bug upstream (the map step makes every time aware)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")


def shown(value: str) -> str:
    """A value quoted for a message, cut short so a garbage field cannot flood the log."""
    if len(value) > _SHOWN_MAX:
        value = value[: _SHOWN_MAX - 1] + "…"
    return repr(value)


def describe_chars(chars: Collection[str]) -> str:
    """``space, ';'`` — characters named the way a person would read them."""
    return ", ".join(_CHAR_NAMES.get(c, repr(c)) for c in sorted(set(chars)))


def format_moment(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def format_age(delta: timedelta) -> str:
    """``112 days``, ``5 hours``, ``3 minutes``: precise enough for a message."""
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"


def check_not_older_than(
    occurred_at: datetime, now: datetime, *, max_age: timedelta, code: str, why: str
) -> None:
    """Reject a conversion older than the platform can still use; ``why`` says why not."""
    age = now - occurred_at
    if age > max_age:
        raise RowRejected(
            code,
            f"The conversion happened at {format_moment(occurred_at)}, {format_age(age)} "
            f"ago; {why}",
        )


def check_not_future(occurred_at: datetime, now: datetime, *, platform: str) -> None:
    """Defer a conversion that is not safely in the past yet; reject one far ahead."""
    ahead = occurred_at - now
    if ahead <= -CLOCK_SKEW_MARGIN:
        return
    if ahead > FUTURE_DEFER_LIMIT:
        raise RowRejected(
            "future_conversion_time",
            f"The conversion time {format_moment(occurred_at)} is {format_age(ahead)} in the "
            f"future; that is almost always a wrong date or time zone in the source, so it is "
            f"not sent to {platform}.",
        )
    send_after = occurred_at + CLOCK_SKEW_MARGIN
    raise RowDeferred(
        "future_conversion_time",
        f"The conversion time {format_moment(occurred_at)} is not yet safely in the past "
        f"(now is {format_moment(now.astimezone(occurred_at.tzinfo))}) and {platform} does not "
        f"take conversions from the future; it will be sent after {format_moment(send_after)}.",
        # UTC, so that retry times of rows from different offsets also compare as text.
        send_after.astimezone(UTC),
    )


def checked_value(conversion: Conversion) -> Decimal | None:
    """The conversion's value if it is a usable amount (finite, not negative, exact in a
    double: at most 15 significant digits, below 10^15 — see ``parsing.amount_problem``).

    The map step refuses such amounts already; this catches values recorded before it
    did, which would otherwise be sent rounded (``99999999999999999999999`` as 1e23).
    """
    value = conversion.value
    if value is None:
        return None
    if not value.is_finite():
        raise RowRejected("invalid_value", f"The conversion value {value} is not a number.")
    if value < 0:
        raise RowRejected(
            "negative_value",
            f"The conversion value {value} is negative; ad platforms take only values of 0 or "
            "more (a refund is not a negative conversion).",
        )
    problem = amount_problem(value)
    if problem is not None:
        raise RowRejected(
            "invalid_value",
            f"The conversion value {shown(decimal_text(value))} cannot be sent as written: "
            f"{problem}.",
        )
    return value


def checked_currency(conversion: Conversion) -> str | None:
    currency = conversion.currency
    if currency is None:
        return None
    if not _ISO_CURRENCY.fullmatch(currency):
        raise RowRejected(
            "invalid_currency",
            f"The currency {shown(currency)} is not a three-letter ISO 4217 code such as RUB, "
            "USD or EUR.",
        )
    return currency


def decimal_text(value: Decimal) -> str:
    """``1500.50`` — never an exponent (``str(Decimal("1E+3"))`` is ``1E+3``) nor ``-0``."""
    return format(abs(value) if value.is_zero() else value, "f")


def json_number(value: Decimal) -> int | float:
    """A JSON number that reads like the amount: ``1500`` rather than ``1500.0``."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def bad_chars(value: str, forbidden: str) -> set[str]:
    """Characters of ``value`` that are in ``forbidden``, whitespace or control characters."""
    if value.isascii() and value.isalnum() and not any(c.isalnum() for c in forbidden):
        return set()  # the usual id: letters and digits only, none of them forbidden
    return {c for c in value if c in forbidden or c.isspace() or not c.isprintable()}


def check_chars(value: str, *, label: str, code: str, forbidden: str, why: str) -> None:
    """Reject a value with characters that would break the request; ``why`` says how."""
    bad = bad_chars(value, forbidden)
    if bad:
        raise RowRejected(code, f"{label} {shown(value)} contains {describe_chars(bad)}; {why}")
