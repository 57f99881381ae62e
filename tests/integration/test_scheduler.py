"""`convsync run`: the schedule, the run lease between replicas, health, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from convsync.config.loader import load_config
from convsync.service.scheduler import LeaseBusy, SyncScheduler, run_lease
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncPipeline

from .conftest import write_orders
from .fakes import ScriptedDestination
from .test_cli import CONVSYNC


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_tick_skips_while_another_replica_holds_the_lease(workdir: Path, ledger: Ledger) -> None:
    write_orders(workdir, ["A-1,2026-11-20 10:00:00,paid,1,RUB,,,c1,"])
    loaded = load_config(workdir / "convsync.yaml", env={})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    scheduler = SyncScheduler(
        loaded, ledger, SyncPipeline(loaded, ledger, destinations={"vk": dest})
    )
    with run_lease(ledger, "other-replica"):
        scheduler.tick()
        assert scheduler.runs == 0 and dest.batches == []
        try:
            with run_lease(ledger, "third"):
                raise AssertionError("the lease was taken twice")
        except LeaseBusy:
            pass
    scheduler.tick()  # released: this replica runs now
    assert scheduler.runs == 1 and dest.sent_orders == ["A-1"]
    assert scheduler.health()["last_run"]["status"] == "ok"


def test_an_expired_lease_of_a_dead_process_is_taken_over(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    assert ledger.acquire_lease(
        "sync", "dead-replica", timedelta(minutes=5), now - timedelta(minutes=6)
    )
    with run_lease(ledger, "alive"):
        pass


def test_run_serves_health_and_stops_cleanly_on_sigterm(workdir: Path, tmp_path: Path) -> None:
    # a run on the real clock: an order of yesterday, within VK's 30 days
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    write_orders(workdir, [f"A-1,{day} 10:00:00,paid,1,RUB,,,c1,"])
    db = tmp_path / "run.db"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSYNC_")}
    env.update(
        CONVSYNC_CONFIG=str(workdir / "convsync.yaml"),
        CONVSYNC_DATABASE_URL=f"sqlite:///{db}",
        CONVSYNC_HEALTH_HOST="127.0.0.1",
        CONVSYNC_HEALTH_PORT=str(port),
        CONVSYNC_LOG_FORMAT="json",
    )
    proc = subprocess.Popen(
        [CONVSYNC, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        healthy = None
        while time.monotonic() < deadline:
            healthy = subprocess.run(
                [CONVSYNC, "health"], env=env, capture_output=True, text=True, timeout=30
            )
            if healthy.stdout.startswith("{") and json.loads(healthy.stdout)["runs"] >= 1:
                break
            time.sleep(0.3)
        assert healthy is not None and healthy.stdout.startswith("{"), healthy and healthy.stdout
        status = json.loads(healthy.stdout)
        # the config's VK tracker is a closed port: the only destination stopped, so the
        # run failed and the endpoint says so (503), with the reason
        assert healthy.returncode == 1 and status["next_run"]
        assert (status["status"], status["healthy"]) == ("failed", False)
        assert status["last_run"]["status"] == "failed"
        vk = status["destinations"]["vk"]
        assert vk["status"] == "failed" and vk["reason"].startswith("tracker_unreachable: ")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert "scheduler started" in events and "run finished" in events
    assert events[-1] == "scheduler stopped"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM conversions").fetchone()[0] == 1
        holders = conn.execute("SELECT holder, expires_at FROM leases").fetchall()
    assert (
        all(h is None or e is None or e < datetime.now(UTC).isoformat() for h, e in holders)
        or holders == []
    )
    down = subprocess.run([CONVSYNC, "health"], env=env, capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "no health endpoint" in down.stdout


def test_a_lease_whose_holder_is_gone_is_taken_over_and_a_live_one_is_not(
    ledger: Ledger,
) -> None:
    now = datetime.now(UTC)
    host = socket.gethostname()
    mine = f"{host}:{os.getpid()}:mine"
    exited = subprocess.Popen(["true"])
    exited.wait()
    alive = subprocess.Popen(["sleep", "30"])

    def held_by(stale: str) -> None:
        ledger.release_lease("sync", ledger.lease_holder("sync") or "")
        assert ledger.acquire_lease("sync", stale, timedelta(minutes=5), now)

    try:
        # gone: a pid that exited; this pid in an earlier life (pid 1 after a restart)
        for stale in (f"{host}:{exited.pid}:dddd", f"{host}:{os.getpid()}:cccc"):
            held_by(stale)
            with run_lease(ledger, mine):
                assert ledger.lease_holder("sync") == mine
        # not known to be gone: alive on this host, or on another host
        for stale in (f"{host}:{alive.pid}:aaaa", f"other-host:{os.getpid()}:bbbb"):
            held_by(stale)
            with pytest.raises(LeaseBusy, match=stale), run_lease(ledger, mine):
                pass
            assert ledger.lease_holder("sync") == stale
    finally:
        alive.kill()
        alive.wait()
