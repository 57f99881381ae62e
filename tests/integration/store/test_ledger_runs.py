"""Runs and leases."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

import pytest

from convsync.store import Ledger

from .factory import NOW

TTL = timedelta(minutes=5)


def test_runs_are_recorded_and_listed_newest_first(ledger: Ledger) -> None:
    # runs go under the run lease, as the pipeline's do
    assert ledger.acquire_lease("sync", f"{socket.gethostname()}:{os.getpid()}:x", TTL, NOW)
    for i in range(3):
        ledger.start_run(run_id=f"r{i}", trigger="schedule", started_at=NOW + timedelta(minutes=i))
    ledger.finish_run(
        run_id="r1",
        status="ok",
        finished_at=NOW + timedelta(minutes=2),
        summary={"sources": {"shop": {"pulled": 10, "new": 3}}},
    )
    runs = ledger.recent_runs()
    assert [r.run_id for r in runs] == ["r2", "r1", "r0"]
    r1 = runs[1]
    assert (r1.status, r1.trigger, r1.finished_at) == ("ok", "schedule", NOW + timedelta(minutes=2))
    assert r1.summary == {"sources": {"shop": {"pulled": 10, "new": 3}}}
    assert (r1.host, r1.pid) == (socket.gethostname(), os.getpid())
    assert (r1.lost, r1.last_seen) == (None, None)
    # (NOW is in the past: the lease expired, so r2 is not running any more either)
    assert runs[0].finished_at is None
    assert [r.run_id for r in ledger.recent_runs(limit=1)] == ["r2"]


def test_bad_run_status_and_unknown_runs_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="trigger"):
        ledger.start_run(run_id="r", trigger="sometimes", started_at=NOW)
    ledger.start_run(run_id="r", trigger="once", started_at=NOW)
    with pytest.raises(ValueError, match="status"):
        ledger.finish_run(run_id="r", status="running", finished_at=NOW, summary={})
    with pytest.raises(KeyError, match="nope"):
        ledger.finish_run(run_id="nope", status="ok", finished_at=NOW, summary={})


def test_pulled_since_sums_run_summaries(ledger: Ledger) -> None:
    summaries: list[dict[str, Any]] = [
        {"sources": {"shop": {"pulled": 10}, "crm": {"pulled": 1}}},
        {"sources": {"shop": {"pulled": 5}}},
        {"sources": {"shop": {"pulled": 100}}},  # too old
        {"no": "sources"},
    ]
    starts = [NOW, NOW + timedelta(hours=1), NOW - timedelta(days=2), NOW]
    for i, (summary, started) in enumerate(zip(summaries, starts, strict=True)):
        ledger.start_run(run_id=f"r{i}", trigger="once", started_at=started)
        ledger.finish_run(run_id=f"r{i}", status="ok", finished_at=started, summary=summary)
    ledger.start_run(run_id="running", trigger="once", started_at=NOW)  # no summary yet
    assert ledger.pulled_since(NOW - timedelta(days=1)) == {"shop": 15, "crm": 1}


def test_a_lease_is_exclusive_until_it_expires(ledger: Ledger) -> None:
    assert ledger.acquire_lease("sync", "a", TTL, NOW)
    assert not ledger.acquire_lease("sync", "b", TTL, NOW + timedelta(minutes=1))
    assert ledger.acquire_lease("sync", "a", TTL, NOW + timedelta(minutes=1))  # already ours
    assert ledger.acquire_lease("other", "b", TTL, NOW)  # names are independent
    # a's re-acquire moved the expiry to NOW + 6 min
    assert not ledger.acquire_lease("sync", "b", TTL, NOW + timedelta(minutes=5, seconds=59))
    assert ledger.acquire_lease("sync", "b", TTL, NOW + timedelta(minutes=6))
    assert not ledger.acquire_lease("sync", "a", TTL, NOW + timedelta(minutes=7))


def test_renew_only_while_held(ledger: Ledger) -> None:
    assert ledger.acquire_lease("sync", "a", TTL, NOW)
    assert ledger.renew_lease("sync", "a", TTL, NOW + timedelta(minutes=4))
    assert not ledger.renew_lease("sync", "b", TTL, NOW + timedelta(minutes=4))
    # expired but nobody took it: still a's
    assert ledger.renew_lease("sync", "a", TTL, NOW + timedelta(minutes=20))
    assert ledger.acquire_lease("sync", "b", TTL, NOW + timedelta(minutes=30))
    assert not ledger.renew_lease("sync", "a", TTL, NOW + timedelta(minutes=31))
    assert not ledger.renew_lease("never", "a", TTL, NOW)


def test_release_frees_the_lease_for_others_only_when_the_holder_releases(
    ledger: Ledger,
) -> None:
    assert ledger.acquire_lease("sync", "a", TTL, NOW)
    ledger.release_lease("sync", "b")  # not b's: no effect
    assert not ledger.acquire_lease("sync", "b", TTL, NOW)
    ledger.release_lease("sync", "a")
    assert ledger.acquire_lease("sync", "b", TTL, NOW)
    assert not ledger.renew_lease("sync", "a", TTL, NOW)


def test_leases_are_shared_between_ledger_instances(ledger: Ledger, ledger_url: str) -> None:
    other = Ledger.open(ledger_url)
    try:
        assert ledger.acquire_lease("sync", "a", TTL, NOW)
        assert not other.acquire_lease("sync", "b", TTL, NOW)
        ledger.release_lease("sync", "a")
        assert other.acquire_lease("sync", "b", TTL, NOW)
    finally:
        other.close()
