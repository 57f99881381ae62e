"""D9: a `convsync sync --once` killed mid-batch is listed by `convsync runs` as
``interrupted`` with when it was last seen — computed while nobody has taken its lease
over, written when the next run does — on both databases."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from convsync.store.engine import create, parse_url
from convsync.store.ledger import Ledger
from convsync.store.runs import LOST_PROCESS_GONE, LOST_TAKEN_OVER
from convsync.store.schema import runs
from tests.integration.processes import CONVSYNC, kill_when_held, start_convsync
from tests.vk_fake import FakeVk

from .conftest import shop_env, write_orders

MOSCOW = ZoneInfo("Europe/Moscow")


def stored_status(url: str, run_id: str) -> str:
    opened = create(parse_url(url), read_only=False)
    try:
        with opened.engine.connect() as connection:
            return str(
                connection.execute(
                    sa.select(runs.c.status).where(runs.c.run_id == run_id)
                ).scalar_one()
            )
    finally:
        opened.dispose()


def runs_command(shop: Path, url: str) -> str:
    done = subprocess.run(
        [CONVSYNC, "--database-url", url, "runs"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_killed_run_is_listed_interrupted_then_marked_so_by_the_next_run(
    shop: Path, fake: FakeVk, ledger_url: str
) -> None:
    recent = datetime.now(MOSCOW).replace(tzinfo=None) - timedelta(hours=3)
    write_orders(shop, [(f"A-{i}", f"click{i}") for i in range(3)], recent)
    env = shop_env(fake)
    hold = fake.tracker.hold()
    before = datetime.now(UTC)
    first = start_convsync(shop, env, ledger_url, "sync", "--once")
    kill_when_held(first, lambda timeout: hold.wait_for(3, timeout), hold.release)

    # nobody took the lease over yet: computed from the lease (its holder's pid is gone)
    with Ledger.open(ledger_url) as ledger:
        [killed] = ledger.recent_runs()
    assert (killed.status, killed.lost, killed.pid) == ("interrupted", LOST_PROCESS_GONE, first.pid)
    assert killed.last_seen is not None and before - timedelta(seconds=1) <= killed.last_seen
    assert killed.last_seen <= datetime.now(UTC)  # its lease was acquired, never renewed
    assert stored_status(ledger_url, killed.run_id) == "running"
    listed = runs_command(shop, ledger_url)
    assert killed.run_id in listed and "interrupted" in listed and "its process died" in listed
    assert f"last seen {killed.last_seen:%Y-%m-%d %H:%M:%S}" in listed

    time.sleep(1.5)  # the delivery lease (1 s) runs out
    second = start_convsync(shop, env, ledger_url, "sync", "--once")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "took over the sync lease of a process that is gone" in err

    # written by the takeover, in the transaction that took the lease
    assert stored_status(ledger_url, killed.run_id) == "interrupted"
    with Ledger.open(ledger_url) as ledger:
        newer, old = ledger.recent_runs()
    assert (newer.status, newer.lost) == ("ok", None)
    assert (old.run_id, old.status, old.lost) == (killed.run_id, "interrupted", LOST_TAKEN_OVER)
    assert old.last_seen == killed.last_seen == old.finished_at
    assert old.summary is not None
    assert old.summary["lost"]["taken_by"].split(":")[1] == str(second.pid)
    listed = runs_command(shop, ledger_url)
    assert "its process died; the lease was taken over" in listed
    assert f"last seen {killed.last_seen:%Y-%m-%d %H:%M:%S}" in listed
    assert " ok " in listed
