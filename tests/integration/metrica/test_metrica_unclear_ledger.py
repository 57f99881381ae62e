"""The ledger's side of uploads of unclear fate, on both databases: rows kept in
``sending`` with their lease moved to the next look-up are never claimed and are taken
back only then, under their batch; the upload's ``UNCLEAR`` record is a stand-in the
found upload replaces, which the reconcile step never asks about; ``failures`` lists the
waiting rows with the reason and the next look-up."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from convsync.core.model import (
    NOT_STORED,
    UNCLEAR,
    UNCLEAR_CODE,
    Conversion,
    DeliveryState,
    Identifiers,
    PlannedDelivery,
    Transition,
    UploadRecord,
)
from convsync.store.ledger import Ledger

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
LOOK_AGAIN = NOW + timedelta(minutes=30)


def record(ledger: Ledger, n: int) -> None:
    conversions = [
        Conversion(
            key=f"k-{i}",
            source="shop",
            record_id=str(i),
            goal="purchase",
            order_id=f"A-{i}",
            occurred_at=NOW - timedelta(days=1),
            value=None,
            currency=None,
            ids=Identifiers(metrica_client_id=str(1000 + i)),
        )
        for i in range(n)
    ]
    planned = [PlannedDelivery(c.key, "purchase", "metrica") for c in conversions]
    ledger.record_chunk(
        run_id="r0",
        source="shop",
        conversions=conversions,
        deliveries=planned,
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW,
    )


def claim(ledger: Ledger, batch: str, now: datetime = NOW) -> list[int]:
    rows = ledger.claim(
        destination="metrica", limit=10, lease=LEASE, batch_id=batch, run_id="r1", now=now
    )
    return [r.delivery_id for r in rows]


def unclear_upload(batch: str, **changes: object) -> UploadRecord:
    base = UploadRecord(
        "metrica",
        batch,
        "",
        UNCLEAR,
        2,
        {"comment": batch, "batch": batch, "lookups": 1},
        message="Metrica may have stored it",
        next_check_at=LOOK_AGAIN,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def wait(ids: list[int]) -> list[Transition]:
    return [
        Transition(
            i,
            DeliveryState.SENDING,
            UNCLEAR_CODE,
            "Metrica may have stored it",
            retry_at=LOOK_AGAIN,
            lease_until=LOOK_AGAIN,
        )
        for i in ids
    ]


def test_a_row_waiting_for_a_lookup_is_never_claimed_and_is_taken_back_then(
    ledger: Ledger,
) -> None:
    record(ledger, 3)
    ids = claim(ledger, "batch1")
    ledger.apply(wait(ids[:2]), run_id="r1", now=NOW, uploads=[unclear_upload("batch1")])
    ledger.apply(
        [Transition(ids[2], DeliveryState.DEFERRED, "x", "y", retry_at=NOW)], run_id="r1", now=NOW
    )
    later = NOW + timedelta(minutes=20)  # the claim's own lease (10 min) would be over
    # a claim — this replica's or another's — takes only the deferred row, in a new batch
    assert claim(ledger, "batch2", later) == [ids[2]]
    ledger.apply([Transition(ids[2], DeliveryState.DELIVERED)], run_id="r1", now=later)
    assert claim(ledger, "batch3", LOOK_AGAIN + timedelta(hours=1)) == []
    kwargs = {"destination": "metrica", "limit": 10, "lease": LEASE, "run_id": "r2"}
    assert ledger.reclaim_expired(now=later, **kwargs) == []  # type: ignore[arg-type]
    back = ledger.reclaim_expired(now=LOOK_AGAIN + timedelta(seconds=1), **kwargs)  # type: ignore[arg-type]
    assert [(r.delivery_id, r.batch_id) for r in back] == [(i, "batch1") for i in ids[:2]]
    failures = ledger.failures(NOW - timedelta(days=1))
    assert {(f.state, f.code, f.retry_at) for f in failures} == {
        (DeliveryState.SENDING, UNCLEAR_CODE, LOOK_AGAIN)
    }


def test_the_unclear_record_is_a_stand_in_that_the_found_upload_replaces(
    ledger: Ledger,
) -> None:
    ledger.apply([], run_id="r1", now=NOW, uploads=[unclear_upload("b1"), unclear_upload("b2")])
    assert ledger.due_uploads(destination="metrica", now=LOOK_AGAIN) == []  # never reconciled
    assert [u.batch_id for u in ledger.unclear_uploads(destination="metrica")] == ["b1", "b2"]
    # a later look-up failed: the record is updated
    later = unclear_upload("b1", details={"comment": "b1", "lookups": 2})
    ledger.apply([], run_id="r2", now=NOW, uploads=[later])
    found = UploadRecord(
        "metrica", "b1", "1234", "UPLOADED", 2, {"comment": "b1"}, next_check_at=NOW
    )
    ruled_out = unclear_upload("b2", status=NOT_STORED, final=True, next_check_at=None)
    ledger.apply([], run_id="r3", now=NOW, uploads=[found, ruled_out])
    assert ledger.unclear_uploads(destination="metrica") == []
    [due] = ledger.due_uploads(destination="metrica", now=NOW)
    assert (due.batch_id, due.external_id, due.status) == ("b1", "1234", "UPLOADED")
    # the upload's record is never replaced by a stand-in, nor by a second upload
    ledger.apply([], run_id="r4", now=NOW, uploads=[unclear_upload("b1")])
    resent = dataclasses.replace(found, batch_id="b2", external_id="5678")
    ledger.apply([], run_id="r4", now=NOW, uploads=[resent])
    ledger.apply([], run_id="r5", now=NOW, uploads=[dataclasses.replace(resent, external_id="9")])
    by_batch = {u.batch_id: u for u in ledger.recent_uploads(NOW - timedelta(days=1))}
    assert (by_batch["b1"].external_id, by_batch["b1"].status) == ("1234", "UPLOADED")
    assert (by_batch["b2"].external_id, by_batch["b2"].final) == ("5678", False)
