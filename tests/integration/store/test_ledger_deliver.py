"""The deliver step: claim, reclaim after a crash, apply outcomes, and the event log."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from convsync.core.model import ClaimedDelivery, Conversion, DeliveryState, Transition
from convsync.store import Ledger
from convsync.store.schema import deliveries, delivery_events

from .factory import NOW, conversion, plan

LEASE = timedelta(minutes=10)
S = DeliveryState


def _seed(ledger: Ledger, n: int, destinations: tuple[str, ...] = ("google",)) -> list[Conversion]:
    written = [conversion(f"{i:05d}") for i in range(n)]
    ledger.record_chunk(
        run_id="r0",
        source="shop",
        conversions=written,
        deliveries=plan(written, destinations),
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW,
    )
    return written


def _claim(
    ledger: Ledger,
    limit: int = 100,
    *,
    batch: str = "b1",
    now: datetime = NOW,
    destination: str = "google",
) -> list[ClaimedDelivery]:
    return ledger.claim(
        destination=destination, limit=limit, lease=LEASE, batch_id=batch, run_id="r1", now=now
    )


def _row(db: Engine, delivery_id: int) -> sa.Row[tuple[object, ...]]:
    with db.connect() as connection:
        return connection.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).one()


def _events(db: Engine, delivery_id: int) -> list[tuple[str | None, str, str | None]]:
    with db.connect() as connection:
        rows = connection.execute(
            sa.select(
                delivery_events.c.from_state, delivery_events.c.to_state, delivery_events.c.code
            )
            .where(delivery_events.c.delivery_id == delivery_id)
            .order_by(delivery_events.c.id)
        )
        return [(r.from_state, r.to_state, r.code) for r in rows]


def test_claim_takes_pending_in_id_order_up_to_the_limit(ledger: Ledger, db: Engine) -> None:
    written = _seed(ledger, 7, ("google", "vk"))
    first = _claim(ledger, 3)
    assert [c.conversion.key for c in first] == [c.key for c in written[:3]]
    assert [c.delivery_id for c in first] == sorted(c.delivery_id for c in first)
    assert all(c.state is S.SENDING and c.batch_id == "b1" and c.attempts == 0 for c in first)
    assert all(c.destination == "google" and c.goal == "purchase" for c in first)
    row = _row(db, first[0].delivery_id)
    assert (row.state, row.batch_id, row.lease_until) == ("sending", "b1", NOW + LEASE)
    assert _events(db, first[0].delivery_id) == [("pending", "sending", None)]

    rest = _claim(ledger, 100, batch="b2")
    assert [c.conversion.key for c in rest] == [c.key for c in written[3:]]
    assert _claim(ledger, 100, batch="b3") == []
    # the other destination's rows were untouched
    assert len(_claim(ledger, 100, destination="vk")) == 7
    assert _claim(ledger, 0) == []


def test_claim_takes_deferred_rows_only_when_due(ledger: Ledger) -> None:
    _seed(ledger, 4)
    a, b, c, d = _claim(ledger)
    ledger.apply(
        [
            Transition(
                a.delivery_id,
                S.DEFERRED,
                "TOO_RECENT_EVENT",
                "click < 6h",
                NOW + timedelta(hours=6),
            ),
            Transition(b.delivery_id, S.DEFERRED, "quota", "429", NOW + timedelta(minutes=1)),
            Transition(c.delivery_id, S.DELIVERED, count_attempt=True),
            Transition(d.delivery_id, S.REJECTED, "INVALID_GCLID", "bad gclid", count_attempt=True),
        ],
        run_id="r1",
        now=NOW,
    )
    assert _claim(ledger, now=NOW) == []
    soon = _claim(ledger, batch="b2", now=NOW + timedelta(minutes=1))
    assert [x.delivery_id for x in soon] == [b.delivery_id]
    later = _claim(ledger, batch="b3", now=NOW + timedelta(hours=7))
    assert [x.delivery_id for x in later] == [a.delivery_id]


def test_claim_merges_pending_and_due_deferred_by_id(ledger: Ledger) -> None:
    _seed(ledger, 3)
    ids = [d.delivery_id for d in ledger.due_deliveries(destination="google", now=NOW)]
    first, _second = _claim(ledger, 2)
    ledger.apply(
        [Transition(first.delivery_id, S.DEFERRED, "quota", "429", NOW)], run_id="r1", now=NOW
    )
    got = _claim(ledger, 2, batch="b2")
    assert [x.delivery_id for x in got] == [ids[0], ids[2]]


def test_apply_writes_state_attempts_and_events(ledger: Ledger, db: Engine) -> None:
    _seed(ledger, 1)
    [claimed] = _claim(ledger)
    retry_at = NOW + timedelta(hours=1)
    ledger.apply(
        [
            Transition(
                claimed.delivery_id, S.DEFERRED, "transient", "503", retry_at, count_attempt=True
            )
        ],
        run_id="r1",
        now=NOW,
    )
    row = _row(db, claimed.delivery_id)
    assert (row.state, row.code, row.message, row.retry_at, row.attempts, row.lease_until) == (
        "deferred",
        "transient",
        "503",
        retry_at,
        1,
        None,
    )
    [again] = _claim(ledger, batch="b2", now=retry_at)
    assert again.attempts == 1
    later = retry_at + timedelta(seconds=5)
    ledger.apply(
        [
            Transition(again.delivery_id, S.DELIVERED, count_attempt=True),
            Transition(again.delivery_id, S.MATCHED, "matched", "found"),
        ],
        run_id="r2",
        now=later,
    )
    row = _row(db, claimed.delivery_id)
    assert (row.state, row.attempts, row.retry_at, row.updated_at, row.batch_id) == (
        "matched",
        2,
        None,
        later,
        "b2",
    )
    assert _events(db, claimed.delivery_id) == [
        ("pending", "sending", None),
        ("sending", "deferred", "transient"),
        ("deferred", "sending", None),
        ("sending", "delivered", None),
        ("delivered", "matched", "matched"),
    ]
    assert ledger.delivery_states([claimed.conversion.key]) == {
        (claimed.conversion.key, "google"): S.MATCHED
    }


def test_apply_of_an_unknown_delivery_writes_nothing(ledger: Ledger, db: Engine) -> None:
    _seed(ledger, 1)
    [claimed] = _claim(ledger)
    with pytest.raises(KeyError, match="no such deliveries"):
        ledger.apply(
            [Transition(claimed.delivery_id, S.DELIVERED), Transition(10_000_000, S.DELIVERED)],
            run_id="r1",
            now=NOW,
        )
    assert _row(db, claimed.delivery_id).state == "sending"


def test_reclaim_takes_over_expired_leases_keeping_the_old_batch_id(
    ledger: Ledger, db: Engine
) -> None:
    _seed(ledger, 3)
    old = _claim(ledger, 2, batch="crashed")
    fresh = _claim(ledger, 1, batch="alive", now=NOW + timedelta(minutes=8))

    def reclaim(now: datetime) -> list[ClaimedDelivery]:
        return ledger.reclaim_expired(
            destination="google", limit=10, lease=LEASE, run_id="r2", now=now
        )

    assert reclaim(NOW + LEASE) == []
    later = NOW + LEASE + timedelta(seconds=1)
    taken = reclaim(later)
    assert [t.delivery_id for t in taken] == [o.delivery_id for o in old]
    assert all(t.batch_id == "crashed" and t.state is S.SENDING for t in taken)
    # the row keeps the batch it was sent in: the platform's upload is known by it
    row = _row(db, old[0].delivery_id)
    assert (row.state, row.batch_id, row.lease_until) == ("sending", "crashed", later + LEASE)
    assert _events(db, old[0].delivery_id)[-1] == ("sending", "sending", None)
    assert _row(db, fresh[0].delivery_id).batch_id == "alive"
    assert reclaim(later) == []


def test_due_deliveries_streams_what_claim_would_take_and_changes_nothing(
    ledger: Ledger, db: Engine
) -> None:
    written = _seed(ledger, 2_345)
    [first] = _claim(ledger, 1)
    ledger.apply(
        [Transition(first.delivery_id, S.DEFERRED, "later", "x", NOW + timedelta(days=1))],
        run_id="r1",
        now=NOW,
    )
    due = list(ledger.due_deliveries(destination="google", now=NOW))
    assert ledger.count_due(destination="google", now=NOW) == len(due) == 2_344
    assert ledger.count_due(destination="google", now=NOW + timedelta(days=2)) == 2_345
    assert ledger.count_due(destination="vk", now=NOW) == 0
    assert [d.conversion.key for d in due] == [c.key for c in written[1:]]
    assert due[0].conversion == written[1]
    assert all(d.state is S.PENDING for d in due)
    with_deferred = list(ledger.due_deliveries(destination="google", now=NOW + timedelta(days=2)))
    assert len(with_deferred) == 2_345
    assert with_deferred[0].state is S.DEFERRED
    with db.connect() as connection:
        states: dict[str, int] = dict(
            connection.execute(
                sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
            ).all()
        )
    assert states == {"pending": 2_344, "deferred": 1}
    claimed = _claim(ledger, 10_000, batch="b2", now=NOW + timedelta(days=2))
    assert [c.delivery_id for c in claimed] == [d.delivery_id for d in with_deferred]


def test_delivery_states_per_key_and_destination(ledger: Ledger) -> None:
    written = _seed(ledger, 600, ("google", "metrica"))
    states = ledger.delivery_states([c.key for c in written] + ["unknown"])
    assert len(states) == 1_200
    assert set(states.values()) == {S.PENDING}
