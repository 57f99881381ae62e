"""The ``sql`` source's cursor: what is saved between runs and what ``:cursor`` binds.

The saved form is JSON (the ledger keeps it as JSON): ``{"column": …, "kind": …,
"value": …}``. ``kind`` says how to turn ``value`` back into what the driver compared:

- ``datetime``: ISO 8601 text; a naive value stays naive (a ``timestamp without time
  zone`` column compares with a naive parameter), an aware one keeps its offset;
- ``date``: ISO date;
- ``int``: the number; ``decimal``: its text (JSON numbers lose digits); ``float``;
- ``text``: the text as the database returned it (SQLite keeps times as text, and a
  text comparison is only right against text in the same shape).

The rules (kept here, apart from the database code, so they are tested alone):

- the cursor is the largest cursor value among the rows pulled, never "now": a row
  written later with a smaller value is still ahead of it, or within ``lookback``;
- it never moves back (a re-pulled row that changed or vanished cannot lower it);
- it never moves past the moment the pull started (a row stamped in the future by a
  skewed clock would otherwise hide every row written until then);
- ``lookback`` moves the bound ``:cursor`` back in time; it needs a time cursor
  (a datetime, a date, or ISO text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

Kind = Literal["datetime", "date", "int", "decimal", "float", "text"]
TIME_KINDS: frozenset[str] = frozenset({"datetime", "date", "text"})


class CursorKindError(ValueError):
    """A cursor value of a type the saved cursor cannot hold or move back."""


def kind_of(value: Any) -> Kind:
    """The kind of a cursor value as the driver returned it."""
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, bool):
        raise CursorKindError("a true/false column cannot be a cursor")
    if isinstance(value, int):
        return "int"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    raise CursorKindError(
        f"a {type(value).__name__} column cannot be a cursor: use a time, a number or text"
    )


def to_json(kind: Kind, value: Any) -> Any:
    if kind in ("datetime", "date"):
        return value.isoformat()
    if kind == "decimal":
        return str(value)
    return value


def from_json(kind: str, value: Any) -> Any:
    """The driver value back from its saved form; ValueError if it does not fit."""
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(str(value))
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "text" and isinstance(value, str):
        return value
    raise ValueError(f"a saved cursor of kind {kind!r} cannot hold {value!r}")


# --- times written as text ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TextShape:
    """How an ISO time was written, so a moved value is written the same way."""

    date_only: bool
    sep: str
    timespec: str


def parse_iso_text(text: str) -> tuple[datetime, _TextShape] | None:
    """An ISO 8601 time written as text, with its shape; None if it is not one."""
    s = text.strip()
    if len(s) < 10 or s[4] != "-":
        return None
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if len(s) == 10:
        return dt, _TextShape(True, " ", "seconds")
    clock = s[11:].split("+")[0].split("Z")[0]
    if len(clock) > 9 and "-" in clock[8:]:
        clock = clock[: clock.index("-", 8)]
    if len(clock) <= 5:
        spec = "minutes"
    elif len(clock) <= 8:
        spec = "seconds"
    elif len(clock) <= 12:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return dt, _TextShape(False, s[10], spec)


def format_iso_text(dt: datetime, shape: _TextShape) -> str:
    # isoformat truncates (never rounds up) to the timespec: an earlier bound only
    # re-reads a little more, which the ledger absorbs
    if shape.date_only:
        return dt.date().isoformat()
    return dt.isoformat(sep=shape.sep, timespec=shape.timespec)


# --- the cursor -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SqlCursor:
    """A position in the query's rows: the column, its kind and its largest value."""

    column: str
    kind: Kind
    value: Any

    @classmethod
    def from_state(cls, saved: Any, column: str) -> SqlCursor | None:
        """The saved cursor, or None if there is none or it was for another column."""
        if not isinstance(saved, dict) or saved.get("column") != column:
            return None
        kind = saved.get("kind")
        if kind not in ("datetime", "date", "int", "decimal", "float", "text"):
            return None
        try:
            return cls(column, kind, from_json(kind, saved.get("value")))
        except (TypeError, ValueError):
            return None

    def as_state(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "value": to_json(self.kind, self.value)}

    def bound(self, lookback: timedelta) -> Any:
        """The value ``:cursor`` is bound to: the saved one, ``lookback`` earlier."""
        if not lookback:
            return self.value
        if self.kind == "datetime":
            return self.value - lookback
        if self.kind == "date":
            return (datetime.combine(self.value, time()) - lookback).date()
        if self.kind == "text":
            parsed = parse_iso_text(self.value)
            if parsed is not None:
                return format_iso_text(parsed[0] - lookback, parsed[1])
        raise CursorKindError(
            f"the cursor column {self.column!r} holds {_described(self)}, which cannot be "
            "moved back by a time"
        )

    def advanced(self, value: Any) -> SqlCursor:
        """This cursor moved to ``value`` if that is further; never back."""
        if _greater(self.kind, value, self.value):
            return SqlCursor(self.column, self.kind, value)
        return self


def _described(cursor: SqlCursor) -> str:
    if cursor.kind == "text":
        return "text that is not an ISO date-time"
    return {"int": "integers", "decimal": "numbers", "float": "numbers"}.get(
        cursor.kind, cursor.kind
    )


def _greater(kind: str, a: Any, b: Any) -> bool:
    if kind == "datetime" and (a.tzinfo is None) != (b.tzinfo is None):
        return False  # cannot compare: keep the saved one (the column changed type)
    if kind == "text":
        pa, pb = parse_iso_text(a), parse_iso_text(b)
        if pa is not None and pb is not None and _comparable(pa[0], pb[0]):
            return pa[0] > pb[0]
    try:
        return bool(a > b)
    except TypeError:
        return False


def _comparable(a: datetime, b: datetime) -> bool:
    return (a.tzinfo is None) == (b.tzinfo is None)


def capped(kind: Kind, value: Any, started: datetime, tz: ZoneInfo) -> Any:
    """``value``, or the moment the pull started if the value lies after it.

    ``started`` is aware; naive values are read in the source's time zone ``tz``.
    Values that are not times are returned as they are.
    """
    if kind == "datetime":
        limit = started if value.tzinfo is not None else started.astimezone(tz).replace(tzinfo=None)
        return limit if value > limit else value
    if kind == "text":
        parsed = parse_iso_text(value)
        if parsed is None:
            return value
        dt, shape = parsed
        moment = dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)
        if moment <= started:
            return value
        limit = started.astimezone(dt.tzinfo if dt.tzinfo is not None else tz)
        if dt.tzinfo is None:
            limit = limit.replace(tzinfo=None)
        return format_iso_text(limit, shape)
    if kind == "date":
        today = started.astimezone(tz).date()
        return today if value > today else value
    return value
