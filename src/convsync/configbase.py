"""Building blocks shared by every config model (top-level and per connector).

Kept free of connector imports so that a connector's config module can use it
without pulling in the rest of convsync.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: Any) -> timedelta:
    """``90`` (seconds), ``"30s"``, ``"15m"``, ``"6h"``, ``"7d"``, ``"2w"``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 15m, 6h or 7d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            unit = (m.group(2) or "s").lower()
            return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[unit])
    raise ValueError(f"{value!r} is not a duration: write it like 30s, 15m, 6h or 7d")


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


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
    from convsync.parsing import normalize_currency

    code = normalize_currency(str(value))
    if code is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (RUB, USD, EUR, …)")
    return code


CurrencyCode = Annotated[str, BeforeValidator(_check_currency)]
