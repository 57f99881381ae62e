"""Issue 12 (D1): Metrica stores an upload but its answer is lost (504), and its list of
uploads answers 503 to every look-up. Whole sync runs against the fake Metrica API on
both databases — each run a new ledger connection and a new pipeline (a restart) — and
real ``convsync`` processes, one killed after the 504: the conversions end up in exactly
one file at Metrica, no row goes in a second file while the first's fate is unknown, the
ledger says ``delivered: recovered`` once the list answers, and ``uncertain`` (for
``convsync retry --uncertain``) after days of silence."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from convsync.config.loader import load_config
from convsync.core.identity import conversion_key
from convsync.core.model import DeliveryState
from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.store.engine import parse_url
from convsync.store.ledger import Ledger
from convsync.store.schema import deliveries
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from convsync.sync.summary import RunSummary
from tests.clock import Clock
from tests.integration.metrica.shop import env_of, make_shop, write_calls, write_orders
from tests.integration.processes import kill_when_held, start_convsync
from tests.metrica_fake import FakeMetrica, error, fake_metrica

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SINCE = T0 - timedelta(days=30)
LIST_DOWN = error("backend_error", endpoint="uploadings")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path, "{max_attempts: 5, retries_in_run: 2, retry_backoff: 5s, lease: 2s}")


@pytest.fixture
def fake() -> Any:
    with fake_metrica() as started:
        yield started


def advancing(clock: Clock) -> Callable[[float], None]:
    """The run's waits between tries move the clock: a try's answer comes later."""

    def sleep(seconds: float) -> None:
        clock.now += timedelta(seconds=seconds)

    return sleep


def sync(shop: Path, url: str, fake: FakeMetrica, clock: Clock) -> RunSummary:
    """One run, as after a restart: a new ledger connection, a new pipeline."""
    loaded = load_config(shop / "convsync.yaml", env=env_of(fake))
    dest = MetricaDestination("metrica", loaded.app.destinations["metrica"])  # type: ignore[arg-type]
    dest.clock = clock
    with Ledger.open(url) as ledger:
        try:
            pipeline = SyncPipeline(
                loaded,
                ledger,
                destinations={"metrica": dest},
                clock=clock,
                sleep=advancing(clock),
            )
            return pipeline.run(SyncOptions())
        finally:
            dest.close()


def keys(orders: range) -> list[str]:
    return [conversion_key("shop", f"A-{i}", "purchase") for i in orders]


def states(url: str, orders: range) -> Counter[str]:
    with Ledger.open(url) as ledger:
        return Counter(str(s) for s in ledger.delivery_states(keys(orders)).values())


def rows_of(url: str) -> list[sa.Row[Any]]:
    """Every delivery: state, code, batch, lease, retry_at, attempts."""
    engine = sa.create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            query = sa.select(
                deliveries.c.id,
                deliveries.c.goal,
                deliveries.c.state,
                deliveries.c.code,
                deliveries.c.batch_id,
                deliveries.c.lease_until,
                deliveries.c.retry_at,
                deliveries.c.attempts,
            ).order_by(deliveries.c.id)
            return list(connection.execute(query))
    finally:
        engine.dispose()


def files_of(fake: FakeMetrica) -> Counter[str]:
    """How many stored files at Metrica hold each ClientId."""
    return Counter(line["ClientId"] for u in fake.uploads.values() for line in u.lines)


def lookups(fake: FakeMetrica) -> int:
    """Reads of the list of uploads (the one-line token check of each run aside)."""
    return sum(c.query.get("limit") != "1" for c in fake.calls_of("uploadings"))


# --- whole runs with restarts ----------------------------------------------------------


def test_a_stored_upload_whose_answer_and_list_fail_goes_once_and_is_recovered(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    write_orders(shop, 4, first=0, name="from-0.csv")
    clock = Clock(T0)
    fake.clock = clock
    fake.script(error("timeout", store=True))  # Metrica stores the file, answers 504
    fake.fail_every(LIST_DOWN, spare_access_check=True)  # and no look-up gets through

    first = sync(shop, ledger_url, fake, clock)
    assert first.status == "ok"
    assert first.destinations["metrica"]["unclear"] == 4
    assert len(fake.calls_of("upload")) == 1 and len(fake.uploads) == 1
    assert lookups(fake) == 2  # the run's two retries looked before sending again
    rows = rows_of(ledger_url)
    [batch] = {r.batch_id for r in rows}
    assert fake.calls_of("upload")[0].query["comment"] == batch
    assert {(r.state, r.code, r.attempts) for r in rows} == {("sending", "upload_unclear", 0)}
    # no claim can take them before their next look-up: 5 minutes after the last answer
    [lease] = {r.lease_until for r in rows}
    assert lease == clock.now + timedelta(minutes=5) == rows[0].retry_at
    with Ledger.open(ledger_url) as ledger:
        [record] = ledger.unclear_uploads(destination="metrica")
        assert (record.batch_id, record.status, record.external_id) == (batch, "UNCLEAR", "")
        assert record.details["comment"] == batch and record.details["lookups"] == 2
        assert record.next_check_at == lease
        failures = ledger.failures(SINCE)
        assert {(f.state, f.code, f.retry_at) for f in failures} == {
            (DeliveryState.SENDING, "upload_unclear", lease)
        }
        message = failures[0].message or ""
        assert f"comment {batch}" in message and "504 timeout" in message
        assert "503 backend_error" in message and "go in no other file" in message
        [upload] = ledger.recent_uploads(SINCE)  # `convsync report` shows it
        assert upload.status == "UNCLEAR" and not upload.final

    # a restart a minute later: new conversions go in a file of their own; the waiting
    # rows are neither looked up (not due) nor sent
    write_orders(shop, 3, first=4, name="from-4.csv")
    clock.now = T0 + timedelta(minutes=1)
    second = sync(shop, ledger_url, fake, clock)
    assert second.destinations["metrica"]["delivered"] == 3
    assert "recovered" not in second.destinations["metrica"]
    assert lookups(fake) == 2 and len(fake.uploads) == 2
    assert states(ledger_url, range(4)) == {"sending": 4}

    # after the lease: looked up, the list still down — they wait longer
    clock.now = T0 + timedelta(minutes=6)
    third = sync(shop, ledger_url, fake, clock)
    assert third.destinations["metrica"]["unclear"] == 4
    assert lookups(fake) == 3 and len(fake.calls_of("upload")) == 2
    assert {r.lease_until for r in rows_of(ledger_url) if r.state == "sending"} == {
        clock.now + timedelta(minutes=6)  # as long as it has been unclear
    }

    # the list answers again: found by its comment, delivered, never sent again
    fake.mend()
    clock.now = T0 + timedelta(minutes=13)
    fourth = sync(shop, ledger_url, fake, clock)
    assert fourth.destinations["metrica"]["delivered"] == 4
    assert fourth.destinations["metrica"]["recovered"] == 4
    assert fourth.destinations["metrica"]["uploads"] == {"UPLOADED": 1}  # followed at once
    assert len(fake.calls_of("upload")) == 2
    assert files_of(fake) == Counter({f"17000000001234{i:05d}": 1 for i in range(7)})
    assert {(r.state, r.code) for r in rows_of(ledger_url) if r.batch_id == batch} == {
        ("delivered", "recovered")
    }
    with Ledger.open(ledger_url) as ledger:
        assert ledger.unclear_uploads(destination="metrica") == []
        assert ledger.failures(SINCE) == []
        first_file = min(fake.uploads)
        [record] = [u for u in ledger.recent_uploads(SINCE) if u.batch_id == batch]
        assert (record.external_id, record.status) == (str(first_file), "UPLOADED")

    # and from there on it is followed like any other upload
    fake.process()
    clock.now = T0 + timedelta(hours=1)
    sync(shop, ledger_url, fake, clock)
    assert states(ledger_url, range(7)) == {"matched": 7}


def test_after_days_of_silence_the_rows_are_uncertain_and_retry_sends_them_once(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    write_orders(shop, 3, first=0, name="from-0.csv")
    clock = Clock(T0)
    fake.clock = clock
    fake.script(error("timeout"))  # the answer lost — and, as it turns out, nothing stored
    fake.fail_every(LIST_DOWN, spare_access_check=True)
    sync(shop, ledger_url, fake, clock)
    runs = 1
    # a run every two hours, the list never answering
    while states(ledger_url, range(3)) == {"sending": 3}:
        clock.now += timedelta(hours=2)
        summary = sync(shop, ledger_url, fake, clock)
        runs += 1
        assert runs < 100
    assert clock.now >= T0 + timedelta(days=3)
    assert summary.destinations["metrica"]["uncertain"] == 3
    assert len(fake.calls_of("upload")) == 1  # never sent again meanwhile
    assert 12 <= lookups(fake) <= 20  # looked up ever less often, not every run
    with Ledger.open(ledger_url) as ledger:
        failures = ledger.failures(SINCE)
        assert {(f.state, f.code) for f in failures} == {
            (DeliveryState.UNCERTAIN, "upload_unclear")
        }  # the given-up upload is not listed again beside its rows
        message = failures[0].message or ""
        assert "did not say for 3 days" in message
        assert "convsync retry --uncertain --destination metrica" in message
        [record] = ledger.recent_uploads(SINCE)
        assert (record.status, record.final) == ("UNKNOWN", True)
        # the operator checked Metrica: no such upload — `convsync retry --uncertain`
        requeued = ledger.requeue(
            states=[DeliveryState.UNCERTAIN],
            since=SINCE,
            now=clock.now,
            run_id="retry",
            destination="metrica",
        )
        assert requeued == 3
    fake.mend()
    clock.now += timedelta(minutes=1)
    assert sync(shop, ledger_url, fake, clock).destinations["metrica"]["delivered"] == 3
    assert files_of(fake) == Counter({f"17000000001234{i:05d}": 1 for i in range(3)})


def test_an_upload_the_list_does_not_have_is_sent_again_under_the_same_comment(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    write_orders(shop, 2, first=0, name="from-0.csv")
    clock = Clock(T0)
    fake.clock = clock
    fake.script(error("timeout"))  # 504 and nothing stored
    fake.fail_every(LIST_DOWN, spare_access_check=True)
    sync(shop, ledger_url, fake, clock)
    assert fake.uploads == {} and states(ledger_url, range(2)) == {"sending": 2}
    fake.mend()
    clock.now += timedelta(minutes=10)
    summary = sync(shop, ledger_url, fake, clock)
    assert summary.destinations["metrica"]["delivered"] == 2
    first, again = fake.calls_of("upload")
    assert first.query["comment"] == again.query["comment"]  # the batch kept its id
    assert len(fake.uploads) == 1 and files_of(fake) == Counter(
        {f"17000000001234{i:05d}": 1 for i in range(2)}
    )
    with Ledger.open(ledger_url) as ledger:
        # the stand-in record was replaced by the upload's own
        [record] = ledger.recent_uploads(SINCE)
        assert (record.status, record.external_id) == ("UPLOADED", str(next(iter(fake.uploads))))


def test_one_run_with_a_short_backoff_stores_one_file(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    """The trial of the issue: retry_backoff 5s, every upload stored then 504, every list
    read 503 — the run's retries outlast the backoff, and the rows used to be claimed
    again under new batch ids within the same run (4 files)."""
    write_orders(shop, 3, first=0, name="from-0.csv")
    clock = Clock(T0)
    fake.clock = clock
    fake.fail_every(error("timeout", store=True))
    fake.fail_every(LIST_DOWN, spare_access_check=True)
    summary = sync(shop, ledger_url, fake, clock)
    assert clock.now > T0 + timedelta(seconds=5)  # the retries took longer than the backoff
    assert summary.destinations["metrica"]["batches"] == 1
    assert len(fake.calls_of("upload")) == 1 and len(fake.uploads) == 1


def test_backoff_counts_from_the_answer_not_the_start_of_the_send(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    write_orders(shop, 2, first=0, name="from-0.csv")
    clock = Clock(T0)
    fake.clock = clock
    fake.fail_every(error("quota_requests_by_ip"))  # clearly not stored: 429
    summary = sync(shop, ledger_url, fake, clock)
    answered = clock.now
    assert answered == T0 + timedelta(seconds=15)  # waits of 5 s and 10 s between tries
    assert summary.destinations["metrica"]["deferred"] == 2
    assert len(fake.calls_of("upload")) == 3  # the run's tries, not claimed again in it
    assert {(r.state, r.retry_at) for r in rows_of(ledger_url)} == {
        ("deferred", answered + timedelta(seconds=5))
    }


def test_a_mixed_batch_whose_calls_file_is_unclear_keeps_each_uploads_record(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    write_orders(shop, 2, first=0, name="from-0.csv")
    write_calls(shop, 3)
    clock = Clock(T0)
    fake.clock = clock
    fake.script(error("timeout", store=True, after=1))  # the orders go, the calls 504
    fake.fail_every(LIST_DOWN, spare_access_check=True)
    summary = sync(shop, ledger_url, fake, clock)
    assert (
        summary.destinations["metrica"]["delivered"],
        summary.destinations["metrica"]["unclear"],
    ) == (2, 3)
    fake.mend()
    clock.now += timedelta(minutes=10)
    summary = sync(shop, ledger_url, fake, clock)
    assert summary.destinations["metrica"]["recovered"] == 3
    assert len(fake.calls_of("upload")) == 2
    with Ledger.open(ledger_url) as ledger:
        records = ledger.recent_uploads(SINCE)
        [batch] = {r.batch_id for r in records if not r.batch_id.endswith("-calls")}
        assert sorted((r.batch_id, r.details["type"]) for r in records) == [
            (batch, "BASIC"),
            (f"{batch}-calls", "CALLS"),
        ]
    basic_id, calls_id = sorted(fake.uploads)
    fake.process(basic_id)
    fake.process(calls_id, status="LINKAGE_FAILURE")
    clock.now += timedelta(hours=1)
    summary = sync(shop, ledger_url, fake, clock)
    assert summary.destinations["metrica"]["uploads"] == {"PROCESSED": 1, "LINKAGE_FAILURE": 1}
    assert states(ledger_url, range(2)) == {"matched": 2}
    with Ledger.open(ledger_url) as ledger:
        calls = [conversion_key("calls", f"K-{i}", "call") for i in range(3)]
        assert {str(s) for s in ledger.delivery_states(calls).values()} == {"unmatched"}


def test_a_daily_quota_on_the_lookup_keeps_the_rows_waiting_not_deferred(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    write_orders(shop, 2, first=0, name="from-0.csv")
    clock = Clock(T0)
    fake.clock = clock
    fake.script(
        error("timeout", store=True),
        error("quota_requests_by_uid", endpoint="uploadings", after=1),  # after the check
    )
    summary = sync(shop, ledger_url, fake, clock)
    assert summary.destinations["metrica"]["stopped"].startswith("quota_requests_by_uid")
    assert summary.destinations["metrica"]["unclear"] == 2
    assert states(ledger_url, range(2)) == {"sending": 2}  # not deferred to 00:00 UTC
    clock.now = datetime(2026, 11, 22, 0, 10, tzinfo=UTC)  # the next day: found
    assert sync(shop, ledger_url, fake, clock).destinations["metrica"]["recovered"] == 2
    assert len(fake.uploads) == 1 and states(ledger_url, range(2)) == {"delivered": 2}


def test_rows_settled_before_their_lookup_close_the_upload_for_a_person_to_check(
    shop: Path, ledger_url: str, fake: FakeMetrica
) -> None:
    write_orders(
        shop, 2, first=0, name="from-0.csv", at="2026-11-01 10:00:00"
    )  # 20 days old: still matched
    clock = Clock(T0)
    fake.clock = clock
    fake.script(error("timeout", store=True))
    fake.fail_every(LIST_DOWN, spare_access_check=True)
    sync(shop, ledger_url, fake, clock)
    clock.now += timedelta(days=1)  # at the look-up, pre-flight refuses them: too old
    summary = sync(shop, ledger_url, fake, clock)
    assert summary.destinations["metrica"]["rejected_by_code"] == {"outside_matching_window": 2}
    assert len(fake.calls_of("upload")) == 1
    with Ledger.open(ledger_url) as ledger:
        assert ledger.unclear_uploads(destination="metrica") == []
        [upload] = ledger.recent_uploads(SINCE)
        assert (upload.status, upload.final) == ("UNCLEAR", True)
        failures = ledger.failures(SINCE)
        assert sorted(f.kind for f in failures) == ["delivery", "delivery", "upload"]
        [closed] = [f for f in failures if f.kind == "upload"]
        assert "look the upload up by its comment" in (closed.message or "")


# --- real processes --------------------------------------------------------------------


def _time_passes(url: str) -> None:
    """The waiting rows' next look-up is due (as if the minutes had passed)."""
    engine = sa.create_engine(parse_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                deliveries.update()
                .where(deliveries.c.state == "sending")
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        engine.dispose()


def _run(shop: Path, fake: FakeMetrica, db: str) -> str:
    process = start_convsync(shop, env_of(fake), db)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return err


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_process_killed_after_the_504_never_sends_the_file_again(
    shop: Path, fake: FakeMetrica, database: str, request: pytest.FixtureRequest
) -> None:
    db = request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    write_orders(shop, 4, first=0, name="from-0.csv", at=yesterday)
    fake.script(error("timeout", store=True, retry_after="1"))
    fake.fail_every(LIST_DOWN, spare_access_check=True)
    held = fake.hold_next("uploadings")  # the look-up after the 504
    first = start_convsync(shop, env_of(fake), db)
    # killed after Metrica stored the file and answered 504, before the ledger noted it
    kill_when_held(first, held.accepted.wait, held.release)
    assert len(fake.uploads) == 1
    assert {(r.state, r.code) for r in rows_of(db)} == {("sending", None)}
    time.sleep(2.5)  # the claim's lease (2 s) runs out

    # recovered while the list is still down: the rows wait, and nothing is sent
    err = _run(shop, fake, db)
    assert "recovering deliveries left in sending by an interrupted run" in err
    assert "upload of unclear fate: its rows wait for a look-up" in err
    assert {(r.state, r.code) for r in rows_of(db)} == {("sending", "upload_unclear")}
    with Ledger.open(db) as ledger:
        [record] = ledger.unclear_uploads(destination="metrica")
        assert "stopped before noting Metrica's answer" in record.details["error"]
    looked = lookups(fake)

    # restarted at once: not due, not looked up, not sent
    _run(shop, fake, db)
    assert lookups(fake) == looked and len(fake.calls_of("upload")) == 1

    # minutes later, the list answers: found, delivered, one file
    fake.mend()
    _time_passes(db)
    err = _run(shop, fake, db)
    assert "looking up uploads whose answer was lost" in err
    assert len(fake.calls_of("upload")) == 1 and len(fake.uploads) == 1
    assert {(r.state, r.code) for r in rows_of(db)} == {("delivered", "recovered")}
    with Ledger.open(db) as ledger:
        assert ledger.unclear_uploads(destination="metrica") == []
        [record] = ledger.recent_uploads(datetime(2026, 1, 1, tzinfo=UTC))
        assert record.external_id == str(next(iter(fake.uploads)))
