"""The log request lifecycle against the fake Logs API: evaluate, create, poll, every
part, clean — and clean (or cancel) on every way out: failed processing, errors, a
timeout, an abandoned pull; quotas, retries, requests left behind by a crash."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from convsync.core.errors import UserError
from convsync.core.model import SourceState
from tests.metrica_logs_fake import FakeMetricaLogs, LogRequest
from tests.unit.sources.contract import pull_all, records_of

from .conftest import build, record_id, seed


def kinds(fake: FakeMetricaLogs) -> list[str]:
    return [c.kind for c in fake.state.calls]


def assert_all_cleaned(fake: FakeMetricaLogs) -> None:
    """Every request the source created was cleaned (or canceled): nothing is left
    holding the counter's storage or queued."""
    created = [c.request_id for c in fake.state.calls_of("create") if c.status == 200]
    assert created, "the test should have created requests"
    let_go = {c.request_id for c in fake.state.calls if c.kind in ("clean", "cancel")
              and c.status == 200}  # fmt: skip
    assert set(created) <= let_go
    assert fake.state.unclean() == []


def test_one_request_from_evaluate_to_clean(fake: FakeMetricaLogs) -> None:
    visits = seed(fake.state, 3)
    source = build(fake)
    records = records_of(pull_all(source))
    assert sorted(r.record_id for r in records) == sorted(record_id(v) for v in visits)
    assert kinds(fake) == ["counter", "list", "evaluate", "create", "info", "download", "clean"]
    create = fake.state.calls_of("create")[0].query
    yesterday = fake.state.today() - timedelta(days=1)
    assert create["date2"] == yesterday.isoformat()
    assert create["date1"] == (yesterday - timedelta(days=29)).isoformat()
    assert create["source"] == "visits" and "attribution" not in create
    assert "ym:s:goalsDateTime" in create["fields"].split(",")
    assert fake.state.calls_of("evaluate")[0].query == create
    assert source.requests == {"counter": 1, "list": 1, "evaluate": 1, "create": 1, "info": 1,
                               "download": 1, "clean": 1}  # fmt: skip
    assert_all_cleaned(fake)


def test_every_part_is_downloaded_and_the_request_cleaned(fake: FakeMetricaLogs) -> None:
    visits = seed(fake.state, 7)
    fake.state.rows_per_part = 3
    fake.state.polls_to_process = 4
    records = records_of(pull_all(build(fake)))
    assert sorted(r.record_id for r in records) == sorted(record_id(v) for v in visits)
    downloads = fake.state.calls_of("download")
    assert [c.query["part"] for c in downloads] == ["0", "1", "2"]
    assert len(fake.state.calls_of("info")) == 5
    assert_all_cleaned(fake)


def test_a_broken_download_resumes_without_repeating_rows(fake: FakeMetricaLogs) -> None:
    visits = seed(fake.state, 40)
    fake.state.break_downloads = 1
    records = records_of(pull_all(build(fake)))
    assert sorted(r.record_id for r in records) == sorted(record_id(v) for v in visits)
    assert len(fake.state.calls_of("download")) == 2
    assert_all_cleaned(fake)


def test_processing_failed_is_cleaned_and_created_once_more(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 2)
    fake.state.fail_next = 1
    assert len(records_of(pull_all(build(fake)))) == 2
    first, second = fake.state.calls_of("create")
    assert fake.state.requests[first.request_id or 0].status == "cleaned_by_user"
    assert [c.request_id for c in fake.state.calls_of("clean")] == [first.request_id,
                                                                    second.request_id]  # fmt: skip
    assert_all_cleaned(fake)


def test_processing_failed_twice_stops_and_leaves_nothing_behind(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 2)
    fake.state.fail_next = 2
    with pytest.raises(UserError, match=r"sources\.web: .*processing_failed.*next run"):
        pull_all(build(fake))
    assert len(fake.state.calls_of("create")) == 2
    assert fake.state.calls_of("download") == []
    assert_all_cleaned(fake)


def test_a_request_not_ready_in_time_is_canceled(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 2)
    fake.state.polls_to_process = 10_000
    source = build(fake, poll_interval="10s", processing_timeout="5m")
    waits: list[float] = []
    source.sleep = waits.append  # type: ignore[method-assign]
    with pytest.raises(UserError, match=r"not ready after 0:05:00 .*canceled"):
        pull_all(source)
    assert sum(waits) >= 300 and waits[:3] == [10.0, 20.0, 40.0] and max(waits) == 60.0
    assert [c.status for c in fake.state.calls_of("cancel")] == [200]
    assert_all_cleaned(fake)


def test_a_failing_download_still_cleans(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 2)
    fake.state.fail("download", 503, "backend_error", times=99)
    with pytest.raises(UserError, match=r"did not answer GET .*/download after 5 tries"):
        pull_all(build(fake))
    assert len(fake.state.calls_of("download")) == 5
    assert_all_cleaned(fake)


def test_polling_errors_cancel_the_request(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 2)
    fake.state.fail("info", 500, times=5)
    with pytest.raises(UserError, match="did not answer GET"):
        pull_all(build(fake))
    assert_all_cleaned(fake)


def test_an_abandoned_pull_cleans_its_request(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 5)
    pulled = build(fake, chunk_size=2).pull(SourceState())
    first = next(pulled)
    assert len(first.records) == 2 and first.cursor is None
    assert fake.state.calls_of("clean") == []
    pulled.close()  # the run stops (a signal) after the first chunk
    assert_all_cleaned(fake)


def test_rate_limits_and_server_errors_are_retried(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 3)
    fake.state.fail("create", 429, "quota_requests_by_ip", retry_after="3")
    fake.state.fail("evaluate", 429, "quota_parallel_requests")
    fake.state.fail("download", 502, times=2)
    source = build(fake)
    waits: list[float] = []
    source.sleep = waits.append  # type: ignore[method-assign]
    assert len(records_of(pull_all(source))) == 3
    assert 3.0 in waits  # Retry-After honoured
    assert [c.status for c in fake.state.calls_of("create")] == [429, 200]
    assert [c.status for c in fake.state.calls_of("download")] == [502, 502, 200]
    assert_all_cleaned(fake)


def test_the_daily_quota_stops_at_once_with_a_clear_message(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 1)
    fake.state.fail("download", 429, "quota_requests_by_uid")
    with pytest.raises(UserError, match=r"sources\.web: .*daily request quota.*00:00 UTC"):
        pull_all(build(fake))
    assert len(fake.state.calls_of("download")) == 1
    assert_all_cleaned(fake)


def test_a_refused_token_names_the_config_key(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 1)
    source = build(fake)
    fake.state.token = "y0_another-token"
    with pytest.raises(UserError, match=r"sources\.web\.token: .*403 invalid_token"):
        pull_all(source)
    problems, _ = source.check()
    assert problems and "sources.web.token" in problems[0]


def test_an_unknown_field_is_a_user_error_quoting_metrica(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 1)
    fake.state.unknown_fields = {"ym:s:goalsCurrency"}
    with pytest.raises(
        UserError, match=r"400 invalid_parameter: Неизвестное поле: ym:s:goalsCurrency"
    ):
        pull_all(build(fake))
    assert fake.state.calls_of("create") == []


def test_evaluate_shortens_requests_and_a_full_storage_stops(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 1, days_back=2)
    fake.state.max_days = 2
    source = build(fake, start_date=(fake.state.today() - timedelta(days=5)).isoformat())
    assert len(records_of(pull_all(source))) == 1
    spans = [(c.query["date1"], c.query["date2"]) for c in fake.state.calls_of("create")]
    today = fake.state.today()
    assert spans == [
        ((today - timedelta(days=5)).isoformat(), (today - timedelta(days=4)).isoformat()),
        ((today - timedelta(days=3)).isoformat(), (today - timedelta(days=2)).isoformat()),
        ((today - timedelta(days=1)).isoformat(), (today - timedelta(days=1)).isoformat()),
    ]
    assert_all_cleaned(fake)
    fake.state.storage_limit = 0
    with pytest.raises(UserError, match="10 GB of stored logs"):
        pull_all(build(fake, reread_every=0))


def test_requests_left_behind_are_reused_or_removed(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 2)
    source = build(fake)
    pull_all(source)  # learns the field list the source asks for
    fields = fake.state.calls_of("create")[0].query["fields"].split(",")
    yesterday = fake.state.today() - timedelta(days=1)
    first = yesterday - timedelta(days=29)
    state = fake.state

    def left(rid: int, d1: str, d2: str, status: str, fields: list[str] = fields) -> None:
        state.requests[rid] = LogRequest(rid, d1, d2, fields, "LASTSIGN", status=status)
        if status == "processed":
            state.requests[rid].parts = state._parts(state.requests[rid])

    left(1, first.isoformat(), yesterday.isoformat(), "processed")  # what the pull needs
    left(2, "2026-01-01", "2026-01-02", "processed")  # stale
    left(3, "2026-01-03", "2026-01-04", "created")  # stale, queued
    left(4, "2026-01-01", "2026-01-02", "processed", fields=["ym:s:visitID"])  # not ours
    state.calls.clear()
    records = records_of(pull_all(build(fake)))
    assert len(records) == 2
    assert state.calls_of("create") == []  # reused request 1
    assert {c.request_id for c in state.calls_of("download")} == {1}
    assert {c.request_id: c.kind for c in state.calls if c.kind in ("clean", "cancel")} == {
        1: "clean", 2: "clean", 3: "cancel"}  # fmt: skip
    assert state.requests[4].status == "processed"


def test_requests_keep_to_10_a_second(fake: FakeMetricaLogs) -> None:
    for back in (1, 2, 3, 4):
        seed(fake.state, 1, start=back, days_back=back)
    fake.state.polls_to_process = 0
    source = build(fake, rate=None, max_days_per_request=1,
                   start_date=(fake.state.today() - timedelta(days=4)).isoformat())  # fmt: skip
    assert len(records_of(pull_all(source))) == 4
    times = [c.at for c in fake.state.calls]
    assert len(times) > 20
    for i, start in enumerate(times):  # no second-long window holds more than 10
        assert sum(1 for t in times[i:] if t - start < 1.0) <= 10


def test_sources_sharing_a_token_keep_to_3_requests_at_once(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 30)
    fake.state.download_delay = 0.2
    # different attribution models: no source takes another's requests for its own
    models = ["FIRST", "LAST", "LASTSIGN", "AUTOMATIC", "CROSS_DEVICE_LAST"]
    sources = [build(fake, name=f"web{n}", attribution=m) for n, m in enumerate(models)]
    errors: list[BaseException] = []

    def pull(n: int) -> None:
        try:
            pull_all(sources[n])
        except UserError as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=pull, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake.state.calls_of("download")) == 5
    assert 1 < fake.state.max_in_flight <= 3
