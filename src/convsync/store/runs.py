"""Runs (one row per sync run) and leases (who may run now, across processes and hosts)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.store.rows import upsert_insert
from convsync.store.schema import leases, runs

RUN_STATUSES = frozenset({"running", "ok", "failed", "interrupted"})
RUN_TRIGGERS = frozenset({"once", "schedule"})


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    trigger: str
    host: str
    pid: int
    summary: Mapping[str, Any] | None


def start_run(connection: Connection, *, run_id: str, trigger: str, started_at: datetime) -> None:
    if trigger not in RUN_TRIGGERS:
        raise ValueError(f"unknown run trigger {trigger!r}")
    connection.execute(
        runs.insert().values(
            run_id=run_id,
            started_at=started_at,
            status="running",
            trigger=trigger,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
    )


def finish_run(
    connection: Connection,
    *,
    run_id: str,
    status: str,
    finished_at: datetime,
    summary: Mapping[str, Any],
) -> None:
    if status not in RUN_STATUSES - {"running"}:
        raise ValueError(f"a run cannot finish with status {status!r}")
    result = connection.execute(
        runs.update()
        .where(runs.c.run_id == run_id)
        .values(status=status, finished_at=finished_at, summary=dict(summary))
    )
    if result.rowcount != 1:
        raise KeyError(f"no run {run_id!r} in the ledger")


def recent_runs(connection: Connection, limit: int) -> list[RunRow]:
    query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    return [
        RunRow(
            run_id=row.run_id,
            started_at=row.started_at,
            finished_at=row.finished_at,
            status=row.status,
            trigger=row.trigger,
            host=row.host,
            pid=row.pid,
            summary=row.summary,
        )
        for row in connection.execute(query)
    ]


def pulled_since(connection: Connection, since: datetime) -> dict[str, int]:
    """Records pulled per source, from ``summary["sources"][name]["pulled"]`` of the runs
    started since ``since`` (runs are few: summing in Python keeps SQL JSON-free)."""
    totals: dict[str, int] = {}
    query = sa.select(runs.c.summary).where(runs.c.started_at >= since)
    for summary in connection.execute(query).scalars():
        sources = summary.get("sources") if isinstance(summary, Mapping) else None
        if not isinstance(sources, Mapping):
            continue
        for name, stats in sources.items():
            pulled = stats.get("pulled") if isinstance(stats, Mapping) else None
            if isinstance(pulled, int) and not isinstance(pulled, bool):
                totals[name] = totals.get(name, 0) + pulled
    return totals


def acquire_lease(
    connection: Connection, name: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Take the lease if nobody holds it, it expired, or ``holder`` has it already.

    One INSERT .. ON CONFLICT DO UPDATE .. WHERE: atomic on both databases (PostgreSQL
    locks the conflicting row and re-checks the WHERE after a concurrent commit).
    """
    insert = upsert_insert(connection, leases).values(
        name=name, holder=holder, acquired_at=now, expires_at=now + ttl
    )
    excluded = insert.excluded
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={
                "holder": excluded.holder,
                # a holder renewing through acquire keeps its original acquisition time
                "acquired_at": sa.case(
                    (leases.c.holder == excluded.holder, leases.c.acquired_at),
                    else_=excluded.acquired_at,
                ),
                "expires_at": excluded.expires_at,
            },
            where=sa.or_(leases.c.holder == excluded.holder, leases.c.expires_at <= now),
        )
    )
    # rowcount of an upsert differs between drivers; the row itself is the answer
    current = connection.execute(
        sa.select(leases.c.holder).where(leases.c.name == name)
    ).scalar_one()
    return bool(current == holder)


def renew_lease(
    connection: Connection, name: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Extend a lease ``holder`` still has; False if it lost it.

    Someone who took the lease over left their name in the row, and a release deletes
    the row, so "the row names me" means nobody else held it since: a lease that
    expired unnoticed by others is safely renewed.
    """
    result = connection.execute(
        leases.update()
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(expires_at=now + ttl)
    )
    return result.rowcount == 1


def lease_holder_of(connection: Connection, name: str) -> str | None:
    return connection.execute(
        sa.select(leases.c.holder).where(leases.c.name == name)
    ).scalar_one_or_none()


def take_over_lease(
    connection: Connection, name: str, stale: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Take the lease from ``stale`` (a holder known to be dead), if it still holds it."""
    result = connection.execute(
        leases.update()
        .where(leases.c.name == name, leases.c.holder == stale)
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
    )
    return result.rowcount == 1


def release_lease(connection: Connection, name: str, holder: str) -> None:
    connection.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))
