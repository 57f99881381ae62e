"""Uploads that a platform processes after answering, followed up until final, and the
tokens destinations keep between runs. Functions run inside the Ledger's transactions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.model import NOT_STORED, UNCLEAR, DeliveryState, Transition, UploadRecord
from convsync.store.claims import apply
from convsync.store.rows import ID, batches, one_of, upsert_insert
from convsync.store.schema import deliveries, tokens, uploads

_VERDICTS = frozenset({DeliveryState.MATCHED, DeliveryState.UNMATCHED})


#: records that stand in for an upload not known to exist: a later record of the same
#: batch replaces them (the upload found, or sent again)
_PLACEHOLDERS = (UNCLEAR, NOT_STORED)


def record_uploads(
    connection: Connection, records: Sequence[UploadRecord], *, run_id: str, now: datetime
) -> None:
    """New uploads (one per destination and batch; a batch sent again keeps the first).

    A record of an upload of unclear fate (``UNCLEAR``), or of one a look-up did not find
    (``NOT_STORED``), is only a stand-in: the next record of its batch replaces it (its
    ``created_at`` and ``run_id`` stay those of the first).
    """
    if not records:
        return
    insert = upsert_insert(connection, uploads)
    replaced = ("external_id", "status", "rows", "details", "message", "final", "next_check_at")
    insert = insert.on_conflict_do_update(
        index_elements=[uploads.c.destination, uploads.c.batch_id],
        set_={
            **{name: insert.excluded[name] for name in replaced},
            "delivery_ids": insert.excluded.delivery_ids,
            "updated_at": insert.excluded.updated_at,
        },
        # (no IN list: an expanding parameter cannot go with executemany)
        where=sa.or_(*(uploads.c.status == status for status in _PLACEHOLDERS)),
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
    """Uploads of ``destination`` not final yet whose next check is due, oldest first
    (not those of unclear fate: their rows' recovery looks them up)."""
    query = (
        sa.select(uploads)
        .where(
            uploads.c.destination == destination,
            uploads.c.final.is_(False),
            sa.or_(uploads.c.next_check_at.is_(None), uploads.c.next_check_at <= now),
            uploads.c.status != UNCLEAR,
        )
        .order_by(uploads.c.id)
        .limit(limit)
    )
    return [_record(row) for row in connection.execute(query).mappings()]


def unclear_uploads(connection: Connection, *, destination: str) -> list[UploadRecord]:
    """The uploads of ``destination`` whose fate is unclear (status ``UNCLEAR``)."""
    query = (
        sa.select(uploads)
        .where(
            uploads.c.destination == destination,
            uploads.c.final.is_(False),
            uploads.c.status == UNCLEAR,
        )
        .order_by(uploads.c.id)
    )
    return [_record(row) for row in connection.execute(query).mappings()]


def close_unclear_without_rows(
    connection: Connection, *, destination: str, now: datetime
) -> list[str]:
    """Make final the ``UNCLEAR`` records whose rows no longer wait in ``sending``:
    something other than a look-up settled them (recovered rows are checked before they
    are looked up, and one that may no longer go — older than the platform takes, its
    goal no longer sent there — is settled without the look-up). Such a record would
    stay "checking" for ever; closed, ``convsync failures`` shows it for a person to look
    the upload up. Returns their batch ids."""
    closed: list[str] = []
    for record in unclear_uploads(connection, destination=destination):
        batch = str(record.details.get("batch") or record.batch_id)
        waiting = connection.execute(
            sa.select(deliveries.c.id)
            .where(
                deliveries.c.batch_id == batch,
                deliveries.c.destination == destination,
                deliveries.c.state == DeliveryState.SENDING.value,
            )
            .limit(1)
        ).first()
        if waiting is not None:
            continue
        comment = record.details.get("comment") or batch
        message = (
            f"The platform may have stored this upload (comment {comment}); its rows were "
            "settled before a look-up could tell (see their own state): look the upload up "
            "by its comment on the platform to know whether they arrived."
        )
        connection.execute(
            uploads.update()
            .where(uploads.c.id == _id_of(connection, record), uploads.c.status == UNCLEAR)
            .values(final=True, next_check_at=None, message=message, updated_at=now)
        )
        closed.append(record.batch_id)
    return closed


def _id_of(connection: Connection, record: UploadRecord) -> int:
    query = sa.select(uploads.c.id).where(
        uploads.c.destination == record.destination, uploads.c.batch_id == record.batch_id
    )
    return int(connection.execute(query).scalar_one())


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
