"""Pydantic's validation errors in plain words, for the config file and the settings.

A message says what was expected and what was found — the value itself, shortened, or
only its kind when it must not be shown (a secret) — never pydantic's own wording
("Input should be …"), its error codes or its links. Where the problem is (a config
path and line, a setting's flag and variable) is the caller's to put in front.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic_core import ErrorDetails

from convsync.core.configtypes import describe_duration, shorten

_MAPPING = "a mapping (key: value lines)"
_DATE = "a date like 2026-01-31"
_DATETIME = "a date and time like 2026-01-31 10:00"

#: what a value should have been, by the kind of error pydantic found
_EXPECTED = {
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float", "int_parsing_size"),
                    "a whole number"),
    **dict.fromkeys(("float_type", "float_parsing", "decimal_type", "decimal_parsing"),
                    "a number"),
    "finite_number": "a finite number",
    **dict.fromkeys(("bool_type", "bool_parsing"), "true or false"),
    **dict.fromkeys(("string_type", "string_unicode", "bytes_type"), "text"),
    **dict.fromkeys(("dict_type", "mapping_type", "model_type", "model_attributes_type",
                     "dataclass_type"), _MAPPING),
    **dict.fromkeys(("list_type", "tuple_type", "set_type", "frozen_set_type",
                     "iterable_type"), "a list"),
    **dict.fromkeys(("date_type", "date_parsing", "date_from_datetime_parsing",
                     "date_from_datetime_inexact"), _DATE),
    **dict.fromkeys(("datetime_type", "datetime_parsing", "datetime_from_date_parsing",
                     "datetime_object_invalid"), _DATETIME),
    **dict.fromkeys(("time_type", "time_parsing"), "a time like 14:30"),
    **dict.fromkeys(("time_delta_type", "time_delta_parsing"),
                    "a duration like 30s, 15m, 6h or 7d"),
    **dict.fromkeys(("url_type", "url_parsing", "url_syntax_violation", "url_scheme"), "a URL"),
    "none_required": "nothing",
}  # fmt: skip

#: bound errors: the bound's key in ``ctx``, and how a value beyond it is told
_BOUNDS = {
    "greater_than": ("gt", "small", "it must be more than"),
    "greater_than_equal": ("ge", "small", "at least"),
    "less_than": ("lt", "large", "it must be less than"),
    "less_than_equal": ("le", "large", "at most"),
}
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_WORD = re.compile(r"[\w.+/-]+")


def describe(error: ErrorDetails, got: str | None = None) -> str:
    """What is wrong with the value of one error. ``got`` replaces how the value is
    shown (for a secret: its kind only)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    shown = got if got is not None else found(value)
    if kind in ("value_error", "assertion_error"):
        return _own_message(error)
    if kind == "missing":
        return "required key is missing"
    if kind in ("literal_error", "enum"):
        return f"{shown} is not one of {choices(str(ctx.get('expected', '')))}"
    if kind in _BOUNDS:
        key, size, words = _BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, timedelta):
            bound = describe_duration(bound)
        if isinstance(value, timedelta):
            size = "short" if size == "small" else "long"
        return f"{shown} is too {size}: {words} {bound}"
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        return _length(kind, ctx, shown)
    if kind == "invalid_key":
        return f"the key {shown} is not a name: quote it ('{shorten(value)}':)"
    if not error["msg"].startswith("Input should be") and kind not in _EXPECTED:
        # an error kind without words of its own, and not phrased as an expectation
        said = error["msg"]
        return f"{said[:1].lower()}{said[1:]} (got {shown})"
    return f"expected {expectation(error)}, got {shown}{_reason(ctx)}"


def describe_union(errors: Sequence[ErrorDetails], got: str | None = None) -> str:
    """One message for a value that fits none of the kinds a key takes (text or a
    number, a date and time or a date): every kind expected, the value once."""
    wanted = list(dict.fromkeys(expectation(e) for e in errors))
    shown = got if got is not None else found(errors[0].get("input"))
    reason = _reason(errors[0].get("ctx") or {})
    return f"expected {either(wanted)}, got {shown}{reason}"


def expectation(error: ErrorDetails) -> str:
    """What the value of one error should have been, in a few words."""
    kind = error["type"]
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind in ("literal_error", "enum"):
        return f"one of {choices(str((error.get('ctx') or {}).get('expected', '')))}"
    # an error kind without words of its own: pydantic's "Input should be a valid X, …"
    head = error["msg"].split(",")[0]
    return head.removeprefix("Input should be ").removeprefix("a valid ").strip() or "another value"


def found(value: Any) -> str:
    """How a value is quoted in a message: text in quotes, numbers as they are, a long
    one cut short, a list or mapping by its kind."""
    if isinstance(value, str):
        return repr(shorten(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return shorten(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return describe_duration(value)
    return kind_of(value)


def kind_of(value: Any) -> str:
    """A value's kind, for a message that must not show the value itself."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date | datetime):
        return "a date"
    return "a value of another kind"


def choices(expected: str) -> str:
    """Pydantic's ``'a', 'b' or 'c'`` as ``a, b, c`` (``','`` stays quoted)."""
    names = _QUOTED.findall(expected)
    if not names:
        return expected
    return ", ".join(name if _WORD.fullmatch(name) else repr(name) for name in names)


def either(items: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


def _own_message(error: ErrorDetails) -> str:
    """A validator's own message (ours, written for the user), without pydantic's prefix."""
    return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _reason(ctx: dict[str, Any]) -> str:
    """Why a date did not parse ("month value is outside expected range of 1-12")."""
    reason = ctx.get("error")
    return f" ({reason})" if isinstance(reason, str) and reason else ""


def _length(kind: str, ctx: dict[str, Any], shown: str) -> str:
    least, most, count = ctx.get("min_length"), ctx.get("max_length"), ctx.get("actual_length")
    if kind == "string_too_short":
        if least == 1:
            return "must not be empty"
        return f"{shown} is too short: at least {least} characters"
    if kind == "string_too_long":
        return f"{shown} is too long: at most {most} characters"
    if kind == "too_short":
        return "must not be empty" if least == 1 else f"has {count} items: at least {least}"
    return f"has {count} items: at most {most}"


def suggest(name: str, known: list[str]) -> str:
    """`` (did you mean 'google'?)`` or a list of the known names."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if known:
        return f" (configured: {', '.join(known)})"
    return ""
