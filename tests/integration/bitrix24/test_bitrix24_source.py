"""The Bitrix24 source against the fake portal: mapping, paging, cursor, limits, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from convsync.core.errors import UserError
from convsync.core.model import SourceState
from convsync.sources.bitrix24.client import php_query
from tests.bitrix24_fake import FakeBitrix24, Fault, fake_bitrix24, php_parse
from tests.unit.sources.contract import fold_state, pull_all, records_of, rejections_of

from .conftest import EMAILS, PHONES, Connect, seed, source_for


def test_a_won_deal_becomes_a_record_with_deal_and_contact_fields(
    fake: FakeBitrix24, connect: Connect
) -> None:
    seed(fake.portal, 1)
    [record] = records_of(pull_all(connect()))
    assert record.record_id == "1"
    assert record.origin == "bitrix24 deal 1"
    assert record.occurred_at.isoformat() == "2026-11-20T10:01:00+03:00"
    assert dict(record.fields) == {
        "status": "won",
        "value": "1001.00",
        "currency": "RUB",
        "gclid": "gclid-1",
        "vk_click_id": "rb-1",  # first value of a multiple field
        "email": EMAILS[1],  # first value of the multifield
        "phone": PHONES[1],
        "utm_source": "yandex",
    }  # the empty UF_CRM_YCLID is absent, not ""
    assert record.columns["email"] == "contact.EMAIL"
    assert record.columns["gclid"] == "UF_CRM_GCLID"
    assert record.columns["status"] == "STAGE_SEMANTIC_ID"


def test_only_won_rows_of_the_configured_pipeline_and_stages(
    fake: FakeBitrix24, connect: Connect
) -> None:
    fake.portal.add_win(1, "2026-11-20T10:00:00+03:00", category=0, stage="WON")
    fake.portal.add_win(2, "2026-11-20T10:00:00+03:00", category=1, stage="C1:WON")
    fake.portal.add_win(3, "2026-11-20T10:00:00+03:00", category=1, stage="C1:NEW", semantic="P")
    fake.portal.add_win(4, "2026-11-20T10:00:00+03:00", category=1, stage="C1:PAID")
    assert {r.record_id for r in records_of(pull_all(connect()))} == {"1", "2", "4"}
    only = connect(category_id=1, stage_ids=["C1:WON"])
    assert {r.record_id for r in records_of(pull_all(only))} == {"2"}


def test_unknown_pipeline_names_the_key_and_lists_the_pipelines(connect: Connect) -> None:
    with pytest.raises(UserError, match=r"sources\.crm\.category_id.*0 \(General\), 1 \(Online"):
        pull_all(connect(category_id=7))


@pytest.mark.parametrize("count", [0, 49, 50, 100, 101])
def test_keyset_paging_reads_every_page_and_stops_on_a_short_one(
    fake: FakeBitrix24, connect: Connect, count: int
) -> None:
    seed(fake.portal, count)
    records = records_of(pull_all(connect()))
    assert sorted(int(r.record_id) for r in records) == list(range(1, count + 1))
    pages = fake.portal.requests_for("crm.stagehistory.list")
    # a multiple of 50 needs one more page, which comes back empty
    assert len(pages) == count // 50 + 1
    assert [p.params["filter"][">ID"] for p in pages] == [50 * i for i in range(len(pages))]
    assert all(p.params["start"] == -1 for p in pages)
    # details: one batch for the deals and one for the contacts, whatever the count
    assert len(fake.portal.requests_for("batch")) == (2 if count else 0)


def test_details_of_2500_wins_take_two_batches(fake: FakeBitrix24, connect: Connect) -> None:
    seed(fake.portal, 120)
    pull_all(connect())
    [deals, contacts] = fake.portal.requests_for("batch")
    assert len(deals.params["cmd"]) == 3  # 50 + 50 + 20 ids
    command = php_parse(deals.params["cmd"]["d0"].partition("?")[2])
    assert len(command["filter"]["@ID"]) == 50
    assert {"UF_CRM_GCLID", "UTM_SOURCE", "OPPORTUNITY"} <= set(command["select"])
    assert len(contacts.params["cmd"]) == 3


def test_no_contact_request_when_no_contact_field_is_mapped(
    fake: FakeBitrix24, connect: Connect
) -> None:
    seed(fake.portal, 3)
    pull_all(connect(fields={"gclid": "uf_crm_gclid"}))  # lower case is read too
    assert len(fake.portal.requests_for("batch")) == 1


def test_cursor_follows_the_history_and_a_restart_resumes(
    fake: FakeBitrix24, connect: Connect
) -> None:
    seed(fake.portal, 5)
    chunks = pull_all(connect(chunk_size=2))
    assert [c.cursor["history_id"] for c in chunks if c.cursor] == [2, 4, 5]
    # the pull dies after the first chunk: the next starts after it
    state = fold_state(SourceState(), chunks[:1])
    again = records_of(pull_all(connect(), state))
    assert [r.record_id for r in again] == ["3", "4", "5"]
    seed(fake.portal, 2, start=6)
    state = fold_state(SourceState(), chunks)
    assert [r.record_id for r in records_of(pull_all(connect(), state))] == ["6", "7"]


def test_lookback_re_reads_the_window_before_the_last_win(
    fake: FakeBitrix24, connect: Connect
) -> None:
    fake.portal.add_win(1, "2026-11-20T10:00:00+03:00")
    fake.portal.add_win(2, "2026-11-20T11:00:00+03:00")
    fake.portal.add_win(3, "2026-11-20T11:55:00+03:00")
    source = connect(lookback="10m")
    state = fold_state(SourceState(), pull_all(source))
    assert state.cursor is not None and state.cursor["time"] == "2026-11-20T11:55:00+03:00"
    # a row committed late with an earlier time than the last one seen
    fake.portal.add_win(4, "2026-11-20T11:50:00+03:00")
    again = [r.record_id for r in records_of(pull_all(source, state))]
    assert again == ["3", "4"]  # 3 again: the overlap the ledger absorbs


def test_cursor_time_never_passes_the_start_of_the_pull(
    fake: FakeBitrix24, connect: Connect
) -> None:
    fake.portal.add_win(1, "2026-11-26T10:00:00+03:00")  # after NOW: a skewed clock
    [chunk] = pull_all(connect(lookback="10m"))
    assert chunk.cursor is not None and chunk.cursor["time"] == "2026-11-25T12:00:00+00:00"


def test_start_date_bounds_the_first_run(fake: FakeBitrix24, connect: Connect) -> None:
    seed(fake.portal, 3, day=18)
    seed(fake.portal, 2, start=4, day=22)
    records = records_of(pull_all(connect(start_date="2026-11-21")))
    assert [r.record_id for r in records] == ["4", "5"]
    [first] = fake.portal.requests_for("crm.stagehistory.list")
    assert first.params["filter"][">=CREATED_TIME"] == "2026-11-21T00:00:00+03:00"


def test_a_deal_won_twice_in_one_pull_is_one_record_at_its_first_win(
    fake: FakeBitrix24, connect: Connect
) -> None:
    fake.portal.add_win(1, "2026-11-20T10:00:00+03:00")
    fake.portal.add_win(1, "2026-11-21T10:00:00+03:00")
    [record] = records_of(pull_all(connect()))
    assert record.occurred_at.day == 20


def test_query_limit_exceeded_is_retried_honouring_retry_after(
    fake: FakeBitrix24,
) -> None:
    seed(fake.portal, 3)
    fake.portal.faults.append(
        Fault(
            503, "QUERY_LIMIT_EXCEEDED", "Too many requests", times=2, headers={"Retry-After": "2"}
        )
    )
    fake.portal.faults.append(Fault(500, "INTERNAL_SERVER_ERROR", method="batch"))
    sleeps: list[float] = []
    records = records_of(pull_all(source_for(fake, sleeps=sleeps)))
    assert len(records) == 3
    assert sleeps.count(2.0) == 2
    assert [h.status for h in fake.portal.hits][:4] == [503, 503, 200, 500]


def test_transient_failures_after_the_retries_stop_the_source_clearly(
    fake: FakeBitrix24, connect: Connect
) -> None:
    seed(fake.portal, 3)
    fake.portal.faults.append(Fault(502, "", "Bad gateway", times=100))
    with pytest.raises(UserError, match=r"still failing after 3 attempts.*next run"):
        pull_all(connect(retries=2))
    assert len(fake.portal.hits) == 3


def test_an_error_inside_a_batch_is_retried_when_transient(fake: FakeBitrix24) -> None:
    seed(fake.portal, 2)
    calls = {"n": 0}
    real = fake.portal._method

    def flaky(method: str, params: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
        if method == "crm.deal.list" and calls["n"] == 0:
            calls["n"] += 1
            return 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many"}
        return real(method, params)

    fake.portal._method = flaky  # type: ignore[method-assign]
    assert len(records_of(pull_all(source_for(fake)))) == 2
    assert len(fake.portal.requests_for("batch")) == 3  # deals twice, contacts once


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "expired_token"),
        (401, "INVALID_CREDENTIALS"),
        (401, "NO_AUTH_FOUND"),
        (403, "insufficient_scope"),
    ],
)
def test_refused_credentials_name_the_webhook_url(
    fake: FakeBitrix24, connect: Connect, status: int, code: str
) -> None:
    fake.portal.faults.append(Fault(status, code, "refused", times=10))
    with pytest.raises(UserError, match=r"sources\.crm\.webhook_url") as caught:
        pull_all(connect())
    assert fake.portal.code not in str(caught.value)
    assert len(fake.portal.hits) == 1  # never retried


def test_a_wrong_webhook_code_is_refused_without_quoting_it(fake: FakeBitrix24) -> None:
    source = source_for(fake, webhook_url=fake.webhook_url.replace(fake.portal.code, "wrongcode99"))
    with pytest.raises(UserError, match=r"webhook_url: Bitrix24 refused the webhook"):
        pull_all(source)


def test_requests_stay_inside_the_portals_bucket() -> None:
    """The fake enforces a bucket of 4 draining 20/s: the source's own limiter, set the
    same, never lets it refuse a request."""
    with fake_bitrix24() as fake:
        fake.portal.per_second, fake.portal.burst = 20, 4
        seed(fake.portal, 520)  # 11 history pages + 2 batches
        source = source_for(fake, chunk_size=100, rate_limit={"per_second": 20, "burst": 4})
        source.sleep = __import__("time").sleep  # type: ignore[method-assign]  # real waits
        assert len(records_of(pull_all(source))) == 520
        hits = fake.portal.hits
        assert {h.status for h in hits} == {200}
        # in any window the requests fit the bucket: burst + rate × window
        times = [h.at for h in hits]
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                assert j - i + 1 <= 4 + 20 * (times[j] - start) + 1


def test_php_query_round_trips_nested_params() -> None:
    params = {"filter": {"@ID": [1, 2], ">=CREATED_TIME": "2026-11-20T10:00:00+03:00"}, "start": -1}
    assert php_parse(php_query(params)) == {
        "filter": {"@ID": ["1", "2"], ">=CREATED_TIME": "2026-11-20T10:00:00+03:00"},
        "start": "-1",
    }


def test_bad_rows_are_rejected_with_a_reason(fake: FakeBitrix24, connect: Connect) -> None:
    fake.portal.add_win(1, "not a time")
    fake.portal.add_win(2, "2026-11-20T10:00:00+03:00")
    fake.portal.history.append({**fake.portal.history[-1], "ID": "3", "OWNER_ID": ""})
    chunks = pull_all(connect())
    assert [r.record_id for r in records_of(chunks)] == ["2"]
    assert [(r.code, r.column) for r in rejections_of(chunks)] == [
        ("bad_time", "CREATED_TIME"),
        ("missing_id", "OWNER_ID"),
    ]


def test_check_requests_nothing(fake: FakeBitrix24, connect: Connect) -> None:
    problems, notes = connect(fields={"gclid": "UF_CRM_GCLID"}).check()
    assert problems == [] and notes and "contact.EMAIL" in notes[0]
    assert fake.portal.hits == []


def test_lookback_default_is_ten_minutes(fake: FakeBitrix24) -> None:
    from convsync.sources.bitrix24.config import Bitrix24SourceConfig

    config = Bitrix24SourceConfig.model_validate(
        {"type": "bitrix24", "webhook_url": fake.webhook_url}
    )
    assert config.lookback == timedelta(minutes=10)
    with pytest.raises(ValueError, match="inbound webhook"):
        Bitrix24SourceConfig.model_validate(
            {"type": "bitrix24", "webhook_url": "portal.bitrix24.ru"}
        )
