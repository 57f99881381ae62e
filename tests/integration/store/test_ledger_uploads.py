"""Uploads a platform processes later (written with their rows' outcomes, followed up
when due, a verdict moving the batch's delivered rows) and tokens kept between runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from convsync.core.model import DeliveryState, Transition, UploadRecord
from convsync.store import Ledger
from convsync.store.schema import deliveries

from .factory import NOW, conversion, plan

LEASE = timedelta(minutes=10)


def _delivered_batch(ledger: Ledger, ids: list[str], batch: str) -> list[int]:
    conversions = [conversion(i) for i in ids]
    ledger.record_chunk(
        run_id="r",
        source="shop",
        conversions=conversions,
        deliveries=plan(conversions, ["metrica"]),
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW,
    )
    claimed = ledger.claim(
        destination="metrica", limit=100, lease=LEASE, batch_id=batch, run_id="r", now=NOW
    )
    upload = UploadRecord(
        "metrica", batch, f"up-{batch}", "UPLOADED", len(claimed), {"targets": ["buy"]},
        next_check_at=NOW + timedelta(minutes=5),
    )  # fmt: skip
    ledger.apply(
        [Transition(c.delivery_id, DeliveryState.DELIVERED) for c in claimed],
        run_id="r",
        now=NOW,
        uploads=[upload],
    )
    return [c.delivery_id for c in claimed]


def test_an_upload_is_due_at_its_check_time_and_its_verdict_moves_its_rows(
    ledger: Ledger,
) -> None:
    _delivered_batch(ledger, ["1", "2"], "b1")
    assert ledger.due_uploads(destination="metrica", now=NOW) == []
    [due] = ledger.due_uploads(destination="metrica", now=NOW + timedelta(minutes=5))
    assert (due.external_id, due.status, due.rows, due.details) == (
        "up-b1", "UPLOADED", 2, {"targets": ["buy"]},
    )  # fmt: skip
    assert ledger.due_uploads(destination="other", now=NOW + timedelta(days=1)) == []

    later = NOW + timedelta(hours=1)
    ledger.update_uploads(
        [
            UploadRecord(
                "metrica", "b1", "up-b1", "LINKAGE_FAILURE", 2, {"linked_quantity": 0},
                message="no row matched a visitor of counter 1", final=True,
                verdict=DeliveryState.UNMATCHED, verdict_code="linkage_failure",
            )
        ],
        run_id="r2",
        now=later,
    )  # fmt: skip
    assert ledger.due_uploads(destination="metrica", now=later + timedelta(days=9)) == []
    failures = ledger.failures(NOW - timedelta(days=1))
    assert [(f.state, f.code, f.message) for f in failures] == [
        (DeliveryState.UNMATCHED, "linkage_failure", "no row matched a visitor of counter 1")
    ] * 2
    [row] = ledger.funnel(NOW - timedelta(days=1))
    assert (row.accepted, row.unmatched) == (2, 2)
    [recent] = ledger.recent_uploads(NOW - timedelta(days=1))
    assert (recent.status, recent.final, recent.details) == (
        "LINKAGE_FAILURE", True, {"linked_quantity": 0, "verdict": "unmatched"},
    )  # fmt: skip


def test_a_matched_verdict_and_a_batch_recorded_twice(ledger: Ledger) -> None:
    _delivered_batch(ledger, ["1"], "b1")
    # a recovered batch reports the same upload again: the first record stays
    ledger.apply(
        [], run_id="r", now=NOW, uploads=[UploadRecord("metrica", "b1", "other", "UPLOADED", 9)]
    )
    [due] = ledger.due_uploads(destination="metrica", now=NOW + timedelta(hours=1))
    assert due.external_id == "up-b1"
    ledger.update_uploads(
        [UploadRecord("metrica", "b1", "up-b1", "PROCESSED", 1, final=True,
                      verdict=DeliveryState.MATCHED)],
        run_id="r", now=NOW,
    )  # fmt: skip
    [row] = ledger.funnel(NOW - timedelta(days=1))
    assert (row.accepted, row.matched) == (1, 1)
    assert ledger.failures(NOW - timedelta(days=1)) == []


def test_tokens_are_kept_and_replaced(ledger: Ledger) -> None:
    assert ledger.load_token("vk_ads:vk:1") is None
    ledger.save_token("vk_ads:vk:1", {"access_token": "a", "expires_at": 10}, NOW)
    ledger.save_token("vk_ads:vk:1", {"access_token": "b", "expires_at": 20}, NOW)
    assert ledger.load_token("vk_ads:vk:1") == {"access_token": "b", "expires_at": 20}


def _states(db: Engine, ids: list[int]) -> list[DeliveryState]:
    with db.connect() as connection:
        rows = connection.execute(
            sa.select(deliveries.c.id, deliveries.c.state).where(deliveries.c.id.in_(ids))
        )
        states = {row.id: DeliveryState(row.state) for row in rows}
    return [states[i] for i in ids]


def test_uploads_of_one_batch_that_name_their_rows_judge_only_those(
    ledger: Ledger, db: Engine
) -> None:
    conversions = [conversion(i) for i in ("1", "2", "3", "4")]
    ledger.record_chunk(
        run_id="r", source="shop", conversions=conversions,
        deliveries=plan(conversions, ["google"]), rejections=[], cursor=None, files_done=[],
        now=NOW,
    )  # fmt: skip
    claimed = ledger.claim(
        destination="google", limit=100, lease=LEASE, batch_id="b1", run_id="r", now=NOW
    )
    ids = [c.delivery_id for c in claimed]
    # one claimed batch, sent as two requests: an upload record each
    ledger.apply(
        [Transition(i, DeliveryState.DELIVERED) for i in ids],
        run_id="r",
        now=NOW,
        uploads=[
            UploadRecord("google", "b1/1", "op-1", "RUNNING", 2, delivery_ids=(ids[0], ids[1])),
            UploadRecord("google", "b1/2", "op-2", "RUNNING", 2, delivery_ids=(ids[2], ids[3])),
        ],
    )
    first, second = ledger.due_uploads(destination="google", now=NOW)
    assert (first.batch_id, first.delivery_ids) == ("b1/1", (ids[0], ids[1]))
    assert (second.batch_id, second.delivery_ids) == ("b1/2", (ids[2], ids[3]))

    ledger.update_uploads(
        [replace(first, status="FAILED", final=True, rows_batch="b1",
                 verdict=DeliveryState.UNMATCHED, verdict_code="no_match", message="none")],
        run_id="r2", now=NOW,
    )  # fmt: skip
    assert _states(db, ids) == [DeliveryState.UNMATCHED] * 2 + [DeliveryState.DELIVERED] * 2

    # a verdict record made afresh (no delivery_ids) still judges only the rows its
    # upload carried, as recorded
    ledger.update_uploads(
        [UploadRecord("google", "b1/2", "op-2", "DONE", 2, final=True, rows_batch="b1",
                      verdict=DeliveryState.MATCHED)],
        run_id="r2", now=NOW,
    )  # fmt: skip
    assert _states(db, ids) == [DeliveryState.UNMATCHED] * 2 + [DeliveryState.MATCHED] * 2
    recent = ledger.recent_uploads(NOW - timedelta(days=1))
    assert {(u.batch_id, u.delivery_ids) for u in recent} == {
        ("b1/1", (ids[0], ids[1])),
        ("b1/2", (ids[2], ids[3])),
    }


def test_an_upload_without_delivery_ids_keeps_none(ledger: Ledger) -> None:
    _delivered_batch(ledger, ["1"], "b1")
    [due] = ledger.due_uploads(destination="metrica", now=NOW + timedelta(hours=1))
    assert due.delivery_ids == ()
