"""Whole sync runs to Yandex.Metrica against the fake Metrica API on 127.0.0.1, with the
ledger on both databases: upload, then later runs reconciling the upload to matched or
unmatched; calls beside orders; 429 then success; a revoked token; and a crash between
the upload and the ledger, recovered by the upload's comment."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from convsync.config.loader import load_config
from convsync.core.identity import conversion_key
from convsync.core.model import DeliveryState
from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from convsync.sync.summary import RunSummary
from tests.clock import Clock
from tests.integration.metrica.shop import env_of, make_shop, write_calls, write_orders
from tests.integration.processes import kill_when_held, start_convsync
from tests.metrica_fake import COUNTER_ID, FakeMetrica, error, fake_metrica

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(
        tmp_path, "{max_attempts: 5, retries_in_run: 1, retry_backoff: 10m, lease: 2s}"
    )


@pytest.fixture
def fake() -> Any:
    with fake_metrica() as started:
        yield started


def sync(
    shop: Path, ledger: Ledger, env: dict[str, str], clock: Clock, sleeps: list[float] | None = None
) -> RunSummary:
    loaded = load_config(shop / "convsync.yaml", env=env)
    dest = MetricaDestination("metrica", loaded.app.destinations["metrica"])  # type: ignore[arg-type]
    dest.clock = clock
    waits = sleeps if sleeps is not None else []
    try:
        pipeline = SyncPipeline(
            loaded, ledger, destinations={"metrica": dest}, clock=clock, sleep=waits.append
        )
        return pipeline.run(SyncOptions())
    finally:
        dest.close()


def states(ledger: Ledger, n: int, goal: str = "purchase", source: str = "shop") -> set[str]:
    prefix = "A" if source == "shop" else "K"
    keys = [conversion_key(source, f"{prefix}-{i}", goal) for i in range(n)]
    return {str(s) for s in ledger.delivery_states(keys).values()}


def test_upload_then_a_later_run_reconciles_it_to_matched(
    shop: Path, ledger: Ledger, fake: FakeMetrica
) -> None:
    write_orders(shop, 3)
    clock = Clock(T0)
    fake.clock = clock
    summary = sync(shop, ledger, env_of(fake), clock)
    assert summary.status == "ok" and summary.exit_code == 0
    assert summary.destinations["metrica"]["delivered"] == 3
    [upload] = fake.calls_of("upload")
    assert len(upload.rows) == 3
    [record] = ledger.recent_uploads(T0 - timedelta(days=1))
    assert record.batch_id == upload.query["comment"]  # the claim's batch id
    assert (record.status, record.final, record.rows) == ("UPLOADED", False, 3)
    assert states(ledger, 3) == {"delivered"}

    clock.now += timedelta(minutes=1)  # not due yet: Metrica is not asked
    sync(shop, ledger, env_of(fake), clock)
    assert fake.calls_of("uploading") == []

    fake.process()
    clock.now += timedelta(minutes=5)
    summary = sync(shop, ledger, env_of(fake), clock)
    assert len(fake.calls_of("uploading")) == 1 and len(fake.calls_of("upload")) == 1
    assert summary.destinations["metrica"]["uploads"] == {"PROCESSED": 1}
    assert states(ledger, 3) == {"matched"}
    [row] = ledger.funnel(T0 - timedelta(days=30))
    assert (row.goal, row.accepted, row.matched, row.unmatched) == ("purchase", 3, 3, 0)
    [done] = ledger.recent_uploads(T0 - timedelta(days=1))
    assert (done.status, done.final, done.details["linked_quantity"]) == ("PROCESSED", True, 3)


def test_linkage_failure_shows_in_failures_with_the_explanation(
    shop: Path, ledger: Ledger, fake: FakeMetrica
) -> None:
    write_orders(shop, 3)
    clock = Clock(T0)
    fake.clock = clock
    sync(shop, ledger, env_of(fake), clock)
    fake.visitors = set()
    fake.process()
    clock.now += timedelta(minutes=5)
    sync(shop, ledger, env_of(fake), clock)
    failures = ledger.failures(T0 - timedelta(days=1))
    assert len(failures) == 3
    assert {(f.state, f.code, f.destination) for f in failures} == {
        (DeliveryState.UNMATCHED, "linkage_failure", "metrica")
    }
    message = failures[0].message or ""
    assert (
        f"None of the 3 rows of upload {next(iter(fake.uploads))} matched a visitor of counter {COUNTER_ID}"
        in message
    )
    assert "_ym_uid" in message
    [row] = ledger.funnel(T0 - timedelta(days=30))
    assert (row.accepted, row.matched, row.unmatched) == (3, 0, 3)


def test_orders_and_calls_of_one_run_go_in_two_files(
    shop: Path, ledger: Ledger, fake: FakeMetrica
) -> None:
    write_orders(shop, 2)
    write_calls(shop, 3)
    clock = Clock(T0)
    fake.clock = clock
    summary = sync(shop, ledger, env_of(fake), clock)
    assert summary.destinations["metrica"]["delivered"] == 5
    basic, calls = fake.calls_of("upload")
    assert (
        calls.query["type"] == "CALLS"
        and calls.query["comment"] == basic.query["comment"] + "calls"
    )
    assert [r["TalkDuration"] for r in calls.rows] == ["10", "11", "12"]
    assert len(basic.rows) == 2
    basic_id, calls_id = sorted(fake.uploads)
    fake.process(basic_id)
    fake.process(calls_id, status="LINKAGE_FAILURE")
    clock.now += timedelta(minutes=5)
    summary = sync(shop, ledger, env_of(fake), clock)
    assert summary.destinations["metrica"]["uploads"] == {"PROCESSED": 1, "LINKAGE_FAILURE": 1}
    # two uploads of one batch: each one's verdict names only its own goals' rows
    assert states(ledger, 2) == {"matched"}
    assert states(ledger, 3, "call", "calls") == {"unmatched"}
    uploads = ledger.recent_uploads(T0 - timedelta(days=1))
    assert sorted((u.details["type"], u.status, u.final) for u in uploads) == [
        ("BASIC", "PROCESSED", True),
        ("CALLS", "LINKAGE_FAILURE", True),
    ]


def test_429_is_retried_in_the_run_after_retry_after(
    shop: Path, ledger: Ledger, fake: FakeMetrica
) -> None:
    write_orders(shop, 2)
    fake.script(error("quota_parallel_requests", retry_after="3"))
    sleeps: list[float] = []
    clock = Clock(T0)
    fake.clock = clock
    summary = sync(shop, ledger, env_of(fake), clock, sleeps)
    assert sleeps == [3.0]
    assert [c.status for c in fake.calls_of("upload")] == [429, 200]
    assert summary.destinations["metrica"]["delivered"] == 2
    assert len(fake.uploads) == 1


def test_a_revoked_token_stops_the_destination_and_keeps_every_row_pending(
    shop: Path, ledger: Ledger, fake: FakeMetrica
) -> None:
    write_orders(shop, 2)
    summary = sync(shop, ledger, env_of(fake, M_TOKEN="y0_revoked-token-000"), Clock(T0))
    stopped = summary.destinations["metrica"]["stopped"]
    assert stopped.startswith("invalid_token: ") and "metrika:offline_data" in stopped
    assert "y0_revoked-token-000" not in stopped
    assert states(ledger, 2) == {"pending"}
    assert [c.endpoint for c in fake.calls] == ["uploadings"]  # connect's check only


# --- a crash between the upload and the ledger --------------------------------------


def _crash_after_the_upload(shop: Path, fake: FakeMetrica, db: str) -> None:
    """A ``sync --once`` killed while Metrica holds its answer to a stored upload."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    write_orders(shop, 4, at=yesterday)
    hold = fake.hold_next()
    first = start_convsync(shop, env_of(fake), db)
    # Metrica has the file; the ledger says sending
    kill_when_held(first, hold.accepted.wait, hold.release)
    assert len(fake.uploads) == 1
    with Ledger.open(db) as ledger:
        assert states(ledger, 4) == {"sending"}
    time.sleep(2.5)  # the lease (2 s) runs out


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_process_killed_after_metrica_took_the_file_does_not_upload_it_again(
    shop: Path, fake: FakeMetrica, database: str, request: pytest.FixtureRequest
) -> None:
    db = request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url")
    _crash_after_the_upload(shop, fake, db)
    second = start_convsync(shop, env_of(fake), db)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "recovering deliveries left in sending" in err
    assert len(fake.calls_of("upload")) == 1  # found by its comment, not sent again
    [listing] = [c for c in fake.calls_of("uploadings") if c.query.get("limit") == "10000"]
    assert listing.status == 200
    with Ledger.open(db) as ledger:
        assert states(ledger, 4) == {"delivered"}
        assert ledger.funnel(datetime(2026, 1, 1, tzinfo=UTC))[0].accepted == 4


def test_a_recovered_upload_is_reconciled_like_any_other(
    shop: Path, sqlite_url: str, fake: FakeMetrica
) -> None:
    _crash_after_the_upload(shop, fake, sqlite_url)
    fake.process()  # Metrica processed the file while convsync was down
    second = start_convsync(shop, env_of(fake), sqlite_url)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    with Ledger.open(sqlite_url) as ledger:
        [record] = ledger.recent_uploads(datetime(2026, 1, 1, tzinfo=UTC))
        assert (record.status, record.final) == ("PROCESSED", True)
        assert states(ledger, 4) == {"matched"}
