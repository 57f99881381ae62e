"""Uploads that a platform processes after answering, followed up until final, and the
tokens destinations keep between runs. Functions run inside the Ledger's transactions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.model import DeliveryState, Transition, UploadRecord
from convsync.store.claims import apply
from convsync.store.rows import ID, batches, one_of, upsert_insert
from convsync.store.schema import deliveries, tokens, uploads

_VERDICTS = frozenset({DeliveryState.MATCHED, DeliveryState.UNMATCHED})


def record_uploads(
    connection: Connection, records: Sequence[UploadRecord], *, run_id: str, now: datetime
) -> None:
    """New uploads (one per destination and batch; a batch sent again keeps the first)."""
    if not records:
        return
    insert = upsert_insert(connection, uploads).on_conflict_do_nothing(
        index_elements=[uploads.c.destination, uploads.c.batch_id]
    )
    connection.execute(
        insert,
        [
            {
                "destination": r.destination,
                "batch_id": r.batch_id,
                "external_id": r.external_id,
                "status": r.status,
                "rows": r.rows,
                "details": dict(r.details),
                "message": r.message,
                "final": r.final,
                "next_check_at": r.next_check_at,
                "run_id": run_id,
                "created_at": now,
                "updated_at": now,
                "delivery_ids": _ids_json(r.delivery_ids),
            }
            for r in records
        ],
    )


def due_uploads(
    connection: Connection, *, destination: str, now: datetime, limit: int = 100
) -> list[UploadRecord]:
    """Uploads of ``destination`` not final yet whose next check is due, oldest first."""
    query = (
        sa.select(uploads)
        .where(
            uploads.c.destination == destination,
            uploads.c.final.is_(False),
            sa.or_(uploads.c.next_check_at.is_(None), uploads.c.next_check_at <= now),
        )
        .order_by(uploads.c.id)
        .limit(limit)
    )
    return [_record(row) for row in connection.execute(query).mappings()]


def recent_uploads(connection: Connection, since: datetime, limit: int) -> list[UploadRecord]:
    query = (
        sa.select(uploads)
        .where(uploads.c.updated_at >= since)
        .order_by(uploads.c.updated_at.desc(), uploads.c.id.desc())
        .limit(limit)
    )
    return [_record(row) for row in connection.execute(query).mappings()]


def update_uploads(
    connection: Connection, records: Sequence[UploadRecord], *, run_id: str, now: datetime
) -> None:
    """Write what the platform said of each upload; a verdict moves every delivered row
    of its batch to matched or unmatched (of those goals, and of those deliveries, when
    the record or the upload as recorded names them)."""
    for r in records:
        if r.verdict is not None and r.verdict not in _VERDICTS:
            raise ValueError(f"an upload's verdict is matched or unmatched, not {r.verdict}")
        recorded = connection.execute(
            uploads.update()
            .where(uploads.c.destination == r.destination, uploads.c.batch_id == r.batch_id)
            .values(
                status=r.status,
                # the verdict is noted, so that `failures` does not list an upload whose
                # rows it already lists (unmatched, with the same explanation)
                details={**r.details, **({"verdict": r.verdict.value} if r.verdict else {})},
                message=r.message,
                final=r.final,
                next_check_at=r.next_check_at,
                updated_at=now,
            )
            .returning(uploads.c.delivery_ids)
        ).scalar_one_or_none()
        if r.verdict is None:
            continue
        query = sa.select(deliveries.c.id).where(
            deliveries.c.destination == r.destination,
            deliveries.c.state == DeliveryState.DELIVERED.value,
        )
        if r.rows_goals:
            query = query.where(deliveries.c.goal.in_(r.rows_goals))
        # the rows the upload carried, when it names them (one claimed batch may be sent
        # as several uploads: Google's requests); a record built afresh still judges only
        # those; otherwise every delivered row of its batch
        named = r.delivery_ids or _ids(recorded)
        if not named:
            query = query.where(deliveries.c.batch_id == (r.rows_batch or r.batch_id))
        if named:
            ids = [
                delivery_id
                for batch in batches(connection, sorted(set(named)))
                for delivery_id in connection.execute(
                    query.where(one_of(connection, deliveries.c.id, batch, ID))
                ).scalars()
            ]
        else:
            ids = list(connection.execute(query).scalars())
        unmatched = r.verdict is DeliveryState.UNMATCHED
        apply(
            connection,
            [
                Transition(
                    delivery_id,
                    r.verdict,
                    r.verdict_code if unmatched else None,
                    r.message if unmatched else None,
                )
                for delivery_id in ids
            ],
            run_id=run_id,
            now=now,
        )


def _record(row: Mapping[Any, Any]) -> UploadRecord:
    return UploadRecord(
        destination=row["destination"],
        batch_id=row["batch_id"],
        external_id=row["external_id"],
        status=row["status"],
        rows=row["rows"],
        details=row["details"] or {},
        message=row["message"],
        final=bool(row["final"]),
        next_check_at=row["next_check_at"],
        delivery_ids=_ids(row["delivery_ids"]),
    )


def _ids_json(ids: Sequence[int]) -> str | None:
    return json.dumps(list(ids), separators=(",", ":")) if ids else None


def _ids(text: str | None) -> tuple[int, ...]:
    return () if text is None else tuple(int(i) for i in json.loads(text))


def load_token(connection: Connection, name: str) -> dict[str, Any] | None:
    data = connection.execute(
        sa.select(tokens.c.data).where(tokens.c.name == name)
    ).scalar_one_or_none()
    return None if data is None else dict(data)


def save_token(connection: Connection, name: str, data: Mapping[str, Any], now: datetime) -> None:
    insert = upsert_insert(connection, tokens).values(name=name, data=dict(data), updated_at=now)
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=[tokens.c.name],
            set_={"data": insert.excluded.data, "updated_at": insert.excluded.updated_at},
        )
    )
