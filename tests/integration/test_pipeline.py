"""The sync machinery end to end: CSV → goals → SQLite ledger → batched sends with
retries, deferral, recovery, through a scripted destination."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from convsync.config.loader import load_config
from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.identity import conversion_key
from convsync.core.model import DeliveryState, OutboundRow, OutcomeKind, RowOutcome
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock

from .conftest import write_orders
from .fakes import Script, ScriptedDestination, deliver_all


def make(
    workdir: Path, ledger: Ledger, script: Script = deliver_all, clock: Clock | None = None
) -> tuple[SyncPipeline, ScriptedDestination, list[float]]:
    loaded = load_config(workdir / "convsync.yaml", env={})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"], script)  # type: ignore[arg-type]
    sleeps: list[float] = []
    pipeline = SyncPipeline(
        loaded, ledger, destinations={"vk": dest}, clock=clock or Clock(), sleep=sleeps.append
    )
    return pipeline, dest, sleeps


def rows(n: int, status: str = "paid", start: int = 1) -> list[str]:
    return [
        f"A-{i},2026-11-20 10:{i % 60:02d}:00,{status},100.50,RUB,,,click{i},"
        for i in range(start, start + n)
    ]


def crash(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
    raise KeyError("a bug in the uploader")


def unavailable(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
    raise DestinationUnavailable("invalid_token", "the OAuth token was revoked")


def states(ledger: Ledger) -> dict[str, str]:
    """order id → delivery state, through the ledger's API (works on both databases)."""
    keys = {conversion_key("shop", f"A-{i}", "purchase"): f"A-{i}" for i in range(1, 10)}
    found = ledger.delivery_states(list(keys))
    return {keys[key]: str(state) for (key, _dest), state in found.items()}


def test_records_delivers_in_batches_and_a_second_run_changes_nothing(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, [*rows(7), "B-1,2026-11-20 11:00:00,new,5,RUB,,,clickB,"])
    pipeline, dest, _ = make(workdir, ledger)
    summary = pipeline.run(SyncOptions())
    assert summary.status == "ok" and summary.exit_code == 0
    assert summary.sources["shop"]["pulled"] == 8
    assert summary.sources["shop"]["new"] == 7
    assert [len(b) for b in dest.batches] == [3, 3, 1]  # max_batch = 3
    assert sorted(dest.sent_orders) == sorted(f"A-{i}" for i in range(1, 8))
    assert set(states(ledger).values()) == {"delivered"}

    again, dest2, _ = make(workdir, ledger)
    summary2 = again.run(SyncOptions())
    assert summary2.sources.get("shop", {}).get("pulled", 0) == 0  # unchanged file not re-read
    assert dest2.batches == []


def test_changed_file_is_reread_and_only_new_rows_are_sent(workdir: Path, ledger: Ledger) -> None:
    path = write_orders(workdir, rows(2))
    pipeline, _dest, _ = make(workdir, ledger)
    pipeline.run(SyncOptions())
    write_orders(workdir, rows(3))  # one row appended
    assert path.stat().st_size > 0
    again, dest2, _ = make(workdir, ledger)
    summary = again.run(SyncOptions())
    assert summary.sources["shop"]["pulled"] == 3
    assert summary.sources["shop"]["new"] == 1
    assert dest2.sent_orders == ["A-3"]


def test_transient_batch_failure_is_retried_in_the_run_honouring_retry_after(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, rows(2))
    calls = {"n": 0}

    def flaky(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("HTTP 429", retry_after=7.0, code="rate_limited")
        return deliver_all(batch)

    pipeline, dest, sleeps = make(workdir, ledger, flaky)
    summary = pipeline.run(SyncOptions())
    assert sleeps == [7.0]
    assert len(dest.batches) == 2
    assert summary.destinations["vk"]["requests"] == 2
    assert set(states(ledger).values()) == {"delivered"}


def test_rows_that_stay_transient_are_deferred_then_given_up(workdir: Path, ledger: Ledger) -> None:
    write_orders(workdir, rows(2))

    def half_broken(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        return [
            RowOutcome.transient("backend_error", "try later")
            if r.payload["order"] == "A-2"
            else RowOutcome.delivered()
            for r in batch
        ]

    clock = Clock()
    pipeline, dest, _ = make(workdir, ledger, half_broken, clock)
    pipeline.run(SyncOptions())
    # retries_in_run: 1 → the failing row is tried twice in the run, then deferred
    assert dest.sent_orders == ["A-1", "A-2", "A-2"]
    assert states(ledger) == {"A-1": "delivered", "A-2": "deferred"}

    pipeline.run(SyncOptions())  # not due yet: nothing is sent
    assert len(dest.batches) == 2
    for _ in range(2):  # max_attempts: 3 failed runs in all
        clock.now += timedelta(days=2)
        pipeline.run(SyncOptions())
    assert states(ledger)["A-2"] == "rejected"
    (failure,) = [f for f in ledger.failures(clock.now - timedelta(days=30)) if f.order_id == "A-2"]
    assert (failure.code, failure.attempts) == ("retries_exhausted", 3)


def test_platform_deferral_waits_until_retry_at(workdir: Path, ledger: Ledger) -> None:
    write_orders(workdir, rows(1))
    clock = Clock()
    later = clock.now + timedelta(hours=6)
    answers = iter([[RowOutcome.deferred("too_recent_event", "click under 6 h old", later)]])

    def script(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        return next(answers, None) or deliver_all(batch)

    pipeline, dest, _ = make(workdir, ledger, script, clock)
    pipeline.run(SyncOptions())
    assert states(ledger) == {"A-1": "deferred"}
    clock.now += timedelta(hours=5)
    pipeline.run(SyncOptions())
    assert len(dest.batches) == 1
    clock.now += timedelta(hours=2)
    pipeline.run(SyncOptions())
    assert len(dest.batches) == 2
    assert states(ledger) == {"A-1": "delivered"}


def test_unavailable_destination_leaves_rows_pending_without_an_attempt(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, rows(4))
    pipeline, dest, _ = make(workdir, ledger, unavailable)
    summary = pipeline.run(SyncOptions())
    assert len(dest.batches) == 1  # stopped after the first refusal
    assert summary.destinations["vk"]["stopped"] == "invalid_token: the OAuth token was revoked"
    assert summary.exit_code != 0
    assert set(states(ledger).values()) == {"pending"}
    due = list(ledger.due_deliveries(destination="vk", now=datetime.now(UTC)))
    assert len(due) == 4 and {d.attempts for d in due} == {0}
    fixed, dest2, _ = make(workdir, ledger)
    fixed.run(SyncOptions())
    assert sorted(dest2.sent_orders) == ["A-1", "A-2", "A-3", "A-4"]


def test_permanent_batch_error_and_preflight_rejections_are_recorded(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, [*rows(1), "A-9,2026-11-20 10:59:00,paid,1,RUB,,,reject-me,"])

    def refuse(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        raise PermanentError("invalid_uploading", "the file has no Target column")

    pipeline, dest, _ = make(workdir, ledger, refuse)
    summary = pipeline.run(SyncOptions())
    assert dest.sent_orders == ["A-1"]  # the pre-flight rejection never left
    assert summary.destinations["vk"]["rejected_by_code"] == {
        "invalid_uploading": 1,
        "bad_click_id": 1,
    }
    assert states(ledger) == {"A-1": "rejected", "A-9": "rejected"}


def test_unknown_error_fails_loudly_and_recovery_resends_after_the_lease(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, rows(2))
    clock = Clock()
    pipeline, _dest, _ = make(workdir, ledger, crash, clock)
    with pytest.raises(KeyError):
        pipeline.run(SyncOptions())
    runs = ledger.recent_runs(1)
    assert runs[0].status == "failed"
    assert states(ledger) == {"A-1": "sending", "A-2": "sending"}

    fixed, dest2, _ = make(workdir, ledger, clock=clock)
    fixed.run(SyncOptions())
    assert dest2.batches == [] and dest2.recovered == []  # the lease has not expired
    clock.now += timedelta(minutes=11)
    fixed.run(SyncOptions())
    assert len(dest2.recovered) == 1 and len(dest2.recovered[0]) == 2
    assert sorted(dest2.sent_orders) == ["A-1", "A-2"]
    assert set(states(ledger).values()) == {"delivered"}


def test_recovery_verdicts_from_the_destination_are_recorded(workdir: Path, ledger: Ledger) -> None:
    write_orders(workdir, rows(2))
    clock = Clock()
    pipeline, _, _ = make(workdir, ledger, crash, clock)
    with pytest.raises(KeyError):
        pipeline.run(SyncOptions())
    clock.now += timedelta(minutes=11)
    fixed, dest, _ = make(workdir, ledger, clock=clock)
    dest.recover_verdicts = lambda rows: [
        RowOutcome(OutcomeKind.UNCERTAIN, "no_receipt", "may have arrived") for _ in rows
    ]
    fixed.run(SyncOptions())
    assert dest.batches == []  # uncertain rows are never re-sent automatically
    assert set(states(ledger).values()) == {"uncertain"}


def test_no_identifier_is_skipped_not_failed(workdir: Path, ledger: Ledger) -> None:
    write_orders(workdir, ["A-1,2026-11-20 10:00:00,paid,1,RUB,a@example.com,,,"])
    pipeline, dest, _ = make(workdir, ledger)
    summary = pipeline.run(SyncOptions())
    assert summary.exit_code == 0
    assert summary.sources["shop"]["skipped"] == 1
    assert dest.batches == []
    assert states(ledger) == {"A-1": "skipped"}


def test_bad_rows_are_rejected_with_place_and_the_rest_goes_on(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(
        workdir,
        [
            "A-1,2026-11-20 10:00:00,paid,1 500,RUB,,,c1,",
            "A-2,yesterday,paid,1,RUB,,,c2,",
            "A-3,2026-11-20 10:00:00,paid,lots,RUB,,,c3,",
            "A-4,2026-11-20 10:00:00,paid,5,XYZ,,,c4,",
        ],
    )
    pipeline, dest, _ = make(workdir, ledger)
    summary = pipeline.run(SyncOptions())
    assert summary.exit_code != 0
    assert dest.sent_orders == ["A-1"]
    failures = ledger.failures(datetime(2026, 1, 1, tzinfo=UTC))
    text = "\n".join(f"{f.origin} {f.column} {f.code} {f.message}" for f in failures)
    assert "orders/a.csv:3" in text and "created_at" in text
    assert "orders/a.csv:4" in text and "total" in text and "bad_value" in text
    assert "orders/a.csv:5" in text and "currency" in text and "bad_currency" in text


def test_dry_run_changes_no_state_and_lists_exact_payloads(workdir: Path, tmp_path: Path) -> None:
    write_orders(workdir, [*rows(2), "A-9,2026-11-20 10:59:00,paid,1,RUB,,,reject-me,"])
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    ledger = Ledger.open(url, read_only=True)
    try:
        plan = tmp_path / "plan.jsonl"
        pipeline, dest, _ = make(workdir, ledger)
        summary = pipeline.run(SyncOptions(dry_run=True, output=plan))
    finally:
        ledger.close()
    assert not db.exists()
    assert dest.batches == []
    lines = [json.loads(x) for x in plan.read_text().splitlines()]
    assert [x.get("payload", {}).get("order") for x in lines] == ["A-1", "A-2", None]
    assert lines[2]["rejected"] == {
        "code": "bad_click_id",
        "message": "this click id is refused in pre-flight",
    }
    assert summary.plan[("vk", "purchase")] == {"send": 2, "rejected": 1}

    # with a real ledger that already holds A-1, the dry run plans only A-2 (and A-9)
    real = Ledger.open(url)
    write_orders(workdir, rows(1), name="a.csv")
    make(workdir, real, unavailable)[0].run(SyncOptions())
    real.close()
    before = db.read_bytes()
    write_orders(workdir, [*rows(2), "A-9,2026-11-20 10:59:00,paid,1,RUB,,,reject-me,"])
    ro = Ledger.open(url, read_only=True)
    try:
        make(workdir, ro)[0].run(SyncOptions(dry_run=True, output=plan))
    finally:
        ro.close()
    assert db.read_bytes() == before
    planned = [json.loads(x) for x in plan.read_text().splitlines()]
    assert [(p.get("queued", False), p.get("payload", {}).get("order")) for p in planned] == [
        (True, "A-1"),  # pending from the earlier run, due now
        (False, "A-2"),
        (False, None),
    ]


def test_stop_event_ends_the_run_between_batches(workdir: Path, ledger: Ledger) -> None:
    write_orders(workdir, rows(7))
    stop = threading.Event()

    def stop_after_first(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        stop.set()
        return deliver_all(batch)

    pipeline, dest, _ = make(workdir, ledger, stop_after_first)
    pipeline.stop = stop
    summary = pipeline.run(SyncOptions())
    assert summary.status == "interrupted"
    assert len(dest.batches) == 1


def test_a_file_without_a_mapped_column_stops_its_source_only(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, rows(2))
    (workdir / "orders" / "b.csv").write_text(
        "order_id,created_at\nB-1,2026-11-20\n", encoding="utf-8"
    )
    pipeline, dest, _ = make(workdir, ledger)
    summary = pipeline.run(SyncOptions())
    assert summary.status == "failed" and summary.exit_code != 0
    (problem,) = summary.user_errors
    assert "orders/b.csv" in problem and "sources.shop.fields.status" in problem
    assert sorted(dest.sent_orders) == ["A-1", "A-2"]  # a.csv came first and was delivered


def test_an_operator_retry_sends_rejected_rows_again_with_fresh_attempts(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, rows(3))
    clock = Clock()
    answers = {"A-1": RowOutcome.rejected("no_conversion_action_found", "wrong goal id")}

    def script(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        return [answers.get(str(r.payload["order"]), RowOutcome.delivered()) for r in batch]

    pipeline, dest, _ = make(workdir, ledger, script, clock)
    pipeline.run(SyncOptions())
    assert states(ledger) == {"A-1": "rejected", "A-2": "delivered", "A-3": "delivered"}

    since = clock.now - timedelta(days=1)
    count = {"states": [DeliveryState.REJECTED], "since": since, "now": clock.now, "run_id": "op"}
    assert ledger.requeue(**count, code="other_code") == 0
    assert ledger.requeue(**count, dry_run=True) == 1
    assert states(ledger)["A-1"] == "rejected"  # a dry run changes nothing
    assert ledger.requeue(**count, destination="vk", goal="purchase") == 1
    assert states(ledger)["A-1"] == "pending"
    (due,) = ledger.due_deliveries(destination="vk", now=clock.now)
    assert due.attempts == 0

    answers.clear()  # the goal id was fixed
    pipeline.run(SyncOptions())
    assert dest.sent_orders == ["A-1", "A-2", "A-3", "A-1"]  # delivered ones never again
    assert set(states(ledger).values()) == {"delivered"}
    with pytest.raises(ValueError, match="cannot re-queue"):
        ledger.requeue(**{**count, "states": [DeliveryState.DELIVERED]})


def test_batches_in_flight_together_all_land_and_a_stop_releases_the_rest(
    workdir: Path, ledger: Ledger
) -> None:
    """``max_in_flight = 2``: the next batch is claimed and sent while one is in flight;
    a destination that stops mid-way leaves the unsent rows pending, the sent ones
    recorded, and nothing in ``sending``."""
    write_orders(workdir, rows(9))
    both_in_flight = threading.Barrier(2, timeout=10)
    calls = {"n": 0}
    lock = threading.Lock()

    def overlapping(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n <= 2:
            both_in_flight.wait()  # proves two sends run at once (else: BrokenBarrierError)
            return deliver_all(batch)
        raise DestinationUnavailable("invalid_token", "the OAuth token was revoked")

    pipeline, dest, _ = make(workdir, ledger, overlapping)
    type(dest).max_in_flight = 2
    try:
        summary = pipeline.run(SyncOptions())
    finally:
        type(dest).max_in_flight = 1
    assert summary.destinations["vk"]["delivered"] == 6
    assert summary.destinations["vk"]["stopped"].startswith("invalid_token")
    found = states(ledger)
    assert sorted(found.values()) == ["delivered"] * 6 + ["pending"] * 3


def test_a_stop_on_a_retry_keeps_the_rows_the_first_try_settled(
    workdir: Path, ledger: Ledger
) -> None:
    """Try 1 delivers A-1 and A-2, A-3 fails transiently; the retry finds the token
    revoked. A-1 and A-2 stay delivered (never sent again), A-3 goes back to pending."""
    write_orders(workdir, rows(3))
    calls = {"n": 0}

    def then_revoked(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        calls["n"] += 1
        if calls["n"] == 1:
            return [
                RowOutcome.transient("transient_error", "busy")
                if r.payload["order"] == "A-3"
                else RowOutcome.delivered()
                for r in batch
            ]
        raise DestinationUnavailable("invalid_token", "the OAuth token was revoked")

    pipeline, _, _ = make(workdir, ledger, then_revoked)
    summary = pipeline.run(SyncOptions())
    assert summary.destinations["vk"]["stopped"].startswith("invalid_token")
    assert states(ledger) == {"A-1": "delivered", "A-2": "delivered", "A-3": "pending"}
    again, dest2, _ = make(workdir, ledger)
    again.run(SyncOptions())
    assert dest2.sent_orders == ["A-3"]


def test_a_source_silent_and_a_backlog_too_old_degrade_the_run(
    workdir: Path, ledger: Ledger
) -> None:
    write_orders(workdir, rows(2))
    clock = Clock()
    first, _, _ = make(workdir, ledger, clock=clock)
    assert first.run(SyncOptions()).status == "ok"
    clock.now += timedelta(days=1)
    quiet, _, _ = make(workdir, ledger, clock=clock)
    assert quiet.run(SyncOptions()).status == "ok"  # a day without orders: not yet
    clock.now += timedelta(days=1, hours=1)
    silent, _, _ = make(workdir, ledger, clock=clock)
    summary = silent.run(SyncOptions())
    assert (summary.status, summary.exit_code) == ("degraded", 1)
    [warning] = summary.warnings
    assert warning.startswith("sources.shop: no new records for 2 d 1 h (the last recorded ")
    assert warning.endswith("longer than health.max_source_silence (2d)")

    write_orders(workdir, rows(1, start=7), name="b.csv")
    clock.now += timedelta(hours=1)
    stopped, _, _ = make(workdir, ledger, unavailable, clock=clock)
    stopped.run(SyncOptions())  # recorded, and left pending
    clock.now += timedelta(hours=7)
    later, _, _ = make(workdir, ledger, unavailable, clock=clock)
    summary = later.run(SyncOptions())
    backlog = [w for w in summary.warnings if w.startswith("destinations.vk: ")]
    assert backlog and "longer than health.max_pending_age (6h)" in backlog[0]
