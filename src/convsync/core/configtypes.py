"""Building blocks shared by every config model (top-level and per connector).

Kept free of connector imports so that a connector's config module can use it
without pulling in the rest of convsync.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
)
from pydantic_core import core_schema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: the longest duration any config key takes: nothing in a sync waits or looks back
#: further, and the bound keeps arithmetic on durations (backoffs, deadlines) far from
#: overflowing
MAX_DURATION = timedelta(days=366)
#: the longest duration read at all (``--since 3650d`` is fine): beyond it, ``now - it``
#: would leave the calendar
LONGEST_DURATION = timedelta(days=100 * 365)


def parse_duration(
    value: Any, low: timedelta = timedelta(0), high: timedelta = LONGEST_DURATION
) -> timedelta:
    """``90`` (seconds), ``"30s"``, ``"15m"``, ``"6h"``, ``"7d"``, ``"2w"``, between
    ``low`` and ``high`` (a config key's range: ``Within``)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        shown = describe_duration(value)
    elif isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError("expected a duration like 30s, 15m, 6h or 7d")
    elif isinstance(value, int | float):
        # compared before any conversion: a huge int overflows a float and a timedelta
        if isinstance(value, int) and value > high.total_seconds():
            raise ValueError(f"{shorten(value)}s is too long: at most {describe_duration(high)}")
        seconds = float(value)
        shown = f"{shorten(value)}s"
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        unit = (m.group(2) or "s").lower()
        seconds = float(m.group(1)) * _UNIT_SECONDS[unit]  # inf when absurdly long
        shown = shorten(value.strip())
    else:
        raise ValueError(f"{shorten(value)!r} is not a duration: write it like 30s, 15m, 6h or 7d")
    if seconds > high.total_seconds():
        raise ValueError(f"{shown} is too long: at most {describe_duration(high)}")
    if seconds < low.total_seconds():
        if seconds < 0:
            raise ValueError(f"{shown} is negative: a duration is 0 or more")
        raise ValueError(f"{shown} is too short: at least {describe_duration(low)}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def describe_duration(value: timedelta) -> str:
    """How a bound reads in a message: ``4w``, ``366d``, ``1d``, ``90s``, ``0.5s``."""
    if value.total_seconds() % 604800 == 0 and value:
        return f"{int(value.total_seconds()) // 604800}w"
    if value.total_seconds() != int(value.total_seconds()):
        return f"{value.total_seconds():g}s"
    return format_duration(value)


def describe_age(value: timedelta) -> str:
    """How long something has waited, to the minute: ``7 h 3 min``, ``3 d 2 h``."""
    minutes = int(value.total_seconds() // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else "under a minute"


def shorten(value: Any) -> str:
    """A value quoted in a message, cut short when it is absurdly long."""
    text = str(value) if not isinstance(value, int) or value.bit_length() < 4000 else "…"
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _as_duration(value: str | int | float | timedelta) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)


@dataclass(frozen=True)
class Within:
    """The range a duration key takes, as ``Annotated`` metadata:
    ``Annotated[Duration, Within("1s", "1d")]``. Every ``Duration`` is within 0 and
    :data:`MAX_DURATION`; a key narrows that to what makes sense for it."""

    low: str | int | float | timedelta
    high: str | int | float | timedelta

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        low, high = _as_duration(self.low), _as_duration(self.high)

        def check(value: Any) -> Any:
            return parse_duration(value, low, high)

        return core_schema.no_info_before_validator_function(check, handler(source))


#: a duration written like ``30s``, ``15m``, ``6h``, ``7d``, ``2w`` or as seconds, from 0 to
#: :data:`MAX_DURATION`; narrow it with ``Annotated[Duration, Within(low, high)]``
Duration = Annotated[
    timedelta,
    Within(timedelta(0), MAX_DURATION),
    PlainSerializer(format_duration, return_type=str),
]

#: how far a pull reads again behind its cursor (late commits, late events, an index's
#: lag): minutes usually, hours for a nightly batch; beyond a week it is a typo
Lookback = Annotated[Duration, Within(timedelta(0), timedelta(weeks=1))]

#: the largest integer a config key takes (a signed 64-bit integer: what the APIs and the
#: ledger's columns hold)
MAX_INT = 2**63 - 1


def _not_a_truth_value(value: Any) -> Any:
    """``true`` is no number: pydantic would read it as 1 (``counter_id: true``)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {str(value).lower()}")
    return value


#: an integer, and not ``true`` or ``false``
WholeNumber = Annotated[int, BeforeValidator(_not_a_truth_value)]

#: an integer that fits in 64 bits; a key adds its own lower bound (``Field(ge=0)``)
Int64 = Annotated[WholeNumber, Field(ge=-MAX_INT - 1, le=MAX_INT)]

#: an id some platform gave (a counter, a pixel, a pipeline, a status): positive, 64-bit
Id = Annotated[WholeNumber, Field(gt=0, le=MAX_INT)]


def _check_timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IANA time zone name like Europe/Moscow")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name like Europe/Moscow or UTC"
        ) from None
    return value


TimeZoneName = Annotated[str, BeforeValidator(_check_timezone)]


def _check_currency(value: Any) -> str:
    from convsync.core.parsing import normalize_currency

    code = normalize_currency(str(value))
    if code is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (RUB, USD, EUR, …)")
    return code


CurrencyCode = Annotated[str, BeforeValidator(_check_currency)]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50}  # fmt: skip


#: the largest size any key takes (1 PiB): beyond it a number is a typo
MAX_BYTES = 2**50


def parse_bytes(value: Any) -> int:
    """``10737418240``, ``"10GB"`` (10⁹), ``"10GiB"`` (2³⁰), ``"500 MB"``; at most
    :data:`MAX_BYTES`."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 10GB or 500MB")
    if isinstance(value, int):
        size: float = value if value <= MAX_BYTES else math.inf
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"{shorten(value)!r} is not a size: write it like 10GB, 500MB or 1TiB")
        size = float(match.group(1)) * _UNITS[(match.group(2) or "").upper()]
    if size > MAX_BYTES:
        raise ValueError(f"{shorten(value)} is too large: at most 1PiB")
    return int(size)


#: a size in bytes, written as a number or like 64KiB, 500MB, 10GB (10⁹) or 1TiB (2⁴⁰)
ByteSize = Annotated[int, BeforeValidator(parse_bytes)]


def _check_base_url(value: Any) -> str:
    text = str(value).strip()
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"{text!r} is not an http(s) URL: write it like https://api.example.com")
    return text.rstrip("/")


#: an API's base URL (a test server's, in tests), without a trailing slash
BaseUrl = Annotated[str, BeforeValidator(_check_base_url)]
