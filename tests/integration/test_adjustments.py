"""Retractions and restatements end to end through the ledger (both databases): planned
from re-pulled records, sent after their conversion, deduplicated, superseded, shown in
the dry-run plan and the report; and ``--validate`` changing no delivery."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from convsync.config.loader import load_config
from convsync.core.errors import DestinationUnavailable
from convsync.core.identity import conversion_key
from convsync.core.model import Adjustment, Conversion, OutboundRow, RowOutcome
from convsync.destinations.base import Destination
from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock

from .conftest import HEADER

CONFIG = """\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, gclid: gclid}
destinations:
  google: {type: google_ads, api: google_ads_api, customer_id: 123-456-7890,
           auth: {application_default: true}}
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    retract_when: {status: [refunded, cancelled]}
    restate_on_value_change: true
    send:
      google: {conversion_action: 555}
delivery: {max_attempts: 3, retries_in_run: 0, retry_backoff: 10m}
"""

Answer = Callable[[Sequence[OutboundRow]], list[RowOutcome]]


def _ok(rows: Sequence[OutboundRow]) -> list[RowOutcome]:
    return [RowOutcome.delivered() for _ in rows]


class AdjustingDestination(Destination[GoogleAdsConfig, GoogleAdsTarget]):
    """Takes conversions and their adjustments; records each request's rows."""

    type = "google_ads"
    max_batch = 50
    supports_adjustments = True
    supports_validation = True

    def __init__(self, name: str, config: GoogleAdsConfig, answer: Answer = _ok) -> None:
        super().__init__(name, config)
        self.answer = answer
        self.requests: list[list[dict[str, Any]]] = []
        self.validated: list[list[dict[str, Any]]] = []

    def has_identifier(self, conversion: Conversion, target: GoogleAdsTarget) -> bool:
        return conversion.ids.gclid is not None

    def build(
        self, conversion: Conversion, target: GoogleAdsTarget, now: datetime
    ) -> dict[str, Any]:
        return {"order": conversion.order_id, "value": str(conversion.value)}

    def build_adjustment(
        self, conversion: Conversion, adjustment: Adjustment, target: GoogleAdsTarget, now: datetime
    ) -> dict[str, Any]:
        payload = {"order": conversion.order_id, "adjustment": adjustment.kind.value}
        if adjustment.value is not None:
            payload["value"] = str(adjustment.value)
        return payload

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        kinds = {r.adjustment is None for r in rows}
        assert len(kinds) == 1, "conversions and adjustments never share a request"
        self.requests.append([dict(r.payload) for r in rows])
        return self.answer(rows)

    def validate(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        self.validated.append([dict(r.payload) for r in rows])
        return [
            RowOutcome.rejected("expired_event", "EXPIRED_EVENT: too old")
            if r.payload["order"] == "A-2"
            else RowOutcome.delivered("valid")
            for r in rows
        ]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def write(shop: Path, *rows: tuple[str, str, str]) -> None:
    """(order id, status, total) rows, each with a gclid; the file's mtime moves on."""
    lines = [
        f"{order},2026-11-20 10:00:00,{status},{total},,,,,Cj0KCQ-{order}-gclid-test"
        for order, status, total in rows
    ]
    path = shop / "orders" / "a.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000 * len(lines)))


def run(
    shop: Path, ledger: Ledger, answer: Answer = _ok, clock: Clock | None = None, **options: Any
) -> tuple[AdjustingDestination, Any]:
    loaded = load_config(shop / "convsync.yaml", env={})
    dest = AdjustingDestination("google", loaded.app.destinations["google"], answer)  # type: ignore[arg-type]
    pipeline = SyncPipeline(
        loaded, ledger, destinations={"google": dest}, clock=clock or Clock(), sleep=lambda _: None
    )
    return dest, pipeline.run(SyncOptions(**options))


def key(order: str) -> str:
    return conversion_key("shop", order, "purchase")


def test_refund_retracts_and_new_total_restates_once(shop: Path, ledger: Ledger) -> None:
    write(shop, ("A-1", "paid", "100"), ("A-2", "paid", "200"), ("A-3", "paid", "300"))
    dest, _ = run(shop, ledger)
    assert [len(r) for r in dest.requests] == [3]

    write(shop, ("A-1", "refunded", "100"), ("A-2", "paid", "250.5"), ("A-3", "paid", "300"))
    dest, summary = run(shop, ledger)
    assert summary.sources["shop"]["adjustments"] == 2
    assert dest.requests == [
        [
            {"order": "A-1", "adjustment": "retraction"},
            {"order": "A-2", "adjustment": "restatement", "value": "250.5"},
        ]
    ]
    # the same records again: nothing new to adjust
    write(shop, ("A-1", "refunded", "100"), ("A-2", "paid", "250.50"), ("A-3", "paid", "300"))
    dest, summary = run(shop, ledger)
    assert dest.requests == []
    assert "adjustments" not in summary.sources["shop"]

    # a retraction is final: a later "paid" with another total restates nothing
    write(shop, ("A-1", "paid", "999"), ("A-2", "cancelled", "250.5"))
    dest, _ = run(shop, ledger)
    assert dest.requests == [[{"order": "A-2", "adjustment": "retraction"}]]

    funnel = {(r.goal, r.kind): r for r in ledger.funnel(datetime(2026, 1, 1, tzinfo=UTC))}
    assert funnel[("purchase", "conversion")].conversions == 3
    assert funnel[("purchase", "retraction")].accepted == 2
    assert funnel[("purchase", "restatement")].accepted == 1


def test_an_adjustment_waits_for_its_conversion_and_skips_a_rejected_one(
    shop: Path, ledger: Ledger
) -> None:
    write(shop, ("A-1", "paid", "100"), ("A-2", "paid", "200"))

    def defer_a1_reject_a2(rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        return [
            RowOutcome.transient("transient_error", "try later")
            if r.payload["order"] == "A-1"
            else RowOutcome.rejected("expired_event", "too old")
            for r in rows
        ]

    run(shop, ledger, defer_a1_reject_a2)
    write(shop, ("A-1", "refunded", "100"), ("A-2", "refunded", "200"))
    clock = Clock()
    dest, _ = run(shop, ledger, lambda rows: [], clock)  # nothing due but the adjustments
    assert dest.requests == []
    failures = {
        (f.order_id, f.adjustment): f for f in ledger.failures(clock.now.replace(year=2025))
    }
    assert failures[("A-1", "retraction")].code == "waiting_for_conversion"
    assert failures[("A-1", None)].code == "transient_error"
    states = ledger.funnel(clock.now.replace(year=2025))
    retraction = next(r for r in states if r.kind == "retraction")
    assert retraction.skipped_by_code == {"conversion_not_delivered": 1}
    assert retraction.deferred == 1

    # later the conversion goes through, then its retraction
    clock.now = clock.now.replace(hour=23)
    dest, _ = run(shop, ledger, clock=clock)
    assert dest.requests == [
        [{"order": "A-1", "value": "100"}],
        [{"order": "A-1", "adjustment": "retraction"}],
    ]


def test_an_unsent_restatement_is_superseded_by_a_later_change(shop: Path, ledger: Ledger) -> None:
    write(shop, ("A-1", "paid", "100"))
    run(shop, ledger)

    def stopped(rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        raise DestinationUnavailable("auth_failed", "the refresh token was revoked")

    write(shop, ("A-1", "paid", "150"))
    run(shop, ledger, stopped)
    write(shop, ("A-1", "cancelled", "150"))
    dest, _ = run(shop, ledger)
    assert dest.requests == [[{"order": "A-1", "adjustment": "retraction"}]]
    restatement = next(
        r for r in ledger.funnel(datetime(2026, 1, 1, tzinfo=UTC)) if r.kind == "restatement"
    )
    assert restatement.skipped_by_code == {"superseded": 1}


def test_a_refund_of_an_order_never_recorded_adjusts_nothing(shop: Path, ledger: Ledger) -> None:
    write(shop, ("A-9", "refunded", "100"))
    dest, summary = run(shop, ledger)
    assert dest.requests == []
    assert summary.sources["shop"].get("adjustments", 0) == 0


def test_dry_run_plans_the_adjustments_a_run_would_record(
    shop: Path, ledger: Ledger, tmp_path: Path
) -> None:
    write(shop, ("A-1", "paid", "100"), ("A-2", "paid", "200"))
    run(shop, ledger)
    write(shop, ("A-1", "refunded", "100"), ("A-2", "paid", "210"))
    plan = tmp_path / "plan.jsonl"
    dest, summary = run(shop, ledger, dry_run=True, output=plan)
    assert dest.requests == []
    lines = [json.loads(line) for line in plan.read_text().splitlines()]
    assert [(x["adjustment"], x["payload"]) for x in lines] == [
        ("retraction", {"order": "A-1", "adjustment": "retraction"}),
        ("restatement", {"order": "A-2", "adjustment": "restatement", "value": "210"}),
    ]
    assert summary.goals["purchase"]["retraction"] == 1
    # nothing was recorded: a real run now plans the same two
    dest, summary = run(shop, ledger)
    assert summary.sources["shop"]["adjustments"] == 2


def test_validate_checks_every_due_row_and_changes_no_delivery(
    shop: Path, ledger: Ledger, tmp_path: Path
) -> None:
    write(shop, ("A-1", "paid", "100"), ("A-2", "paid", "200"), ("A-3", "paid", "0"))
    out = tmp_path / "check.jsonl"
    dest, summary = run(shop, ledger, validate=True, output=out)
    assert dest.requests == [] and len(dest.validated) == 1
    assert summary.validation == {"google": {"valid": 2, "rejected": 1}}
    assert summary.exit_code != 0
    results = {x["order_id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert results["A-1"]["result"] == "valid"
    assert results["A-2"] == {
        "destination": "google",
        "type": "google_ads",
        "goal": "purchase",
        "conversion_key": key("A-2"),
        "order_id": "A-2",
        "result": "rejected",
        "code": "expired_event",
        "message": "EXPIRED_EVENT: too old",
    }
    states = ledger.delivery_states([key("A-1"), key("A-2"), key("A-3")])
    assert {str(s) for s in states.values()} == {"pending"}
    dest, _ = run(shop, ledger)  # a real run then sends all three
    assert len(dest.requests[0]) == 3


def test_a_destination_stopping_on_the_conversions_releases_their_adjustments(
    shop: Path, ledger: Ledger
) -> None:
    write(shop, ("A-1", "paid", "100"))
    run(shop, ledger, lambda rows: [RowOutcome.transient("transient_error", "later")])
    write(shop, ("A-1", "refunded", "100"))

    def stopped(rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        raise DestinationUnavailable("auth_failed", "the refresh token was revoked")

    clock = Clock()
    clock.now = clock.now.replace(hour=23)  # the conversion is due again, with its retraction
    dest, _ = run(shop, ledger, stopped, clock)
    assert len(dest.requests) == 1  # the conversion's request; the retraction never went
    funnel = {r.kind: r for r in ledger.funnel(datetime(2026, 1, 1, tzinfo=UTC))}
    assert funnel["conversion"].pending == 1
    assert funnel["retraction"].pending == 1  # released, not left in sending
