"""Read-only questions the CLI asks: what failed. (The funnel is in ``funnel.py``.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.model import DeliveryState
from convsync.store.schema import (
    FAILED_ROWS,
    conversions,
    deliveries,
    record_rejections,
    uploads,
)


@dataclass(frozen=True, slots=True)
class FailureRow:
    """A delivery that is rejected, deferred, uncertain or unmatched (or waits in ``sending``
    for a look-up of its upload, code ``upload_unclear``), a source row that could
    not become a conversion (``kind="record"``: source, origin, column, reason), or an upload
    the platform processed with problems (``kind="upload"``: its id, rows, explanation)."""

    kind: Literal["delivery", "record", "upload"]
    at: datetime  # the delivery's updated_at, or when the record problem was last seen
    code: str | None
    message: str | None  # the platform's message, or the record rejection's reason
    goal: str | None = None
    # deliveries
    destination: str | None = None
    state: DeliveryState | None = None
    adjustment: str | None = None  # retraction | restatement, for an adjustment's delivery
    conversion_key: str | None = None
    order_id: str | None = None
    attempts: int | None = None
    retry_at: datetime | None = None
    # record rejections
    source: str | None = None
    origin: str | None = None
    column: str | None = None
    record_id: str | None = None
    # uploads
    upload: str | None = None
    rows: int | None = None


def failures(connection: Connection, since: datetime, limit: int) -> list[FailureRow]:
    """Newest first, at most ``limit`` rows of both kinds together."""
    delivery_query = (
        sa.select(
            deliveries.c.updated_at,
            deliveries.c.code,
            deliveries.c.message,
            deliveries.c.goal,
            deliveries.c.destination,
            deliveries.c.state,
            conversions.c.key,
            deliveries.c.attempts,
            deliveries.c.retry_at,
            conversions.c.order_id,
            conversions.c.source,
            conversions.c.record_id,
            conversions.c.adjustment,
        )
        .join_from(deliveries, conversions, deliveries.c.conversion_id == conversions.c.id)
        .where(sa.text(f"({FAILED_ROWS})"), deliveries.c.updated_at >= since)
        .order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc())
        .limit(limit)
    )
    out = [
        FailureRow(
            kind="delivery",
            at=row.updated_at,
            code=row.code,
            message=row.message,
            goal=row.goal,
            destination=row.destination,
            state=DeliveryState(row.state),
            adjustment=row.adjustment,
            conversion_key=row.key,
            order_id=row.order_id,
            attempts=row.attempts,
            retry_at=row.retry_at,
            source=row.source,
            record_id=row.record_id,
        )
        for row in connection.execute(delivery_query)
    ]
    record_query = (
        sa.select(record_rejections)
        .where(record_rejections.c.last_seen_at >= since)
        .order_by(record_rejections.c.last_seen_at.desc(), record_rejections.c.id.desc())
        .limit(limit)
    )
    out.extend(
        FailureRow(
            kind="record",
            at=row.last_seen_at,
            code=row.code,
            message=row.reason,
            goal=row.goal,
            source=row.source,
            origin=row.origin,
            column=row.column,
            record_id=row.record_id,
        )
        for row in connection.execute(record_query)
    )
    upload_query = (
        sa.select(uploads)
        .where(
            uploads.c.final.is_(True),
            uploads.c.message.is_not(None),
            uploads.c.updated_at >= since,
        )
        .order_by(uploads.c.updated_at.desc(), uploads.c.id.desc())
        .limit(limit)
    )
    out.extend(
        FailureRow(
            kind="upload",
            at=row.updated_at,
            code=row.status,
            message=row.message,
            destination=row.destination,
            upload=row.external_id,
            rows=row.rows,
        )
        for row in connection.execute(upload_query)
        if not (row.details or {}).get("verdict")  # its rows are listed themselves
    )
    # stable sort: within one moment, deliveries first, each kind newest id first
    out.sort(key=lambda failure: failure.at, reverse=True)
    return out[:limit]


def rejection_count(connection: Connection, run_id: str) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(record_rejections)
        .where(record_rejections.c.run_id == run_id)
    )
    return int(connection.execute(query).scalar_one())
