"""Small pieces every ledger query module shares: row ↔ model, dialect inserts, chunking."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from convsync.core import sealing
from convsync.core.jsontext import dumps
from convsync.core.model import (
    Adjustment,
    AdjustmentKind,
    ClaimedDelivery,
    Conversion,
    DeliveryState,
    Identifiers,
)
from convsync.store.schema import conversions, deliveries

#: SQLite's default limit is 999 bound parameters per statement on old builds; 500
#: keeps every IN-list well under it and under PostgreSQL's planner sweet spot.
IN_CHUNK = 500

T = TypeVar("T")

#: element types of the arrays :func:`one_of` binds
ID = sa.BigInteger()
KEY = sa.String()


#: PostgreSQL gets a whole batch as one array parameter (``= ANY(:array)``): no 500
#: placeholders for psycopg to parse on every statement
PG_ARRAY_CHUNK = 10_000


def chunked(items: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def batches(connection: Connection, items: Iterable[T]) -> Iterator[list[T]]:
    """``items`` in batches sized for :func:`one_of` on this connection's database."""
    pg = connection.dialect.name == "postgresql"
    return chunked(items, PG_ARRAY_CHUNK if pg else IN_CHUNK)


def one_of(
    connection: Connection,
    column: sa.ColumnElement[Any],
    values: Sequence[Any],
    item_type: sa.types.TypeEngine[Any],
) -> sa.ColumnElement[bool]:
    """``column IN (values)``: one array parameter on PostgreSQL, a bound list on SQLite."""
    if connection.dialect.name == "postgresql":
        return column == sa.any_(sa.literal(list(values), postgresql.ARRAY(item_type)))
    return column.in_(values)


def distinct_values(
    connection: Connection, column: sa.ColumnElement[Any], where: Sequence[sa.ColumnElement[bool]]
) -> Iterator[Any]:
    """The non-NULL values of ``column`` among the rows matching ``where``, in order:
    one index seek each (``min`` above the last one) on an index that leads with the
    ``where`` columns and then ``column``, never a scan of the rows."""
    query = sa.select(sa.func.min(column)).where(*where)
    value = connection.execute(query).scalar()
    while value is not None:
        yield value
        value = connection.execute(query.where(column > value)).scalar()


def upsert_insert(connection: Connection, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the connection's dialect.

    Typed ``Any`` because the two dialects' Insert classes share the ON CONFLICT API
    but no common base class that declares it.
    """
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


#: the columns :func:`conversion_values` fills, in its order (``id`` is the caller's)
CONVERSION_VALUE_COLUMNS = (
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
    "attributes",
    "sealed",
    "recorded_at",
    "run_id",
)


def conversion_values(
    conversion: Conversion,
    *,
    occurred_at: Callable[[datetime], Any],
    recorded_at: Any,
    run_id: str,
) -> tuple[Any, ...]:
    """One conversions row in :data:`CONVERSION_VALUE_COLUMNS` order.

    ``occurred_at`` converts the moment for the statement (the column type's bind
    processor for a driver-level insert, identity for a Core one); ``recorded_at`` is
    passed already in that form, being the same for a whole chunk. Attributes that
    are personal data go to ``sealed``, encrypted (see ``convsync.core.sealing``).
    """
    offset = conversion.occurred_at.utcoffset()
    if offset is None:
        raise ValueError(f"conversion {conversion.key} has a naive occurred_at")
    value = conversion.value
    plain, sealed = sealing.split(conversion.attributes)
    return (
        conversion.key,
        conversion.source,
        conversion.record_id,
        conversion.goal,
        conversion.order_id,
        occurred_at(conversion.occurred_at),
        int(offset.total_seconds()) // 60,
        None if value is None else str(value),
        conversion.currency,
        dumps(conversion.ids.as_dict()),
        conversion.consent,
        _attributes_json(plain),
        sealed,
        recorded_at,
        run_id,
    )


def _attributes_json(attributes: Mapping[str, str] | None) -> str | None:
    if not attributes:
        return None
    return dumps(dict(attributes))


def _columns(table: sa.FromClause, prefix: str) -> tuple[sa.Label[Any], ...]:
    return tuple(
        table.c[name].label(f"{prefix}{name}")
        for name in CONVERSION_VALUE_COLUMNS
        if name not in ("recorded_at", "run_id")  # bookkeeping, not part of a Conversion
    )


#: the conversions columns a ClaimedDelivery needs, labelled apart from deliveries'
CONVERSION_COLUMNS: tuple[sa.Label[Any], ...] = _columns(conversions, "c_")

#: an adjustment's delivery also reads the conversion it adjusts, and that conversion's
#: own delivery to the same destination
_BASE = conversions.alias("base")
_BASE_DELIVERY = deliveries.alias("base_delivery")
_BASE_COLUMNS = _columns(_BASE, "b_")


def conversion_from_row(row: Mapping[Any, Any], prefix: str = "c_") -> Conversion:
    """A Conversion from a row selected with :data:`CONVERSION_COLUMNS` (or another
    prefix's copy of them)."""
    offset_min: int = row[f"{prefix}utc_offset_min"]
    occurred_utc: datetime = row[f"{prefix}occurred_at"]
    zone = UTC if offset_min == 0 else timezone(timedelta(minutes=offset_min))
    value: str | None = row[f"{prefix}value"]
    plain: str | None = row[f"{prefix}attributes"]
    sealed: str | None = row[f"{prefix}sealed"]
    attributes: dict[str, str] | None = None if plain is None else json.loads(plain)
    if sealed is not None:
        # values that can no longer be opened (another process's key) are left out
        attributes = {**(attributes or {}), **sealing.unseal(sealed)} or None
    return Conversion(
        key=row[f"{prefix}key"],
        source=row[f"{prefix}source"],
        record_id=row[f"{prefix}record_id"],
        goal=row[f"{prefix}goal"],
        order_id=row[f"{prefix}order_id"],
        occurred_at=occurred_utc.astimezone(zone),
        value=None if value is None else Decimal(value),
        currency=row[f"{prefix}currency"],
        ids=Identifiers.from_dict(json.loads(row[f"{prefix}ids"])),
        consent=row[f"{prefix}consent"],
        attributes=attributes,
    )


def claimed_select() -> sa.Select[Any]:
    """Deliveries joined to their conversions, as :func:`claimed_from_row` reads them."""
    return (
        sa.select(
            deliveries.c.id,
            deliveries.c.destination,
            deliveries.c.goal,
            deliveries.c.state,
            deliveries.c.attempts,
            deliveries.c.batch_id,
            *CONVERSION_COLUMNS,
            conversions.c.adjustment.label("c_adjustment"),
            conversions.c.recorded_at.label("c_recorded_at"),
            *_BASE_COLUMNS,
            _BASE_DELIVERY.c.state.label("b_state"),
            _BASE_DELIVERY.c.updated_at.label("b_updated_at"),
        )
        .join_from(deliveries, conversions, deliveries.c.conversion_id == conversions.c.id)
        .outerjoin(_BASE, conversions.c.adjusts_id == _BASE.c.id)
        .outerjoin(
            _BASE_DELIVERY,
            sa.and_(
                _BASE_DELIVERY.c.conversion_id == _BASE.c.id,
                _BASE_DELIVERY.c.destination == deliveries.c.destination,
            ),
        )
    )


def claimed_from_row(row: Mapping[Any, Any]) -> ClaimedDelivery:
    kind: str | None = row["c_adjustment"]
    if kind is None:
        conversion, adjustment, base_state = conversion_from_row(row), None, None
        base_changed_at = None
    else:
        own = conversion_from_row(row)
        conversion = conversion_from_row(row, "b_")
        adjustment = Adjustment(AdjustmentKind(kind), row["c_recorded_at"], own.value, own.currency)
        state: str | None = row["b_state"]
        base_state = None if state is None else DeliveryState(state)
        base_changed_at = row["b_updated_at"]
    return ClaimedDelivery(
        delivery_id=row["id"],
        destination=row["destination"],
        goal=row["goal"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        batch_id=row["batch_id"],
        conversion=conversion,
        adjustment=adjustment,
        base_state=base_state,
        base_changed_at=base_changed_at,
    )


def fetch_claimed(connection: Connection, ids: Sequence[int]) -> list[ClaimedDelivery]:
    """The deliveries ``ids`` with their conversions, in id order."""
    out: list[ClaimedDelivery] = []
    for batch in batches(connection, ids):
        query = claimed_select().where(one_of(connection, deliveries.c.id, batch, ID))
        out.extend(claimed_from_row(row) for row in connection.execute(query).mappings())
    out.sort(key=lambda claimed: claimed.delivery_id)
    return out
