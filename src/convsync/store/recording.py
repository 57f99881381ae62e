"""The record step's queries: the hot path of a sync run.

Everything here runs on a connection already inside one (write) transaction opened by
the Ledger. Rows go in with ``executemany`` (one statement, many parameter sets), never
one round trip per row, and nothing asks for RETURNING: which conversions are new is
decided by one key lookup per 500 keys before the insert.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.model import Conversion, DeliveryState, PlannedDelivery, RecordRejection
from convsync.sources.base import FileMark, SourceState
from convsync.store.bulk import BulkInsert
from convsync.store.rows import chunked, conversion_row, upsert_insert
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

    def __add__(self, other: RecordCounts) -> RecordCounts:
        return RecordCounts(
            self.new_conversions + other.new_conversions,
            self.pending + other.pending,
            self.skipped + other.skipped,
            self.rejections + other.rejections,
        )


# DO NOTHING still matters after the key lookup: a replica on PostgreSQL may insert the
# same conversion between our lookup and our insert.
_INSERT_CONVERSIONS = BulkInsert(
    lambda connection: upsert_insert(connection, conversions).on_conflict_do_nothing(
        index_elements=[conversions.c.key]
    ),
    conversions,
)
_INSERT_DELIVERIES = BulkInsert(
    lambda connection: upsert_insert(connection, deliveries).on_conflict_do_nothing(
        index_elements=[deliveries.c.conversion_key, deliveries.c.destination]
    ),
    deliveries,
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
    for batch in chunked(keys):
        query = sa.select(conversions.c.key).where(conversions.c.key.in_(batch))
        found.update(connection.execute(query).scalars())
    return found


def record_chunk(
    connection: Connection,
    *,
    run_id: str,
    conversions_in: Sequence[Conversion],
    planned: Sequence[PlannedDelivery],
    rejections: Sequence[RecordRejection],
    source: str,
    cursor: Mapping[str, Any] | None,
    files_done: Sequence[FileMark],
    now: datetime,
) -> RecordCounts:
    unique: dict[str, Conversion] = {}
    for conversion in conversions_in:
        unique.setdefault(conversion.key, conversion)
    already = existing_keys(connection, unique.keys())
    new = [conversion for key, conversion in unique.items() if key not in already]
    _INSERT_CONVERSIONS.execute(
        connection, [conversion_row(c, run_id=run_id, now=now) for c in new]
    )

    new_keys = {conversion.key for conversion in new}
    plan: dict[tuple[str, str], PlannedDelivery] = {}
    for delivery in planned:
        if delivery.conversion_key in new_keys:
            plan.setdefault((delivery.conversion_key, delivery.destination), delivery)
    skipped = sum(1 for d in plan.values() if d.state is DeliveryState.SKIPPED)
    _INSERT_DELIVERIES.execute(
        connection,
        [
            {
                "conversion_key": d.conversion_key,
                "goal": d.goal,
                "destination": d.destination,
                "state": d.state.value,
                "attempts": 0,
                "code": d.code,
                "message": d.message,
                "created_at": now,
                "updated_at": now,
            }
            for d in plan.values()
        ],
    )

    rejection_count = _upsert_rejections(connection, rejections, run_id=run_id, now=now)
    if cursor is not None:
        _save_cursor(connection, source, cursor, run_id=run_id, now=now)
    _save_files(connection, source, files_done, run_id=run_id, now=now)
    return RecordCounts(
        new_conversions=len(new),
        pending=len(plan) - skipped,
        skipped=skipped,
        rejections=rejection_count,
    )


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
