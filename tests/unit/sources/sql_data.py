"""Test data of the ``sql`` source, shared by the SQLite (unit) and PostgreSQL
(integration) tests: an ``orders`` table whose rows change at known moments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import SecretStr

from convsync.core.model import RawRecord, SourceState
from convsync.sources.base import SourceContext
from convsync.sources.sql import SqlSource
from convsync.sources.sql_config import SqlSourceConfig
from convsync.sources.sql_cursor import SqlCursor, parse_iso_text

MSK = ZoneInfo("Europe/Moscow")
BASE = datetime(2024, 5, 1, 10, 0)  # naive: in MSK
LOOKBACK = timedelta(minutes=30)
FIELDS = {
    "email": "email",
    "phone": "phone",
    "value": "total",
    "status": "status",
    "vk_click_id": "rb_clickid",
}

#: id → minutes after BASE of its last change (updated_at); 2 and 3 share a value, and
#: 6 is within the lookback of 5
UPDATED = {"1": 0, "2": 60, "3": 60, "4": 120, "5": 180, "6": 190}


def good_rows() -> list[dict[str, Any]]:
    return [row(int(i), minutes) for i, minutes in UPDATED.items()]


def row(i: int | None, minutes: int, created: str | None = None) -> dict[str, Any]:
    n = i or 0
    return {
        "order_id": i,
        "created_at": created if created is not None else "2024-04-30 12:00:00",
        "updated_at": BASE + timedelta(minutes=minutes),
        "email": f"buyer{n}@example.com",
        "phone": f"+7916555{n:04d}",
        "total": f"{n}00.50",
        "status": "paid",
        "rb_clickid": f"click{n}",
    }


def bad_rows() -> list[dict[str, Any]]:
    return [
        row(None, 200),  # no id
        row(7, 210, created="+79165557777"),  # the phone landed in the time column
        row(8, 220, created="soon"),
    ]


PII = [f"buyer{i}@example.com" for i in range(9)] + [f"+7916555{i:04d}" for i in range(9)]
PII += ["+79165557777"]


def create_orders(
    engine: sa.Engine, table: str, rows: Sequence[dict[str, Any]], *, typed: bool
) -> None:
    """``typed``: real types (PostgreSQL: integer id, timestamptz); else all text, as
    SQLite files exported by shops usually are."""
    meta = sa.MetaData()
    text = sa.Text()
    orders = sa.Table(
        table,
        meta,
        sa.Column("order_id", sa.Integer() if typed else text),
        sa.Column("created_at", text),
        sa.Column("updated_at", sa.DateTime(timezone=True) if typed else text),
        *(sa.Column(name, text) for name in ("email", "phone", "total", "status", "rb_clickid")),
    )
    prepared = []
    for r in rows:
        r = dict(r)
        if typed:
            r["updated_at"] = r["updated_at"].replace(tzinfo=MSK)
        else:
            r["order_id"] = None if r["order_id"] is None else str(r["order_id"])
            r["updated_at"] = r["updated_at"].isoformat(sep=" ")
        prepared.append(r)
    meta.create_all(engine)
    with engine.begin() as connection:
        if prepared:
            connection.execute(orders.insert(), prepared)


def query(table: str) -> str:
    return (
        "SELECT order_id, created_at, updated_at, email, phone, total, status, rb_clickid "
        f"FROM {table} WHERE updated_at >= :cursor"
    )


def make_source(
    url: str,
    base: Path,
    *,
    table: str = "orders",
    chunk_size: int = 5000,
    **config: Any,
) -> SqlSource:
    settings: dict[str, Any] = {
        "type": "sql",
        "url": SecretStr(url),
        "query": query(table),
        "id": "order_id",
        "time": "created_at",
        "cursor": "updated_at",
        "fields": FIELDS,
        "lookback": LOOKBACK,
        "start_date": "2024-01-01",
    }
    settings.update(config)
    cfg = SqlSourceConfig.model_validate(settings)
    return SqlSource("shop", cfg, SourceContext(MSK, base, chunk_size=chunk_size))


def cursor_moment(cursor: Any) -> datetime:
    """The saved cursor as an aware moment (text cursors are naive MSK)."""
    saved = SqlCursor.from_state(cursor, "updated_at")
    assert saved is not None, cursor
    if isinstance(saved.value, datetime):
        value = saved.value
    else:
        parsed = parse_iso_text(saved.value)
        assert parsed is not None, cursor
        value = parsed[0]
    return value if value.tzinfo is not None else value.replace(tzinfo=MSK)


def repull_window(state: SourceState, seen: Sequence[RawRecord]) -> set[str]:
    """Ids of ``seen`` whose last change lies within the lookback of ``state``'s cursor."""
    since = cursor_moment(state.cursor) - LOOKBACK
    return {
        r.record_id
        for r in seen
        if (BASE + timedelta(minutes=UPDATED.get(r.record_id, 10**6))).replace(tzinfo=MSK) >= since
    }
