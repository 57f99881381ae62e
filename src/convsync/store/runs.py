"""Runs (one row per sync run) and leases (who may run now, across processes and hosts).

Every run that writes to the ledger holds the run lease (``SYNC_LEASE``) from before
``start_run`` until after ``finish_run``. So a run left ``running`` by a process that was
killed is found two ways:

* **written** when its lease passes to another holder — taken over from a process known
  to be gone, or acquired after it expired: in the same transaction, the old holder's
  ``running`` runs become ``interrupted``, ``finished_at`` = when it was last seen (the
  lease's last renewal), and ``summary = {"lost": {...}}`` says why;
* **computed** when runs are listed (``recent_runs``), for a kill nobody has taken over
  yet (and for rows older than this rule): a ``running`` row is only running while the
  lease is held, unexpired, by a live process with its host and pid; otherwise it is
  listed as ``interrupted`` (the row is left as it is).

A process that lost its lease but was alive after all (frozen past the TTL) still
finishes its run: ``finish_run`` overwrites the status with the real one.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.model import STATUSES
from convsync.store.rows import upsert_insert
from convsync.store.schema import leases, runs

RUN_STATUSES = frozenset(STATUSES)
RUN_TRIGGERS = frozenset({"once", "schedule"})

#: the lease every sync run holds (``convsync run`` and ``sync --once``)
SYNC_LEASE = "sync"
#: how long the run lease lasts unrenewed; its holder renews it every third of this
LEASE_TTL = timedelta(minutes=5)

#: why a run did not finish itself (``RunRow.lost``)
LOST_TAKEN_OVER = "lease_taken_over"  # another process took its lease over (written)
LOST_PROCESS_GONE = "process_gone"  # its process no longer runs on this host
LOST_LEASE_EXPIRED = "lease_expired"  # its lease was not renewed for LEASE_TTL
LOST_LEASE_NOT_HELD = "lease_not_held"  # its process holds the run lease no more


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
    #: an ``interrupted`` run that never finished itself: why (``LOST_*``) …
    lost: str | None = None
    #: … and when it was last seen alive (its lease's last renewal), if known
    last_seen: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> RunRow:
        """A row of the ``runs`` table as it is written (nothing judged of it yet)."""
        return cls(
            run_id=row.run_id,
            started_at=row.started_at,
            finished_at=row.finished_at,
            status=row.status,
            trigger=row.trigger,
            host=row.host,
            pid=row.pid,
            summary=row.summary,
        )


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


def recent_runs(connection: Connection, limit: int, now: datetime | None = None) -> list[RunRow]:
    """The newest ``limit`` runs, a ``running`` run whose process is known to have
    stopped without finishing it listed as ``interrupted`` (see the module's doc)."""
    now = now if now is not None else datetime.now(UTC)
    lease = (
        sa.select(leases.c.holder, leases.c.expires_at)
        .where(leases.c.name == SYNC_LEASE)
        .subquery("lease")
    )
    # one statement, one snapshot: the runs and the lease as of the same moment
    query = (
        sa.select(
            runs, lease.c.holder.label("lease_holder"), lease.c.expires_at.label("lease_expires")
        )
        .select_from(runs.outerjoin(lease, sa.true()))
        .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        .limit(limit)
    )
    out: list[RunRow] = []
    claimed = False  # the lease's holder runs one run at a time: the newest of its rows
    for row in connection.execute(query):
        made = RunRow.of(row)
        if row.status == "interrupted":
            lost = _written_loss(row.summary)
            if lost is not None:
                made = dataclasses.replace(made, lost=lost, last_seen=row.finished_at)
        elif row.status == "running":
            holder = parse_holder(row.lease_holder) if row.lease_holder is not None else None
            lost, last_seen = LOST_LEASE_NOT_HELD, None
            if holder == (row.host, row.pid) and not claimed:
                claimed = True
                last_seen = last_renewal(row.lease_expires, LEASE_TTL, None, now)
                if row.lease_expires <= now:
                    lost = LOST_LEASE_EXPIRED
                elif process_gone(row.host, row.pid):
                    lost = LOST_PROCESS_GONE
                else:
                    lost = None
            if lost is not None:
                made = dataclasses.replace(
                    made, status="interrupted", lost=lost, last_seen=last_seen
                )
        out.append(made)
    return out


def _written_loss(summary: Any) -> str | None:
    lost = summary.get("lost") if isinstance(summary, Mapping) else None
    reason = lost.get("reason") if isinstance(lost, Mapping) else None
    return reason if isinstance(reason, str) else None


def pulled_since(
    connection: Connection, since: datetime, until: datetime | None = None
) -> dict[str, int]:
    """Records pulled per source, from ``summary["sources"][name]["pulled"]`` of the runs
    started since ``since`` (and before ``until``; runs are few: summing in Python keeps
    SQL JSON-free)."""
    totals: dict[str, int] = {}
    query = sa.select(runs.c.summary).where(runs.c.started_at >= since)
    if until is not None:
        query = query.where(runs.c.started_at < until)
    for summary in connection.execute(query).scalars():
        sources = summary.get("sources") if isinstance(summary, Mapping) else None
        if not isinstance(sources, Mapping):
            continue
        for name, stats in sources.items():
            pulled = stats.get("pulled") if isinstance(stats, Mapping) else None
            if isinstance(pulled, int) and not isinstance(pulled, bool):
                totals[name] = totals.get(name, 0) + pulled
    return totals


# --- leases -----------------------------------------------------------------------------


def parse_holder(holder: str) -> tuple[str, int] | None:
    """``(host, pid)`` of a ``host:pid:nonce`` lease holder; None for another form."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def process_gone(host: str, pid: int) -> bool:
    """Whether ``pid`` of ``host`` is known not to run: only this host's processes can
    be checked (another host's, or one of another user, count as alive)."""
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def last_renewal(
    expires_at: datetime, ttl: timedelta, acquired_at: datetime | None, now: datetime
) -> datetime:
    """When a lease's holder last renewed it (every renewal sets ``expires_at = now +
    ttl``; every holder uses the same ``ttl``), never before its acquisition nor after
    ``now``."""
    seen = expires_at - ttl
    if acquired_at is not None:
        seen = max(seen, acquired_at)
    return min(seen, now)


def acquire_lease(
    connection: Connection, name: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Take the lease if nobody holds it, it expired, or ``holder`` has it already.

    One INSERT .. ON CONFLICT DO UPDATE .. WHERE: atomic on both databases (PostgreSQL
    locks the conflicting row and re-checks the WHERE after a concurrent commit). An
    expired lease taken from another holder interrupts that holder's runs (the same
    transaction).
    """
    # the row as it was (locked on PostgreSQL until commit; SQLite's write transaction
    # is exclusive already), to know whose runs an expired lease leaves behind
    before = connection.execute(
        sa.select(leases.c.holder, leases.c.acquired_at, leases.c.expires_at)
        .where(leases.c.name == name)
        .with_for_update()
    ).one_or_none()
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
    if current != holder:
        return False
    if name == SYNC_LEASE and before is not None and before.holder != holder:
        seen = last_renewal(before.expires_at, ttl, before.acquired_at, now)
        interrupt_runs_of(connection, before.holder, LOST_LEASE_EXPIRED, seen, holder, now)
    return True


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
    """Take the lease from ``stale`` (a holder known to be dead), if it still holds it;
    its ``running`` runs become ``interrupted`` in the same transaction."""
    before = connection.execute(
        sa.select(leases.c.acquired_at, leases.c.expires_at)
        .where(leases.c.name == name, leases.c.holder == stale)
        .with_for_update()
    ).one_or_none()
    if before is None:
        return False
    result = connection.execute(
        leases.update()
        .where(leases.c.name == name, leases.c.holder == stale)
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
    )
    if result.rowcount != 1:
        return False
    if name == SYNC_LEASE:
        seen = last_renewal(before.expires_at, ttl, before.acquired_at, now)
        interrupt_runs_of(connection, stale, LOST_TAKEN_OVER, seen, holder, now)
    return True


def interrupt_runs_of(
    connection: Connection,
    stale: str,
    reason: str,
    last_seen: datetime,
    taken_by: str,
    now: datetime,
) -> int:
    """Mark the ``running`` runs of lease holder ``stale`` (its host and pid)
    ``interrupted``, last seen at ``last_seen``; how many. Runs are only started under
    the lease, so the holder that lost it has no run going any more."""
    holder = parse_holder(stale)
    if holder is None:
        return 0
    host, pid = holder
    lost = {
        "reason": reason,
        "holder": stale,
        "last_seen": last_seen.isoformat(),
        "taken_by": taken_by,
        "at": now.isoformat(),
    }
    result = connection.execute(
        runs.update()
        .where(runs.c.status == "running", runs.c.host == host, runs.c.pid == pid)
        .values(status="interrupted", finished_at=last_seen, summary={"lost": lost})
    )
    return int(result.rowcount)


def release_lease(connection: Connection, name: str, holder: str) -> None:
    connection.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))
