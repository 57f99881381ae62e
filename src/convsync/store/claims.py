"""The deliver step's queries: claim due rows, take over expired leases, apply outcomes.

Exactly-once starts here: a row moves to ``sending`` under a lock, so two processes can
never claim it both.

* PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` — a replica skips rows another one
  is claiming right now instead of waiting for them; a row it does lock is re-checked
  against the WHERE clause after the other's commit (READ COMMITTED re-evaluation), so
  a row already moved to ``sending`` is not taken again.
* SQLite: the Ledger runs these inside ``BEGIN IMMEDIATE``: one writer at a time.

Functions run on a connection already inside the right transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.model import ClaimedDelivery, DeliveryState, Transition
from convsync.store.bulk import BulkInsert, to_db
from convsync.store.rows import ID, KEY, batches, fetch_claimed, one_of
from convsync.store.schema import conversions, deliveries, delivery_events

_PENDING = DeliveryState.PENDING.value
_DEFERRED = DeliveryState.DEFERRED.value
_SENDING = DeliveryState.SENDING.value


_INSERT_EVENTS = BulkInsert(
    lambda _connection: delivery_events.insert(),
    ("delivery_id", "run_id", "at", "from_state", "to_state", "code", "message", "batch_id"),
)

#: (id, state, batch_id) of a delivery about to be claimed
_Row = tuple[int, str, str | None]


def due_rows(
    connection: Connection,
    *,
    destination: str,
    limit: int,
    now: datetime,
    after_id: int = 0,
    lock: bool = False,
) -> list[_Row]:
    """(id, state, batch_id) of the first ``limit`` due deliveries, by id.

    Two queries rather than one with OR, so each reads ``ix_deliveries_claim`` in id
    order and stops after ``limit`` rows, however many rows are pending.
    A deferred row without ``retry_at`` counts as due: it must not be stuck forever.
    """
    columns = (deliveries.c.id, deliveries.c.state, deliveries.c.batch_id)
    pending = sa.select(*columns).where(
        deliveries.c.destination == destination,
        deliveries.c.state == _PENDING,
        deliveries.c.id > after_id,
    )
    deferred = sa.select(*columns).where(
        deliveries.c.destination == destination,
        deliveries.c.state == _DEFERRED,
        deliveries.c.id > after_id,
        sa.or_(deliveries.c.retry_at.is_(None), deliveries.c.retry_at <= now),
    )
    rows: list[_Row] = []
    for query in (pending, deferred):
        query = query.order_by(deliveries.c.id).limit(limit)
        if lock:
            query = _locked(connection, query)
        rows.extend((row.id, row.state, row.batch_id) for row in connection.execute(query))
    rows.sort()
    return rows[:limit]


def count_due(connection: Connection, *, destination: str, now: datetime) -> int:
    """How many deliveries ``due_rows`` would list, all pages together.

    Two counts, not one with OR: the pending ones are counted from the claim index alone,
    and only the (few) deferred ones need their row for ``retry_at``. One OR made SQLite
    read every row of the destination (0.8 s for 800,000 of them, read cold)."""
    pending = sa.select(sa.func.count()).where(
        deliveries.c.destination == destination, deliveries.c.state == _PENDING
    )
    deferred = sa.select(sa.func.count()).where(
        deliveries.c.destination == destination,
        deliveries.c.state == _DEFERRED,
        sa.or_(deliveries.c.retry_at.is_(None), deliveries.c.retry_at <= now),
    )
    return int(connection.execute(pending).scalar_one()) + int(
        connection.execute(deferred).scalar_one()
    )


def oldest_due(connection: Connection, *, destination: str, now: datetime) -> datetime | None:
    """When the longest-waiting due delivery was recorded (None when none is due)."""
    rows = due_rows(connection, destination=destination, limit=1, now=now)
    if not rows:
        return None
    query = sa.select(deliveries.c.created_at).where(deliveries.c.id == rows[0][0])
    created: datetime | None = connection.execute(query).scalar_one_or_none()
    return created


def claim(
    connection: Connection,
    *,
    destination: str,
    limit: int,
    lease: timedelta,
    batch_id: str,
    run_id: str,
    now: datetime,
) -> list[ClaimedDelivery]:
    if limit <= 0:
        return []
    rows = due_rows(connection, destination=destination, limit=limit, now=now, lock=True)
    return _take(connection, rows, lease=lease, batch_id=batch_id, run_id=run_id, now=now)


def reclaim_expired(
    connection: Connection,
    *,
    destination: str,
    limit: int,
    lease: timedelta,
    run_id: str,
    now: datetime,
) -> list[ClaimedDelivery]:
    """Take over ``sending`` rows whose lease ran out; they keep their batch id, which
    the destination needs to find out whether that batch arrived."""
    if limit <= 0:
        return []
    query = (
        sa.select(deliveries.c.id, deliveries.c.state, deliveries.c.batch_id)
        .where(
            deliveries.c.destination == destination,
            deliveries.c.state == _SENDING,
            deliveries.c.lease_until < now,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    rows = [
        (row.id, row.state, row.batch_id) for row in connection.execute(_locked(connection, query))
    ]
    # the rows keep the batch they were sent in: a platform that knows the upload by it
    # (Metrica's comment) is asked about that batch, and its verdict finds these rows
    return _take(connection, rows, lease=lease, batch_id=None, run_id=run_id, now=now)


def _locked(connection: Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    if connection.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query  # SQLite: the whole database is locked by BEGIN IMMEDIATE


def _take(
    connection: Connection,
    rows: Sequence[_Row],
    *,
    lease: timedelta,
    batch_id: str | None,
    run_id: str,
    now: datetime,
) -> list[ClaimedDelivery]:
    """Move ``rows`` to sending under ``batch_id`` (``None``: each keeps its own)."""
    if not rows:
        return []
    ids = [delivery_id for delivery_id, _, _ in rows]
    values: dict[str, Any] = {"state": _SENDING, "lease_until": now + lease, "updated_at": now}
    if batch_id is not None:
        values["batch_id"] = batch_id
    for batch in batches(connection, ids):
        connection.execute(
            deliveries.update().where(one_of(connection, deliveries.c.id, batch, ID)).values(values)
        )
    at = to_db(connection, delivery_events.c.at)(now)
    _INSERT_EVENTS.execute(
        connection,
        [
            (delivery_id, run_id, at, from_state, _SENDING, None, None, batch_id or old)
            for delivery_id, from_state, old in rows
        ],
    )
    return fetch_claimed(connection, ids)


def apply(
    connection: Connection, transitions: Sequence[Transition], *, run_id: str, now: datetime
) -> None:
    """Write each transition and its event row; later transitions of one id see earlier ones."""
    if not transitions:
        return
    current = _current(connection, {t.delivery_id for t in transitions})
    missing = {t.delivery_id for t in transitions} - current.keys()
    if missing:
        raise KeyError(f"no such deliveries in the ledger: {sorted(missing)[:10]}")
    keep_lease: list[dict[str, Any]] = []
    clear_lease: list[dict[str, Any]] = []
    move_lease: list[dict[str, Any]] = []
    events: list[tuple[Any, ...]] = []
    at = to_db(connection, delivery_events.c.at)(now)
    for t in transitions:
        from_state, batch_id = current[t.delivery_id]
        params = {
            "b_id": t.delivery_id,
            "b_state": t.state.value,
            "b_code": t.code,
            "b_message": t.message,
            "b_retry_at": t.retry_at,
            "b_attempt": 1 if t.count_attempt else 0,
            "b_keep": 0 if t.reset_attempts else 1,
        }
        # only a row that is still being sent keeps its lease (or has it moved: an upload
        # of unclear fate holds its rows until the next look-up); any other state clears it
        if t.state is not DeliveryState.SENDING:
            clear_lease.append(params)
        elif t.lease_until is not None:
            move_lease.append({**params, "b_lease": t.lease_until})
        else:
            keep_lease.append(params)
        events.append(
            (t.delivery_id, run_id, at, from_state, t.state.value, t.code, t.message, batch_id)
        )
        current[t.delivery_id] = (t.state.value, batch_id)
    if keep_lease:
        connection.execute(_update(now, lease="keep"), keep_lease)
    if clear_lease:
        connection.execute(_update(now, lease="clear"), clear_lease)
    if move_lease:
        connection.execute(_update(now, lease="move"), move_lease)
    _INSERT_EVENTS.execute(connection, events)


def _update(now: datetime, *, lease: Literal["keep", "clear", "move"]) -> sa.Update:
    values: dict[str, Any] = {
        "state": sa.bindparam("b_state"),
        "code": sa.bindparam("b_code"),
        "message": sa.bindparam("b_message"),
        "retry_at": sa.bindparam("b_retry_at", type_=deliveries.c.retry_at.type),
        "attempts": deliveries.c.attempts * sa.bindparam("b_keep", type_=sa.Integer())
        + sa.bindparam("b_attempt", type_=sa.Integer()),
        "updated_at": now,
    }
    if lease == "clear":
        values["lease_until"] = None
    elif lease == "move":
        values["lease_until"] = sa.bindparam("b_lease", type_=deliveries.c.lease_until.type)
    return deliveries.update().where(deliveries.c.id == sa.bindparam("b_id")).values(values)


def _current(connection: Connection, ids: Collection[int]) -> dict[int, tuple[str, str | None]]:
    out: dict[int, tuple[str, str | None]] = {}
    for batch in batches(connection, ids):
        query = sa.select(deliveries.c.id, deliveries.c.state, deliveries.c.batch_id).where(
            one_of(connection, deliveries.c.id, batch, ID)
        )
        out.update((row.id, (row.state, row.batch_id)) for row in connection.execute(query))
    return out


def delivery_states(
    connection: Connection, keys: Collection[str]
) -> dict[tuple[str, str], DeliveryState]:
    out: dict[tuple[str, str], DeliveryState] = {}
    for batch in batches(connection, keys):
        query = (
            sa.select(conversions.c.key, deliveries.c.destination, deliveries.c.state)
            .join_from(deliveries, conversions, deliveries.c.conversion_id == conversions.c.id)
            .where(one_of(connection, conversions.c.key, batch, KEY))
        )
        for row in connection.execute(query):
            out[(row.key, row.destination)] = DeliveryState(row.state)
    return out


#: states in which a delivery may still be sent: its conversion still needs its signals
UNSETTLED = (_PENDING, _SENDING, _DEFERRED)


def drop_settled_signals(connection: Connection) -> int:
    """Clear ``sealed`` of every conversion none of whose deliveries may still be sent;
    returns how many. One statement: the partial index ``ix_conversions_sealed`` holds
    only the conversions that still have sealed values, and each is checked on the
    deliveries' (conversion_id, destination) index."""
    unsettled = (
        sa.select(deliveries.c.id)
        .where(deliveries.c.conversion_id == conversions.c.id, deliveries.c.state.in_(UNSETTLED))
        .exists()
    )
    result = connection.execute(
        conversions.update()
        .where(conversions.c.sealed.is_not(None), ~unsettled)
        .values(sealed=None)
    )
    return result.rowcount


#: states an operator may send again with ``convsync retry``
REQUEUABLE = frozenset({DeliveryState.REJECTED, DeliveryState.DEFERRED, DeliveryState.UNCERTAIN})


def requeue_ids(
    connection: Connection,
    *,
    states: Collection[DeliveryState],
    since: datetime,
    destination: str | None = None,
    goal: str | None = None,
    code: str | None = None,
    lock: bool = True,
) -> list[int]:
    """Deliveries in ``states`` last changed since ``since`` (and matching the filters)."""
    unknown = set(states) - REQUEUABLE
    if unknown:
        raise ValueError(f"cannot re-queue deliveries in state {sorted(map(str, unknown))}")
    query = sa.select(deliveries.c.id).where(
        deliveries.c.state.in_([str(s) for s in states]), deliveries.c.updated_at >= since
    )
    if destination is not None:
        query = query.where(deliveries.c.destination == destination)
    if goal is not None:
        query = query.where(deliveries.c.goal == goal)
    if code is not None:
        query = query.where(deliveries.c.code == code)
    query = query.order_by(deliveries.c.id)
    return list(connection.execute(_locked(connection, query) if lock else query).scalars())
