"""Several processes on one ledger: no delivery claimed twice, no lease held twice.

Each worker is a separate (spawned) process with its own Ledger, as replicas would be:
two on one PostgreSQL database, or two on one SQLite WAL file.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from convsync.core.model import DeliveryState
from convsync.store import Ledger
from convsync.store.migrate import head_revision

from . import workers
from .factory import NOW, conversion, plan

DEADLINE_S = 240  # generous: the work takes seconds, spawning and importing a few more


def _run_two(target: Callable[..., None], url: str, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    out = context.Queue()
    processes = [
        context.Process(target=target, args=(url, name, *args, start, out), name=name)
        for name in ("w1", "w2")
    ]
    for process in processes:
        process.start()
    results: dict[str, Any] = {}
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(results) < len(processes):
            try:
                name, result = out.get(timeout=0.5)
            except queue.Empty:
                crashed = [p.name for p in processes if p.exitcode not in (None, 0)]
                if crashed:
                    pytest.fail(f"worker {crashed} crashed (its traceback is on stderr)")
                if time.monotonic() > deadline:
                    pytest.fail(f"workers did not report in {DEADLINE_S}s: got {sorted(results)}")
            else:
                results[name] = result
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    assert [p.exitcode for p in processes] == [0, 0]
    return results


def test_two_processes_never_claim_the_same_delivery(ledger: Ledger, ledger_url: str) -> None:
    written = [conversion(f"{i:05d}") for i in range(2_000)]
    ledger.record_chunk(
        run_id="seed",
        source="shop",
        conversions=written,
        deliveries=plan(written),
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW,
    )
    every = {d.delivery_id for d in ledger.due_deliveries(destination="google", now=NOW)}
    assert len(every) == 2_000

    results = _run_two(workers.claim_until_empty, ledger_url, 15)

    first, second = set(results["w1"]), set(results["w2"])
    assert len(first) == len(results["w1"]) and len(second) == len(results["w2"])
    assert first.isdisjoint(second)
    assert first | second == every
    assert list(ledger.due_deliveries(destination="google", now=NOW)) == []
    states = ledger.delivery_states([c.key for c in written])
    assert set(states.values()) == {DeliveryState.DELIVERED}


def test_two_processes_never_hold_one_lease(ledger: Ledger, ledger_url: str) -> None:
    results = _run_two(workers.race_for_leases, ledger_url, 60)
    first, second = set(results["w1"]), set(results["w2"])
    assert first.isdisjoint(second)
    assert first | second == set(range(60))


@pytest.fixture
def fresh_url(ledger_url: str) -> str:
    """A database nobody has opened yet (the ``ledger`` fixture would migrate it)."""
    return ledger_url


def test_two_processes_opening_a_new_ledger_migrate_it_once(fresh_url: str) -> None:
    results = _run_two(workers.open_and_record, fresh_url, 300)
    # one recorded the conversions, the other found them there
    assert sorted(results.values()) == [[0, 0], [300, 300]]
    ledger = Ledger.open(fresh_url, read_only=True)
    try:
        assert len(list(ledger.due_deliveries(destination="google", now=NOW))) == 300
    finally:
        ledger.close()


def test_reads_see_head_revision(db: Engine) -> None:
    from alembic.runtime.migration import MigrationContext

    with db.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
