"""Runs whose process died (D9): a ``running`` row is ``interrupted`` once another
process takes its lease over (written, in the same transaction) or, until then, when
the runs are listed and its holder is known to be gone (computed, nothing written)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from convsync.store import Ledger
from convsync.store.runs import (
    LOST_LEASE_EXPIRED,
    LOST_LEASE_NOT_HELD,
    LOST_PROCESS_GONE,
    LOST_TAKEN_OVER,
)
from convsync.store.schema import runs

from .factory import NOW

TTL = timedelta(minutes=5)
HOST = socket.gethostname()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    exited = subprocess.Popen(["true"])
    exited.wait()
    return exited.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    alive = subprocess.Popen(["sleep", "60"])
    yield alive.pid
    alive.kill()
    alive.wait()


def start(
    ledger: Ledger, db: Engine, run_id: str, at: datetime, pid: int, host: str = HOST
) -> None:
    """A run started by process ``host:pid`` (``start_run`` records this process)."""
    ledger.start_run(run_id=run_id, trigger="schedule", started_at=at)
    with db.begin() as connection:
        connection.execute(runs.update().where(runs.c.run_id == run_id).values(host=host, pid=pid))


def stored(db: Engine, run_id: str) -> tuple[str, datetime | None, object]:
    with db.connect() as connection:
        row = connection.execute(
            sa.select(runs.c.status, runs.c.finished_at, runs.c.summary).where(
                runs.c.run_id == run_id
            )
        ).one()
    return row.status, row.finished_at, row.summary


def by_id(ledger: Ledger) -> dict[str, tuple[str, str | None, datetime | None]]:
    return {r.run_id: (r.status, r.lost, r.last_seen) for r in ledger.recent_runs()}


def test_taking_over_a_dead_holders_lease_interrupts_its_running_run(
    ledger: Ledger, db: Engine, dead_pid: int
) -> None:
    stale = f"{HOST}:{dead_pid}:dead"
    assert ledger.acquire_lease("sync", stale, TTL, NOW)
    start(ledger, db, "done", NOW - timedelta(hours=1), dead_pid)
    ledger.finish_run(run_id="done", status="ok", finished_at=NOW, summary={"sources": {}})
    start(ledger, db, "killed", NOW + timedelta(seconds=1), dead_pid)
    start(ledger, db, "elsewhere", NOW + timedelta(seconds=2), 4242, host="other-host")
    # the heartbeat renewed the lease at NOW + 100 s; the process died after that
    assert ledger.renew_lease("sync", stale, TTL, NOW + timedelta(seconds=100))
    later = NOW + timedelta(minutes=3)
    assert ledger.take_over_lease("sync", stale, f"{HOST}:{os.getpid()}:new", TTL, later)

    seen = NOW + timedelta(seconds=100)
    status, finished, summary = stored(db, "killed")
    assert (status, finished) == ("interrupted", seen)
    assert summary == {
        "lost": {
            "reason": LOST_TAKEN_OVER,
            "holder": stale,
            "last_seen": seen.isoformat(),
            "taken_by": f"{HOST}:{os.getpid()}:new",
            "at": later.isoformat(),
        }
    }
    assert stored(db, "done")[0] == "ok"  # finished runs and other processes' runs stay
    assert stored(db, "elsewhere")[0] == "running"
    listed = {r.run_id: r for r in ledger.recent_runs()}
    killed = listed["killed"]
    assert (killed.status, killed.lost, killed.last_seen) == ("interrupted", LOST_TAKEN_OVER, seen)
    assert killed.finished_at == seen
    assert (listed["done"].lost, listed["done"].last_seen) == (None, None)


def test_taking_over_a_lease_someone_else_holds_now_changes_no_run(
    ledger: Ledger, db: Engine, dead_pid: int
) -> None:
    stale = f"{HOST}:{dead_pid}:dead"
    start(ledger, db, "r", NOW, dead_pid)
    assert ledger.acquire_lease("sync", "other:1:x", TTL, NOW)
    assert not ledger.take_over_lease("sync", stale, "me:2:y", TTL, NOW)
    assert stored(db, "r")[0] == "running"


def test_an_expired_lease_taken_by_another_holder_interrupts_the_old_holders_run(
    ledger: Ledger, db: Engine
) -> None:
    old = "worker-7:31:aaaa"  # another host: only its lease's expiry tells it stopped
    assert ledger.acquire_lease("sync", old, TTL, NOW)
    start(ledger, db, "r", NOW, 31, host="worker-7")
    assert ledger.acquire_lease("sync", old, TTL, NOW + timedelta(minutes=1))  # renewal
    assert stored(db, "r")[0] == "running"
    assert not ledger.acquire_lease("sync", "worker-8:5:b", TTL, NOW + timedelta(minutes=5))
    assert stored(db, "r")[0] == "running"  # a refused acquire interrupts nothing
    assert ledger.acquire_lease("sync", "worker-8:5:b", TTL, NOW + timedelta(minutes=6))
    status, finished, summary = stored(db, "r")
    assert (status, finished) == ("interrupted", NOW + timedelta(minutes=1))
    assert isinstance(summary, dict) and summary["lost"]["reason"] == LOST_LEASE_EXPIRED


def test_a_released_lease_taken_again_interrupts_nothing(ledger: Ledger, db: Engine) -> None:
    mine = f"{HOST}:{os.getpid()}:a"
    assert ledger.acquire_lease("sync", mine, TTL, NOW)
    start(ledger, db, "r", NOW, os.getpid())
    ledger.finish_run(run_id="r", status="ok", finished_at=NOW, summary={})
    ledger.release_lease("sync", mine)
    assert ledger.acquire_lease("sync", "worker-8:5:b", TTL, NOW + timedelta(minutes=1))
    assert stored(db, "r")[0] == "ok"


def test_a_run_that_finishes_after_all_keeps_its_real_status(ledger: Ledger, db: Engine) -> None:
    """A process frozen past the lease's TTL lost it, but it finishes its run."""
    assert ledger.acquire_lease("sync", "worker-7:31:a", TTL, NOW)
    start(ledger, db, "r", NOW, 31, host="worker-7")
    assert ledger.acquire_lease("sync", "worker-8:5:b", TTL, NOW + timedelta(minutes=6))
    assert stored(db, "r")[0] == "interrupted"
    ledger.finish_run(run_id="r", status="ok", finished_at=NOW + timedelta(minutes=7), summary={})
    [run] = ledger.recent_runs()
    assert (run.status, run.lost, run.last_seen) == ("ok", None, None)


def test_listing_shows_runs_whose_process_is_gone_interrupted_without_writing(
    ledger: Ledger, db: Engine, dead_pid: int, live_pid: int
) -> None:
    now = datetime.now(UTC)
    start(ledger, db, "dead", now - timedelta(minutes=2), dead_pid)
    # held by the dead process, renewed 30 s ago, not expired: nobody took it over yet
    assert ledger.acquire_lease("sync", f"{HOST}:{dead_pid}:d", TTL, now - timedelta(seconds=30))
    assert by_id(ledger) == {
        "dead": ("interrupted", LOST_PROCESS_GONE, now - timedelta(seconds=30))
    }
    assert stored(db, "dead")[0] == "running"  # computed only

    ledger.release_lease("sync", f"{HOST}:{dead_pid}:d")
    start(ledger, db, "live", now - timedelta(minutes=1), live_pid)
    assert ledger.acquire_lease("sync", f"{HOST}:{live_pid}:l", TTL, now)
    assert by_id(ledger) == {
        "dead": ("interrupted", LOST_LEASE_NOT_HELD, None),  # not its lease: seen when?
        "live": ("running", None, None),
    }


def test_listing_a_run_whose_lease_expired_or_another_host_holds(
    ledger: Ledger, db: Engine
) -> None:
    now = datetime.now(UTC)
    start(ledger, db, "far", now - timedelta(minutes=20), 31, host="worker-7")
    # another host's process: alive as far as anyone here can tell, while it renews
    assert ledger.acquire_lease("sync", "worker-7:31:a", TTL, now - timedelta(minutes=4))
    assert by_id(ledger) == {"far": ("running", None, None)}
    ledger.release_lease("sync", "worker-7:31:a")
    assert ledger.acquire_lease("sync", "worker-7:31:a", TTL, now - timedelta(minutes=6))
    assert by_id(ledger) == {"far": ("interrupted", LOST_LEASE_EXPIRED, now - timedelta(minutes=6))}


def test_of_two_running_rows_of_one_process_only_the_newest_runs(
    ledger: Ledger, db: Engine, live_pid: int
) -> None:
    """pid 1 of a container restarted on the same host name: its earlier life's run is
    not the one the lease is held for."""
    now = datetime.now(UTC)
    start(ledger, db, "old", now - timedelta(hours=1), live_pid)
    start(ledger, db, "new", now - timedelta(minutes=1), live_pid)
    assert ledger.acquire_lease("sync", f"{HOST}:{live_pid}:n", TTL, now)
    assert by_id(ledger) == {
        "new": ("running", None, None),
        "old": ("interrupted", LOST_LEASE_NOT_HELD, None),
    }
