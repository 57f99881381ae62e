"""Whole sync runs to VK Ads against the fake tracker, with the ledger on both databases:
delivery once, 429 then success and a 20 % fault rate retried in the batch (no worker
retry), an event that may have arrived left uncertain among them, a tracker that cannot
be reached, and a process killed mid-batch — its rows become ``uncertain``, are not
sent again, and ``convsync retry --state uncertain`` sends them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from convsync.core.identity import conversion_key
from convsync.store.ledger import Ledger
from tests.clock import Clock
from tests.integration.processes import kill_when_held, start_convsync
from tests.vk_fake import FakeVk, Reply

from .conftest import shop_env, sync, write_orders

CLOCK_START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
AT = datetime(2026, 11, 20, 10, 0)  # Moscow time, the day before
MOSCOW = ZoneInfo("Europe/Moscow")


def keys(orders: list[str]) -> list[str]:
    return [conversion_key("shop", o, "purchase") for o in orders]


def states(ledger: Ledger, orders: list[str]) -> set[str]:
    return {str(s) for s in ledger.delivery_states(keys(orders)).values()}


def test_every_event_is_sent_once_and_a_second_run_sends_nothing(
    shop: Path, ledger: Ledger, fake: FakeVk
) -> None:
    many = [(f"B-{i}", f"clk{i}") for i in range(90)]  # three batches, two in flight
    write_orders(shop, [("A-1", "click1"), ("A-2", "u:crm-2"), ("A-3", ""), *many], AT)
    env = shop_env(fake)
    summary, _ = sync(shop, ledger, env, Clock(CLOCK_START))
    assert summary.status == "ok" and summary.exit_code == 0
    assert summary.destinations["vk"] == {"requests": 3, "batches": 3, "delivered": 92}
    lines = fake.tracker.request_lines
    assert len(lines) == len(set(lines)) == 92
    assert "GET /tracker?id=3456789;e=RG%3A1500/purchase;rb_clickid=click1 HTTP/1.1" in lines
    assert "GET /tracker?id=3456789;e=RG%3A1500/purchase;userid=crm-2 HTTP/1.1" in lines
    assert states(ledger, ["A-1", "A-2", *(o for o, _ in many)]) == {"delivered"}
    assert states(ledger, ["A-3"]) == {"skipped"}  # no VK identifier
    sync(shop, ledger, env, Clock(CLOCK_START + timedelta(hours=1)))
    assert len(fake.tracker.hits) == 92
    assert fake.api.grants == []  # a pixel-only run never asks the Ads API for a token


def test_a_429_is_retried_in_the_batch_after_retry_after_then_delivered(
    shop: Path, ledger: Ledger, fake: FakeVk
) -> None:
    write_orders(shop, [("A-1", "click1"), ("A-2", "click2")], AT)
    fake.tracker.reply_when(
        lambda hit: "click2" in hit.query and len(fake.tracker.hits) <= 2,
        Reply(429, {"Retry-After": "1"}),
    )
    sleeps: list[float] = []
    summary, _ = sync(shop, ledger, shop_env(fake), Clock(CLOCK_START), sleeps)
    assert sleeps == []  # the destination waited; the worker had nothing to retry
    statuses = [(h.params["rb_clickid"], h.status) for h in fake.tracker.hits]
    assert sorted(statuses) == [("click1", 200), ("click2", 200), ("click2", 429)]
    refused, again = [h for h in fake.tracker.hits if h.params["rb_clickid"] == "click2"]
    assert refused.finished is not None and again.started - refused.finished >= 0.95
    assert summary.destinations["vk"] == {"requests": 1, "batches": 1, "delivered": 2}
    assert states(ledger, ["A-1", "A-2"]) == {"delivered"}


def test_events_failing_transiently_are_delivered_in_one_send_without_a_worker_retry(
    shop: Path, ledger: Ledger, fake: FakeVk
) -> None:
    orders = [f"A-{i}" for i in range(120)]
    write_orders(shop, [(o, f"click{i}") for i, o in enumerate(orders)], AT)
    fake.tracker.inject_faults(0.2, seed=5)
    sleeps: list[float] = []
    summary, _ = sync(shop, ledger, shop_env(fake), Clock(CLOCK_START), sleeps)
    assert fake.tracker.faults >= 10
    assert sleeps == []  # no batch waited out a retry in the worker …
    # … and each of the three batches was one send
    assert summary.destinations["vk"] == {"requests": 3, "batches": 3, "delivered": 120}
    counted = fake.tracker.counted()
    assert len(counted) == 120 and set(counted.values()) == {1}
    assert len(fake.tracker.hits) == 120 + fake.tracker.faults
    assert states(ledger, orders) == {"delivered"}
    assert [r.attempts for r in ledger.due_deliveries(destination="vk", now=CLOCK_START)] == []


def test_an_event_that_may_have_arrived_stays_uncertain_among_retried_ones(
    shop: Path, ledger: Ledger, fake: FakeVk
) -> None:
    orders = [f"A-{i}" for i in range(30)]
    write_orders(shop, [(o, f"click{i}") for i, o in enumerate(orders)], AT)
    fake.tracker.reply_when(lambda hit: "click7;" in hit.query + ";", Reply(drop=True))
    fake.tracker.inject_faults(0.2, seed=5)
    summary, _ = sync(shop, ledger, shop_env(fake), Clock(CLOCK_START))
    assert summary.destinations["vk"] == {
        "requests": 1,
        "batches": 1,
        "delivered": 29,
        "uncertain": 1,
    }
    assert states(ledger, ["A-7"]) == {"uncertain"}
    sync(shop, ledger, shop_env(fake), Clock(CLOCK_START + timedelta(hours=1)))
    assert [h.params["rb_clickid"] for h in fake.tracker.hits].count("click7") == 1


def test_a_tracker_that_cannot_be_reached_leaves_every_row_pending(
    shop: Path, ledger: Ledger, fake: FakeVk
) -> None:
    orders = [f"A-{i}" for i in range(100)]
    write_orders(shop, [(o, f"click{i}") for i, o in enumerate(orders)], AT)
    env = {**shop_env(fake), "VK_TRACKER": "http://127.0.0.1:9/tracker"}
    summary, _ = sync(shop, ledger, env, Clock(CLOCK_START))
    vk = summary.destinations["vk"]
    assert vk["stopped"].startswith("tracker_unreachable: ")
    assert "delivered" not in vk and "deferred" not in vk
    assert states(ledger, orders) == {"pending"}
    due = list(ledger.due_deliveries(destination="vk", now=CLOCK_START))
    assert [r.attempts for r in due] == [0] * 100  # no attempt counted: nothing left


# --- a crash between the requests and the ledger ----------------------------------------


def test_a_batch_interrupted_by_a_kill_becomes_uncertain_and_is_resent_only_on_retry(
    shop: Path, fake: FakeVk, ledger_url: str
) -> None:
    orders = [f"A-{i}" for i in range(5)]
    # the child process runs on the real clock: conversions of three hours ago, written
    # as the shop's Moscow time
    recent = datetime.now(MOSCOW).replace(tzinfo=None) - timedelta(hours=3)
    write_orders(shop, [(o, f"click{i}") for i, o in enumerate(orders)], recent)
    env = shop_env(fake)
    hold = fake.tracker.hold()
    first = start_convsync(shop, env, ledger_url, "sync", "--once")
    # the tracker has the events; the ledger: sending
    kill_when_held(first, lambda timeout: hold.wait_for(5, timeout), hold.release)
    assert len(fake.tracker.hits) == 5
    with Ledger.open(ledger_url) as ledger:
        assert states(ledger, orders) == {"sending"}

    time.sleep(1.5)  # the delivery lease (1 s) runs out
    with Ledger.open(ledger_url) as ledger:
        summary, _ = sync(shop, ledger, env, lambda: datetime.now(UTC))
        assert summary.destinations["vk"]["recovered"] == 5
        assert summary.destinations["vk"]["uncertain"] == 5
        assert len(fake.tracker.hits) == 5  # nothing was sent again
        assert states(ledger, orders) == {"uncertain"}
        failures = ledger.failures(datetime.now(UTC) - timedelta(days=1))
        assert {f.code for f in failures} == {"no_receipt"}
        sync(shop, ledger, env, lambda: datetime.now(UTC))  # a later run leaves them alone
        assert len(fake.tracker.hits) == 5

    retry = start_convsync(shop, env, ledger_url, "retry", "--state", "uncertain")
    out, err = retry.communicate(timeout=120)
    assert retry.returncode == 0, err
    assert "5 deliveries go back to pending" in out
    with Ledger.open(ledger_url) as ledger:
        assert states(ledger, orders) == {"pending"}
        summary, _ = sync(shop, ledger, env, lambda: datetime.now(UTC))
        assert summary.destinations["vk"]["delivered"] == 5
        assert states(ledger, orders) == {"delivered"}
    assert len(fake.tracker.hits) == 10
    assert sorted(h.params["rb_clickid"] for h in fake.tracker.hits[5:]) == [
        f"click{i}" for i in range(5)
    ]
