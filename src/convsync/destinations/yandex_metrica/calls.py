"""The call columns of a Metrica calls file, from the record fields a ``type: calls``
target maps (``call_fields``), and their pre-flight.

Each value is checked here, row by row, because one malformed cell makes Metrica refuse
the whole file (``invalid_uploading``) — every other call in it with it. Durations are
whole seconds (``95``, or ``1:35`` / ``0:01:35`` as call trackers export them), flags are
``1``/``0`` (``yes``/``no``, ``true``/``false``, ``да``/``нет`` are read too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from convsync.core.errors import RowRejected
from convsync.core.model import Conversion
from convsync.destinations import preflight
from convsync.destinations.yandex_metrica.config import CALL_COLUMNS, MetricaTarget

_SECONDS = re.compile(r"[0-9]{1,9}")
_CLOCK = re.compile(r"(?:([0-9]{1,4}):)?([0-9]{1,2}):([0-9]{2})")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_ORDER = {column: i for i, column in enumerate(CALL_COLUMNS)}
_FLAGS = {
    **dict.fromkeys(("1", "yes", "y", "true", "да"), 1),
    **dict.fromkeys(("0", "no", "n", "false", "нет"), 0),
}


def call_cells(conversion: Conversion, target: MetricaTarget) -> dict[str, Any]:
    """The call columns of one row, in file order; a field without a value is left out."""
    attributes = conversion.attributes or {}
    cells: dict[str, Any] = {}
    for column, field in sorted(target.call_fields.items(), key=lambda c: _ORDER[c[0]]):
        text = (attributes.get(field) or "").strip()
        if text:
            cells[column] = _CHECKS[column](text, column, field)
    return cells


def _duration(text: str, column: str, field: str) -> int:
    if _SECONDS.fullmatch(text):
        return int(text)
    clock = _CLOCK.fullmatch(text)
    if clock:
        hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        if minutes < 60 and seconds < 60:
            return hours * 3600 + minutes * 60 + seconds
    raise RowRejected(
        "invalid_call_duration",
        f"{column} {preflight.shown(text)} (field {field!r}) is not a duration: write whole "
        "seconds such as 95, or minutes and seconds such as 1:35.",
    )


def _flag(text: str, column: str, field: str) -> int:
    flag = _FLAGS.get(text.casefold())
    if flag is None:
        raise RowRejected(
            "invalid_call_flag",
            f"{column} {preflight.shown(text)} (field {field!r}) must be 1 or 0 (yes or no) "
            "in a Metrica calls file.",
        )
    return flag


def _phone(text: str, column: str, field: str) -> str:
    number = _PHONE_SEPARATORS.sub("", text)
    if not _PHONE.fullmatch(number):
        raise RowRejected(
            "invalid_phone_number",
            f"{column} {preflight.shown(text)} (field {field!r}) must be a phone number with "
            "its country code, such as +74951234567, as Metrica expects it.",
        )
    return number


def _url(text: str, column: str, field: str) -> str:
    if not _URL.fullmatch(text) or not text.isprintable():
        raise RowRejected(
            "invalid_call_url",
            f"{column} {preflight.shown(text)} (field {field!r}) is not an http(s) address "
            "without spaces, which a calls file needs there.",
        )
    return text


def _tag(text: str, column: str, field: str) -> str:
    # one CSV cell: a line break would split the row for every other call in the file
    bad = {c for c in text if not c.isprintable()}
    if bad:
        raise RowRejected(
            "invalid_call_tag",
            f"{column} {preflight.shown(text)} (field {field!r}) contains "
            f"{preflight.describe_chars(bad)}, which a line of the upload file cannot carry.",
        )
    return text


_CHECKS: dict[str, Callable[[str, str, str], Any]] = {
    "PhoneNumber": _phone,
    "TalkDuration": _duration,
    "HoldDuration": _duration,
    "CallMissed": _flag,
    "Tag": _tag,
    "FirstTimeCaller": _flag,
    "URL": _url,
    "CallTrackerURL": _url,
    "StaticCall": _flag,
}
