"""The record step's queries: the hot path of a sync run.

Everything here runs on a connection already inside one (write) transaction opened by
the Ledger. Rows go in with the driver's ``executemany`` (see ``bulk.py``), never one
round trip per row. Which conversions are new (only they get deliveries planned) is
learnt without per-row RETURNING: see :func:`_insert_new`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from convsync.core.model import (
    AdjustmentCandidate,
    Conversion,
    DeliveryState,
    FileMark,
    PlannedDelivery,
    RecordRejection,
    SourceState,
)
from convsync.store.adjusting import record_adjustments
from convsync.store.bulk import BulkInsert, to_db
from convsync.store.rows import (
    CONVERSION_VALUE_COLUMNS,
    ID,
    KEY,
    batches,
    conversion_values,
    one_of,
    upsert_insert,
)
from convsync.store.schema import (
    conversions,
    deliveries,
    processed_files,
    record_rejections,
    source_cursors,
)


@dataclass(frozen=True, slots=True)
class RecordCounts:
    """What one ``record_chunk`` call wrote.

    ``pending`` and ``skipped`` count the deliveries planned for the new conversions;
    ``rejections`` counts the distinct record rejections of the chunk (new or seen again).
    """

    new_conversions: int = 0
    pending: int = 0
    skipped: int = 0
    rejections: int = 0
    adjustments: int = 0
    #: the keys of the conversions that were new (a webhook answers per submission)
    new_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


# ON CONFLICT DO NOTHING: a conversion already in the ledger is left as it is.
_INSERT_CONVERSIONS = BulkInsert(
    lambda connection: upsert_insert(connection, conversions).on_conflict_do_nothing(
        index_elements=[conversions.c.key]
    ),
    ("id", *CONVERSION_VALUE_COLUMNS),
)
# ON CONFLICT DO NOTHING: a delivery is planned once, whatever a caller passes twice.
_INSERT_DELIVERIES = BulkInsert(
    lambda connection: upsert_insert(connection, deliveries).on_conflict_do_nothing(
        index_elements=[deliveries.c.conversion_id, deliveries.c.destination]
    ),
    (
        "conversion_id",
        "goal",
        "destination",
        "state",
        "attempts",
        "code",
        "message",
        "created_at",
        "updated_at",
    ),
)


def source_state(connection: Connection, source: str) -> SourceState:
    cursor = connection.execute(
        sa.select(source_cursors.c.cursor).where(source_cursors.c.source == source)
    ).scalar_one_or_none()
    files = {
        row.path: FileMark(path=row.path, size=row.size, mtime_ns=row.mtime_ns)
        for row in connection.execute(
            sa.select(
                processed_files.c.path, processed_files.c.size, processed_files.c.mtime_ns
            ).where(processed_files.c.source == source)
        )
    }
    return SourceState(cursor=cursor, files=files)


def existing_keys(connection: Connection, keys: Collection[str]) -> set[str]:
    found: set[str] = set()
    for batch in batches(connection, keys):
        query = sa.select(conversions.c.key).where(
            one_of(connection, conversions.c.key, batch, KEY)
        )
        found.update(connection.execute(query).scalars())
    return found


@dataclass(slots=True)
class PreparedChunk:
    """A chunk's rows already in the database's own form, made without a connection, so
    that a mapping process can prepare them while the recording one writes.

    ``conversion_rows`` are in :data:`CONVERSION_VALUE_COLUMNS` order, one per distinct
    key of ``keys``; ``delivery_rows`` pair a conversion key with the rest of a
    deliveries row (everything but ``conversion_id``, which the write assigns).
    """

    keys: list[str]
    conversion_rows: list[tuple[Any, ...]]
    delivery_rows: list[tuple[str, tuple[Any, ...]]]
    #: records that may retract or restate conversions already recorded
    adjustments: list[AdjustmentCandidate] = field(default_factory=list)


def prepare_chunk(
    conversions_in: Sequence[Conversion],
    planned: Sequence[PlannedDelivery],
    *,
    dialect: Dialect,
    run_id: str,
    now: datetime,
    adjustments: Sequence[AdjustmentCandidate] = (),
) -> PreparedChunk:
    """The rows of a chunk: conversions deduplicated by key (the first wins), each
    (conversion, destination) delivery once."""
    unique: dict[str, Conversion] = {}
    for conversion in conversions_in:
        unique.setdefault(conversion.key, conversion)
    occurred_at = to_db(dialect, conversions.c.occurred_at)
    recorded_at = to_db(dialect, conversions.c.recorded_at)(now)
    rows = [
        conversion_values(c, occurred_at=occurred_at, recorded_at=recorded_at, run_id=run_id)
        for c in unique.values()
    ]
    at = to_db(dialect, deliveries.c.created_at)(now)
    plan: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
    for d in planned:
        if d.conversion_key in unique:
            plan.setdefault(
                (d.conversion_key, d.destination),
                (
                    d.conversion_key,
                    (d.goal, d.destination, str(d.state), 0, d.code, d.message, at, at),
                ),
            )
    return PreparedChunk(list(unique), rows, list(plan.values()), list(adjustments))


def write_chunk(
    connection: Connection,
    prepared: PreparedChunk,
    *,
    run_id: str,
    rejections: Sequence[RecordRejection],
    source: str,
    cursor: Mapping[str, Any] | None,
    files_done: Sequence[FileMark],
    now: datetime,
) -> RecordCounts:
    """Write a prepared chunk; deliveries only for the conversions that were new."""
    new_ids = _insert_new(connection, prepared)
    skipped_state = str(DeliveryState.SKIPPED)
    rows = [(new_ids[key], *row) for key, row in prepared.delivery_rows if key in new_ids]
    skipped = sum(1 for row in rows if row[3] == skipped_state)
    _INSERT_DELIVERIES.execute(connection, rows)
    adjustments = record_adjustments(connection, prepared.adjustments, run_id=run_id, now=now)

    rejection_count = _upsert_rejections(connection, rejections, run_id=run_id, now=now)
    if cursor is not None:
        _save_cursor(connection, source, cursor, run_id=run_id, now=now)
    _save_files(connection, source, files_done, run_id=run_id, now=now)
    return RecordCounts(
        new_conversions=len(new_ids),
        new_keys=frozenset(new_ids),
        pending=len(rows) - skipped,
        skipped=skipped,
        rejections=rejection_count,
        adjustments=adjustments,
    )


def _insert_new(connection: Connection, prepared: PreparedChunk) -> dict[str, int]:
    """Insert the conversions the ledger does not hold yet; the new ones' ids by key.

    Each row goes in with an id reserved for this transaction alone, under ON CONFLICT
    (key) DO NOTHING; afterwards the reserved ids that exist are exactly the rows this
    transaction wrote, so the new conversions are known without RETURNING and the rows
    can go through the driver's executemany.
    """
    if not prepared.keys:
        return {}
    ids = _reserve_ids(connection, len(prepared.keys))
    _INSERT_CONVERSIONS.execute(
        connection,
        [(i, *row) for i, row in zip(ids, prepared.conversion_rows, strict=True)],
    )
    inserted: set[int] = set()
    if connection.dialect.name == "postgresql":
        for batch in batches(connection, ids):
            query = sa.select(conversions.c.id).where(
                one_of(connection, conversions.c.id, batch, ID)
            )
            inserted.update(connection.execute(query).scalars())
    else:
        query = sa.select(conversions.c.id).where(conversions.c.id >= ids[0])
        inserted.update(connection.execute(query).scalars())
    return {
        key: conversion_id
        for conversion_id, key in zip(ids, prepared.keys, strict=True)
        if conversion_id in inserted
    }


def _reserve_ids(connection: Connection, count: int) -> list[int]:
    """``count`` conversion ids no other transaction will use."""
    if connection.dialect.name == "postgresql":
        # from the column's own sequence (one round trip), as a default would take them
        query = sa.select(
            sa.func.nextval(sa.func.pg_get_serial_sequence("conversions", "id"))
        ).select_from(sa.func.generate_series(1, count))
        return list(connection.execute(query).scalars())
    # SQLite: this transaction holds the database's only write lock (BEGIN IMMEDIATE),
    # so every id above the largest one is free until it commits.
    largest = connection.execute(
        sa.select(sa.func.coalesce(sa.func.max(conversions.c.id), 0))
    ).scalar_one()
    return list(range(largest + 1, largest + 1 + count))


def _upsert_rejections(
    connection: Connection, rejections: Sequence[RecordRejection], *, run_id: str, now: datetime
) -> int:
    # PostgreSQL refuses one INSERT .. ON CONFLICT DO UPDATE that touches a row twice,
    # and executemany may be sent as one multi-row INSERT: dedupe first (last one wins).
    unique = {(r.source, r.origin, r.code): r for r in rejections}
    if not unique:
        return 0
    insert = upsert_insert(connection, record_rejections)
    excluded = insert.excluded
    insert = insert.on_conflict_do_update(
        index_elements=[
            record_rejections.c.source,
            record_rejections.c.origin,
            record_rejections.c.code,
        ],
        set_={
            "column": excluded["column"],
            "reason": excluded.reason,
            "record_id": excluded.record_id,
            "goal": excluded.goal,
            "run_id": excluded.run_id,
            "last_seen_at": excluded.last_seen_at,
        },
    )
    connection.execute(
        insert,
        [
            {
                "source": r.source,
                "origin": r.origin,
                "column": r.column,
                "code": r.code,
                "reason": r.reason,
                "record_id": r.record_id,
                "goal": r.goal,
                "run_id": run_id,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for r in unique.values()
        ],
    )
    return len(unique)


def _save_cursor(
    connection: Connection,
    source: str,
    cursor: Mapping[str, Any],
    *,
    run_id: str,
    now: datetime,
) -> None:
    insert = upsert_insert(connection, source_cursors).values(
        source=source, cursor=dict(cursor), updated_at=now, run_id=run_id
    )
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=[source_cursors.c.source],
            set_={
                "cursor": insert.excluded.cursor,
                "updated_at": insert.excluded.updated_at,
                "run_id": insert.excluded.run_id,
            },
        )
    )


def _save_files(
    connection: Connection,
    source: str,
    files: Sequence[FileMark],
    *,
    run_id: str,
    now: datetime,
) -> None:
    unique = {mark.path: mark for mark in files}
    if not unique:
        return
    insert = upsert_insert(connection, processed_files)
    insert = insert.on_conflict_do_update(
        index_elements=[processed_files.c.source, processed_files.c.path],
        set_={
            "size": insert.excluded.size,
            "mtime_ns": insert.excluded.mtime_ns,
            "processed_at": insert.excluded.processed_at,
            "run_id": insert.excluded.run_id,
        },
    )
    connection.execute(
        insert,
        [
            {
                "source": source,
                "path": mark.path,
                "size": mark.size,
                "mtime_ns": mark.mtime_ns,
                "processed_at": now,
                "run_id": run_id,
            }
            for mark in unique.values()
        ],
    )
