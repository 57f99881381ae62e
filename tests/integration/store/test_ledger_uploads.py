"""Uploads a platform processes later (written with their rows' outcomes, followed up
when due, a verdict moving the batch's delivered rows) and tokens kept between runs."""

from __future__ import annotations

from datetime import timedelta

from convsync.model import DeliveryState, Transition, UploadRecord
from convsync.store import Ledger

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
    assert (row.delivered, row.unmatched) == (2, 2)
    [recent] = ledger.recent_uploads(NOW - timedelta(days=1))
    assert (recent.status, recent.final, recent.details) == (
        "LINKAGE_FAILURE", True, {"linked_quantity": 0},
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
    assert (row.delivered, row.matched) == (1, 1)
    assert ledger.failures(NOW - timedelta(days=1)) == []


def test_tokens_are_kept_and_replaced(ledger: Ledger) -> None:
    assert ledger.load_token("vk_ads:vk:1") is None
    ledger.save_token("vk_ads:vk:1", {"access_token": "a", "expires_at": 10}, NOW)
    ledger.save_token("vk_ads:vk:1", {"access_token": "b", "expires_at": 20}, NOW)
    assert ledger.load_token("vk_ads:vk:1") == {"access_token": "b", "expires_at": 20}
