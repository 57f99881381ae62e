"""Reports: the funnel per goal × destination and the failures list."""

from __future__ import annotations

from datetime import timedelta

from convsync.core.model import DeliveryState, PlannedDelivery, RecordRejection, Transition
from convsync.store import Ledger

from .factory import NOW, conversion

S = DeliveryState
WEEK_AGO = NOW - timedelta(days=7)


def _scenario(ledger: Ledger) -> dict[str, int]:
    """purchase × google: 8 conversions in every state; purchase × vk: skipped;
    lead × metrica: 2 pending; one old purchase (sending) outside the window."""
    purchases = [conversion(f"p{i}") for i in range(8)]
    leads = [conversion(f"l{i}", goal="lead") for i in range(2)]
    old = conversion("old")
    ledger.record_chunk(
        run_id="old",
        source="shop",
        conversions=[old],
        deliveries=[PlannedDelivery(old.key, "purchase", "google")],
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW - timedelta(days=30),
    )
    planned = [PlannedDelivery(c.key, "purchase", "google") for c in purchases]
    planned += [
        PlannedDelivery(c.key, "purchase", "vk", S.SKIPPED, "no_identifier", "no vk id")
        for c in purchases[:5]
    ]
    planned += [
        PlannedDelivery(c.key, "purchase", "vk", S.SKIPPED, None, None) for c in purchases[5:6]
    ]
    planned += [PlannedDelivery(c.key, "lead", "metrica") for c in leads]
    ledger.record_chunk(
        run_id="r1",
        source="shop",
        conversions=purchases + leads,
        deliveries=planned,
        rejections=[
            RecordRejection("shop", "orders.csv:3", "created_at", "bad_time", "not a date", "3"),
        ],
        cursor=None,
        files_done=[],
        now=NOW,
    )
    claimed = ledger.claim(
        destination="google",
        limit=8,
        lease=timedelta(minutes=5),
        batch_id="b",
        run_id="r1",
        now=NOW,
    )
    ids = {c.conversion.record_id: c.delivery_id for c in claimed}
    later = NOW + timedelta(minutes=1)
    ledger.apply(
        [
            Transition(ids["p0"], S.DELIVERED),
            Transition(ids["p1"], S.DELIVERED),
            Transition(ids["p1"], S.MATCHED),
            Transition(ids["p2"], S.DELIVERED),
            Transition(ids["p2"], S.UNMATCHED),
            Transition(ids["p3"], S.REJECTED, "INVALID_GCLID", "gclid is not valid"),
            Transition(ids["p4"], S.REJECTED, "INVALID_GCLID", "gclid is not valid"),
            Transition(
                ids["p5"], S.DEFERRED, "TOO_RECENT_EVENT", "click < 6 h", NOW + timedelta(hours=6)
            ),
        ],
        run_id="r1",
        now=later,
    )
    ledger.apply(
        [Transition(ids["p6"], S.UNCERTAIN, "no_receipt", "unknown")],
        run_id="r1",
        now=later + timedelta(minutes=1),
    )
    return ids  # p6 uncertain, p7 pending


def test_funnel_counts_every_state(ledger: Ledger) -> None:
    _scenario(ledger)
    rows = {(r.goal, r.destination): r for r in ledger.funnel(WEEK_AGO)}
    assert set(rows) == {("lead", "metrica"), ("purchase", "google"), ("purchase", "vk")}
    google = rows[("purchase", "google")]
    assert (
        google.conversions,
        google.planned,
        google.accepted,
        google.matched,
        google.unmatched,
    ) == (
        8,
        8,
        3,
        1,
        1,
    )
    assert (google.pending, google.sending, google.deferred, google.uncertain) == (1, 0, 1, 1)
    assert google.rejected_by_code == {"INVALID_GCLID": 2}
    assert google.rejected == 2
    assert google.skipped_by_code == {}
    vk = rows[("purchase", "vk")]
    assert (vk.conversions, vk.planned, vk.accepted) == (8, 0, 0)
    assert vk.skipped_by_code == {"no_identifier": 5, "unknown": 1}
    assert vk.skipped == 6
    lead = rows[("lead", "metrica")]
    assert (lead.conversions, lead.planned, lead.pending) == (2, 2, 2)
    # the window: the old conversion appears only with a wider one
    assert rows[("purchase", "google")].conversions == 8
    wide = {(r.goal, r.destination): r for r in ledger.funnel(NOW - timedelta(days=60))}
    old = wide[("purchase", "google")]  # claimed along with the others, still sending
    assert (old.conversions, old.pending, old.sending) == (9, 1, 1)
    assert ledger.funnel(NOW + timedelta(days=1)) == []


def test_failures_lists_deliveries_and_records_newest_first(ledger: Ledger) -> None:
    ids = _scenario(ledger)
    failures = ledger.failures(WEEK_AGO)
    assert [(f.kind, f.state, f.code) for f in failures] == [
        ("delivery", S.UNCERTAIN, "no_receipt"),
        ("delivery", S.DEFERRED, "TOO_RECENT_EVENT"),
        ("delivery", S.REJECTED, "INVALID_GCLID"),
        ("delivery", S.REJECTED, "INVALID_GCLID"),
        ("delivery", S.UNMATCHED, None),  # the platform found no visitor for it
        ("record", None, "bad_time"),
    ]
    deferred = failures[1]
    p5 = conversion("p5")
    assert (deferred.conversion_key, deferred.order_id, deferred.goal, deferred.destination) == (
        p5.key,
        "order-p5",
        "purchase",
        "google",
    )
    assert deferred.retry_at == NOW + timedelta(hours=6)
    assert deferred.at == NOW + timedelta(minutes=1)
    assert failures[2].conversion_key == conversion("p4").key  # newer id first at one moment
    assert ids["p4"] > ids["p3"]
    record = failures[-1]
    assert (record.source, record.origin, record.column, record.message, record.at) == (
        "shop",
        "orders.csv:3",
        "created_at",
        "not a date",
        NOW,
    )
    assert len(ledger.failures(WEEK_AGO, limit=2)) == 2
    assert [f.kind for f in ledger.failures(NOW + timedelta(seconds=90))] == ["delivery"]
