"""The reconcile step: uploads a platform processes after answering are written with
their rows' outcomes, asked about in later runs when due (never waited for), and their
verdict moves the batch's rows to matched or unmatched — through a scripted platform,
on both databases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from convsync.config.loader import load_config
from convsync.core.errors import TransientError
from convsync.core.model import Conversion, DeliveryState, OutboundRow, RowOutcome, UploadRecord
from convsync.destinations.base import Destination
from convsync.destinations.yandex_metrica.config import MetricaConfig, MetricaTarget
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from convsync.sync.summary import RunSummary

CONFIG = """\
sources:
  shop: {type: csv, path: "orders/*.csv", id: order_id, time: created_at,
         fields: {status: status, metrica_client_id: ym_uid}}
destinations:
  metrica: {type: yandex_metrica, counter_id: 123, token: "${TOKEN}"}
goals:
  purchase:
    source: shop
    when: {status: paid}
    send: {metrica: {target: buy}}
"""
Verdict = Callable[[UploadRecord, datetime], UploadRecord | None]


class Processing(Destination[MetricaConfig, MetricaTarget]):
    """Answers every batch at once with an upload id; tells its fate when asked."""

    type = "yandex_metrica"
    max_batch = 100
    reconciles = True

    def __init__(self, name: str, config: MetricaConfig, verdict: Verdict) -> None:
        super().__init__(name, config)
        self.verdict = verdict
        self.asked: list[str] = []
        self._uploads: list[UploadRecord] = []
        self.now = datetime(2026, 11, 21, tzinfo=UTC)

    def has_identifier(self, conversion: Conversion, target: MetricaTarget) -> bool:
        return True

    def build(self, conversion: Conversion, target: MetricaTarget, now: datetime) -> dict[str, Any]:
        return {"order": conversion.order_id}

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        batch = rows[0].batch_id
        assert batch is not None and all(r.batch_id == batch for r in rows)
        self._uploads.append(
            UploadRecord(
                self.name, batch, f"up-{len(self._uploads)}", "UPLOADED", len(rows),
                next_check_at=self.now + timedelta(minutes=5),
            )
        )  # fmt: skip
        return [RowOutcome.delivered() for _ in rows]

    def take_uploads(self) -> list[UploadRecord]:
        taken, self._uploads = self._uploads, []
        return taken

    def reconcile(self, uploads: Sequence[UploadRecord], now: datetime) -> list[UploadRecord]:
        self.asked += [u.external_id for u in uploads]
        return [r for u in uploads if (r := self.verdict(u, now)) is not None]


def run(
    shop: Path, ledger: Ledger, verdict: Verdict, now: datetime
) -> tuple[Processing, RunSummary]:
    loaded = load_config(shop / "convsync.yaml", env={"TOKEN": "t-secret"})
    dest = Processing("metrica", loaded.app.destinations["metrica"], verdict)  # type: ignore[arg-type]
    dest.now = now
    pipeline = SyncPipeline(loaded, ledger, destinations={"metrica": dest}, clock=lambda: now)
    return dest, pipeline.run(SyncOptions())


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    rows = "".join(f"A-{i},2026-11-20 10:00:00,paid,{i}00\n" for i in range(3))
    (tmp_path / "orders" / "a.csv").write_text("order_id,created_at,status,ym_uid\n" + rows)
    return tmp_path


T0 = datetime(2026, 11, 21, 12, tzinfo=UTC)


def test_an_upload_is_checked_when_due_and_its_verdict_lands_on_its_rows(
    shop: Path, ledger: Ledger
) -> None:
    def still_then_processed(upload: UploadRecord, now: datetime) -> UploadRecord:
        if now < T0 + timedelta(hours=1):
            return UploadRecord(
                upload.destination, upload.batch_id, upload.external_id, "UPLOADED",
                upload.rows, next_check_at=now + timedelta(minutes=30),
            )  # fmt: skip
        return UploadRecord(
            upload.destination, upload.batch_id, upload.external_id, "PROCESSED", upload.rows,
            {"linked_quantity": 3}, final=True, verdict=DeliveryState.MATCHED,
        )  # fmt: skip

    dest, summary = run(shop, ledger, still_then_processed, T0)
    assert dest.asked == []  # just sent: not due yet, and the run does not wait for it
    assert summary.destinations["metrica"]["delivered"] == 3

    dest, summary = run(shop, ledger, still_then_processed, T0 + timedelta(minutes=10))
    assert dest.asked == ["up-0"]
    assert summary.destinations["metrica"]["uploads"] == {"UPLOADED": 1}

    dest, _ = run(shop, ledger, still_then_processed, T0 + timedelta(minutes=20))
    assert dest.asked == []  # next check in 30 minutes

    dest, summary = run(shop, ledger, still_then_processed, T0 + timedelta(hours=2))
    assert dest.asked == ["up-0"]
    assert summary.destinations["metrica"]["uploads"] == {"PROCESSED": 1}
    [row] = ledger.funnel(T0 - timedelta(days=3))
    assert (row.accepted, row.matched) == (3, 3)

    dest, _ = run(shop, ledger, still_then_processed, T0 + timedelta(days=3))
    assert dest.asked == []  # final: never asked again


def test_a_linkage_failure_shows_in_failures_with_its_explanation(
    shop: Path, ledger: Ledger
) -> None:
    def failed(upload: UploadRecord, now: datetime) -> UploadRecord:
        return UploadRecord(
            upload.destination, upload.batch_id, upload.external_id, "LINKAGE_FAILURE",
            upload.rows, {"linked_quantity": 0}, "no row matched a visitor of counter 123",
            final=True, verdict=DeliveryState.UNMATCHED, verdict_code="linkage_failure",
        )  # fmt: skip

    run(shop, ledger, failed, T0)
    run(shop, ledger, failed, T0 + timedelta(hours=1))
    failures = ledger.failures(T0 - timedelta(days=3))
    assert {(f.order_id, f.state, f.code) for f in failures} == {
        (f"A-{i}", DeliveryState.UNMATCHED, "linkage_failure") for i in range(3)
    }
    assert all(f.message == "no row matched a visitor of counter 123" for f in failures)


def test_a_platform_that_cannot_answer_now_is_asked_again_next_run(
    shop: Path, ledger: Ledger
) -> None:
    calls = {"n": 0}

    def flaky(upload: UploadRecord, now: datetime) -> UploadRecord:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("HTTP 503", code="backend_error")
        return UploadRecord(
            upload.destination, upload.batch_id, upload.external_id, "PROCESSED", upload.rows,
            final=True, verdict=DeliveryState.MATCHED,
        )  # fmt: skip

    run(shop, ledger, flaky, T0)
    _, summary = run(shop, ledger, flaky, T0 + timedelta(hours=1))
    assert summary.status == "ok" and "uploads" not in summary.destinations["metrica"]
    _, summary = run(shop, ledger, flaky, T0 + timedelta(hours=1, minutes=1))
    assert summary.destinations["metrica"]["uploads"] == {"PROCESSED": 1}


def test_report_lists_the_uploads_with_what_the_platform_reported(
    shop: Path, ledger: Ledger
) -> None:
    from rich.console import Console

    from convsync.cli import views

    def processed(upload: UploadRecord, now: datetime) -> UploadRecord:
        return UploadRecord(
            upload.destination, upload.batch_id, upload.external_id, "PROCESSED", upload.rows,
            {"linked_quantity": 2, "goal_not_found_quantity": 1},
            "goal identifier not found on counter 123: create a JavaScript-event goal 'buy'",
            final=True,
        )  # fmt: skip

    run(shop, ledger, processed, T0)
    run(shop, ledger, processed, T0 + timedelta(hours=1))
    console = Console(record=True, width=250)
    views.print_uploads(console, ledger.recent_uploads(T0 - timedelta(days=1)))
    text = console.export_text()
    assert "up-0" in text and "PROCESSED" in text
    assert "linked 2, goal_not_found 1" in text
    assert "create a JavaScript-event goal 'buy'" in text
