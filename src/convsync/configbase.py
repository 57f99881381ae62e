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


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50}  # fmt: skip


def parse_bytes(value: Any) -> int:
    """``10737418240``, ``"10GB"`` (10⁹), ``"10GiB"`` (2³⁰), ``"500 MB"``."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 10GB or 500MB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size: write it like 10GB, 500MB or 1TiB")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


#: a size in bytes, written as a number or like 64KiB, 500MB, 10GB (10⁹) or 1TiB (2⁴⁰)
ByteSize = Annotated[int, BeforeValidator(parse_bytes)]


def _check_base_url(value: Any) -> str:
    text = str(value).strip()
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"{text!r} is not an http(s) URL: write it like https://api.example.com")
    return text.rstrip("/")


#: an API's base URL (a test server's, in tests), without a trailing slash
BaseUrl = Annotated[str, BeforeValidator(_check_base_url)]
