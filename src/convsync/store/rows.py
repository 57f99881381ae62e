"""Small pieces every ledger query module shares: row ↔ model, dialect inserts, chunking."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from convsync.model import ClaimedDelivery, Conversion, DeliveryState, Identifiers
from convsync.store.schema import conversions, deliveries

#: SQLite's default limit is 999 bound parameters per statement on old builds; 500
#: keeps every IN-list well under it and under PostgreSQL's planner sweet spot.
IN_CHUNK = 500

T = TypeVar("T")


def chunked(items: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def upsert_insert(connection: Connection, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the connection's dialect.

    Typed ``Any`` because the two dialects' Insert classes share the ON CONFLICT API
    but no common base class that declares it.
    """
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def conversion_row(conversion: Conversion, *, run_id: str, now: datetime) -> dict[str, Any]:
    offset = conversion.occurred_at.utcoffset()
    if offset is None:
        raise ValueError(f"conversion {conversion.key} has a naive occurred_at")
    return {
        "key": conversion.key,
        "source": conversion.source,
        "record_id": conversion.record_id,
        "goal": conversion.goal,
        "order_id": conversion.order_id,
        "occurred_at": conversion.occurred_at,
        "utc_offset_min": int(offset.total_seconds()) // 60,
        "value": None if conversion.value is None else str(conversion.value),
        "currency": conversion.currency,
        "ids": json.dumps(conversion.ids.as_dict(), separators=(",", ":"), sort_keys=True),
        "consent": conversion.consent,
        "recorded_at": now,
        "run_id": run_id,
    }


#: the conversions columns a ClaimedDelivery needs, labelled apart from deliveries'
CONVERSION_COLUMNS: tuple[sa.Label[Any], ...] = tuple(
    conversions.c[name].label(f"c_{name}")
    for name in (
        "key",
        "source",
        "record_id",
        "goal",
        "order_id",
        "occurred_at",
        "utc_offset_min",
        "value",
        "currency",
        "ids",
        "consent",
    )
)


def conversion_from_row(row: RowMapping) -> Conversion:
    """A Conversion from a row selected with :data:`CONVERSION_COLUMNS`."""
    offset_min: int = row["c_utc_offset_min"]
    occurred_utc: datetime = row["c_occurred_at"]
    zone = UTC if offset_min == 0 else timezone(timedelta(minutes=offset_min))
    value: str | None = row["c_value"]
    return Conversion(
        key=row["c_key"],
        source=row["c_source"],
        record_id=row["c_record_id"],
        goal=row["c_goal"],
        order_id=row["c_order_id"],
        occurred_at=occurred_utc.astimezone(zone),
        value=None if value is None else Decimal(value),
        currency=row["c_currency"],
        ids=Identifiers.from_dict(json.loads(row["c_ids"])),
        consent=row["c_consent"],
    )


def claimed_select() -> sa.Select[Any]:
    """Deliveries joined to their conversions, as :func:`claimed_from_row` reads them."""
    return sa.select(
        deliveries.c.id,
        deliveries.c.destination,
        deliveries.c.goal,
        deliveries.c.state,
        deliveries.c.attempts,
        deliveries.c.batch_id,
        *CONVERSION_COLUMNS,
    ).join_from(deliveries, conversions, deliveries.c.conversion_key == conversions.c.key)


def claimed_from_row(row: RowMapping) -> ClaimedDelivery:
    return ClaimedDelivery(
        delivery_id=row["id"],
        destination=row["destination"],
        goal=row["goal"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        batch_id=row["batch_id"],
        conversion=conversion_from_row(row),
    )


def fetch_claimed(connection: Connection, ids: Sequence[int]) -> list[ClaimedDelivery]:
    """The deliveries ``ids`` with their conversions, in id order."""
    out: list[ClaimedDelivery] = []
    for batch in chunked(ids):
        query = claimed_select().where(deliveries.c.id.in_(batch))
        out.extend(claimed_from_row(row) for row in connection.execute(query).mappings())
    out.sort(key=lambda claimed: claimed.delivery_id)
    return out
