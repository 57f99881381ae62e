"""The HubSpot source against the fake API: the search window, paging and its cap,
contacts, mapping, errors and the request rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from convsync.core.errors import UserError
from convsync.core.model import RawRecord, SourceState
from tests.hubspot_fake import FakeHubSpot
from tests.hubspot_fake.state import ASSOCIATIONS, CONTACTS, PIPELINES, SEARCH, iso
from tests.unit.sources.contract import fold_state, pull_all, records_of, rejections_of

from .conftest import NOW, build, seed
from .conftest import PIPELINES as PIPELINE_LIST


def by_id(records: list[RawRecord]) -> dict[str, RawRecord]:
    return {r.record_id: r for r in records}


def searches(fake: FakeHubSpot) -> list[dict]:  # type: ignore[type-arg]
    return [s.body for s in fake.state.requests_to(SEARCH)]


def test_won_deals_with_their_first_contact_in_the_fewest_requests(fake: FakeHubSpot) -> None:
    seed(fake.state, 5)
    seed(fake.state, 2, start=10, won=False)
    fake.state.add_deal("20", hs_lastmodifieddate=iso(NOW - timedelta(hours=2)),
                        closedate=iso(NOW - timedelta(hours=3)), hs_is_closed_won="true",
                        amount="7")  # fmt: skip  # no contact at all
    source = build(fake)
    chunks = pull_all(source)
    records = by_id(records_of(chunks))
    assert sorted(records) == ["1", "2", "20", "3", "4", "5"]
    one = records["1"]
    assert one.fields == {
        "status": "won",
        "value": "101.50",
        "currency": "USD",
        "email": "buyer1@example.com",
        "phone": "+1 202 555 0001",
        "gclid": "Cj0KCQ-gclid-1",
        "landing_url": "https://shop.example/land?rb_clickid=rb1&utm_source=x",
    }
    assert one.columns["email"] == "contact.email" and one.columns["value"] == "amount"
    assert one.columns["status"] == "hs_is_closed_won"
    assert one.origin == "hubspot deal 1"
    assert one.occurred_at == NOW - timedelta(days=1, hours=1)
    assert records["20"].fields == {"status": "won", "value": "7"}
    # one search page, one associations batch, one contacts batch
    assert [s.path for s in fake.state.seen] == [SEARCH, ASSOCIATIONS, CONTACTS]
    assert source.requests == 3
    body = searches(fake)[0]
    assert body["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert body["limit"] == 200
    assert {"propertyName": "hs_is_closed_won", "operator": "EQ", "value": "true"} in (
        body["filterGroups"][0]["filters"]
    )
    assert "Bearer" not in repr(records) and fake.state.token not in repr(chunks)


def test_no_contact_property_mapped_means_no_contact_requests(fake: FakeHubSpot) -> None:
    seed(fake.state, 3)
    off = {"email": None, "phone": None, "gclid": None, "landing_url": None}
    source = build(fake, fields={**off, "deal_name": "dealname"})
    records = records_of(pull_all(source))
    assert {r.fields["deal_name"] for r in records} == {"Deal 1", "Deal 2", "Deal 3"}
    assert [s.path for s in fake.state.seen] == [SEARCH]


@pytest.mark.parametrize("trailing_empty", [False, True])
def test_exact_page_multiples_and_an_empty_last_page(
    fake: FakeHubSpot, trailing_empty: bool
) -> None:
    seed(fake.state, 6)
    fake.state.trailing_empty_page = trailing_empty
    source = build(fake)
    source.page_size = 3
    assert sorted(r.record_id for r in records_of(pull_all(source))) == list("123456")
    assert [b.get("after") for b in searches(fake)] == (
        [None, "3", "6"] if trailing_empty else [None, "3"]
    )


def test_an_empty_account_moves_the_cursor_to_the_pull_start(fake: FakeHubSpot) -> None:
    source = build(fake)
    source.clock = lambda: NOW  # type: ignore[method-assign]
    chunks = pull_all(source)
    assert records_of(chunks) == []
    assert chunks[-1].cursor == {"modified": NOW.isoformat(timespec="milliseconds")}
    window = searches(fake)[0]["filterGroups"][0]["filters"]
    start = int((NOW - timedelta(days=90)).timestamp() * 1000)
    assert window[0] == {"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                         "value": str(start)}  # fmt: skip
    assert window[1]["operator"] == "LTE" and window[1]["value"] == str(int(NOW.timestamp() * 1000))


def test_the_window_restarts_before_the_cap_and_every_deal_comes_once(fake: FakeHubSpot) -> None:
    # 13 deals, several sharing a modification time across the restarts
    base = NOW - timedelta(hours=5)
    for n in range(1, 14):
        seed(fake.state, 1, start=n, modified=base + timedelta(seconds=n // 3))
    fake.state.cap = 5
    source = build(fake, chunk_size=4)
    source.page_size = 2
    source.window_cap = 5
    chunks = pull_all(source)
    ids = [r.record_id for r in records_of(chunks)]
    assert sorted(ids, key=int) == [str(n) for n in range(1, 14)]
    assert len(ids) == len(set(ids))
    assert all(s.status == 200 for s in fake.state.requests_to(SEARCH))
    starts = [int(b["filterGroups"][0]["filters"][0]["value"]) for b in searches(fake)]
    assert starts == sorted(starts) and len(set(starts)) > 1
    cursors = [c.cursor["modified"] for c in chunks if c.cursor]
    assert cursors == sorted(cursors)


def test_more_deals_at_one_millisecond_than_the_cap_is_a_clear_error(fake: FakeHubSpot) -> None:
    seed(fake.state, 6, step=timedelta(0))
    fake.state.cap = 4
    source = build(fake)
    source.page_size, source.window_cap = 2, 4
    with pytest.raises(UserError, match="same modification time"):
        pull_all(source)


def test_lookback_overlap_and_a_cursor_that_never_goes_back(fake: FakeHubSpot) -> None:
    seed(fake.state, 3, modified=NOW - timedelta(minutes=30), step=timedelta(minutes=10))
    source = build(fake, lookback="15m")
    source.clock = lambda: NOW  # type: ignore[method-assign]
    first = pull_all(source)
    state = fold_state(SourceState(), first)
    assert state.cursor == {"modified": NOW.isoformat(timespec="milliseconds")}
    later = NOW + timedelta(minutes=1)
    source.clock = lambda: later  # type: ignore[method-assign]
    source.context = (
        source.context.__class__(**{**source.context.__dict__, "chunk_size": 1})
        if hasattr(source.context, "__dict__")
        else source.context
    )
    again = pull_all(source, state)
    # deal 3 was changed 10 minutes before the cursor: inside the 15-minute lookback
    assert [r.record_id for r in records_of(again)] == ["3"]
    gte = searches(fake)[-1]["filterGroups"][0]["filters"][0]["value"]
    assert gte == str(int((NOW - timedelta(minutes=15)).timestamp() * 1000))
    for chunk in again:
        assert chunk.cursor is not None
        assert chunk.cursor["modified"] >= state.cursor["modified"]  # type: ignore[index]
        assert chunk.cursor["modified"] <= later.isoformat(timespec="milliseconds")


def test_start_date_in_the_source_time_zone(fake: FakeHubSpot) -> None:
    source = build(fake, start_date="2026-03-01", timezone="Europe/Moscow")
    pull_all(source)
    gte = searches(fake)[0]["filterGroups"][0]["filters"][0]["value"]
    assert gte == str(int(datetime(2026, 2, 28, 21, 0, tzinfo=UTC).timestamp() * 1000))


def test_a_bad_close_date_is_rejected_and_the_rest_goes_on(fake: FakeHubSpot) -> None:
    seed(fake.state, 2)
    seed(fake.state, 1, start=3, closedate=None)
    fake.state.deals["4"] = {**fake.state.deals["1"], "hs_object_id": "4", "closedate": "soon"}
    chunks = pull_all(build(fake))
    assert sorted(r.record_id for r in records_of(chunks)) == ["1", "2"]
    rejected = {r.record_id: r for r in rejections_of(chunks)}
    assert rejected["3"].code == "missing_time" and rejected["3"].column == "closedate"
    assert rejected["4"].code == "bad_time" and "'soon'" in rejected["4"].reason


def test_a_deleted_contact_and_several_contacts(fake: FakeHubSpot) -> None:
    seed(fake.state, 2)
    fake.state.links["1"] = ["404404", "90002"]  # the first is gone: 207 from batch read
    fake.state.contacts["90003"] = {"email": "", "phone": "+1 202 555 7777"}
    fake.state.links["2"] = ["90003", "90002"]  # first contact without an e-mail
    records = by_id(records_of(pull_all(build(fake))))
    assert records["1"].fields["email"] == "buyer2@example.com"
    assert records["2"].fields["phone"] == "+1 202 555 7777"
    assert records["2"].fields["email"] == "buyer2@example.com"


def test_pipeline_and_stages_by_label(fake: FakeHubSpot) -> None:
    fake.state.pipelines = PIPELINE_LIST
    seed(fake.state, 2)
    seed(fake.state, 1, start=3, won=False, dealstage="1111")
    fake.state.deals["3"]["pipeline"] = "7654321"
    source = build(fake, pipeline="Wholesale", won_stages=["invoice paid"])
    records = records_of(pull_all(source))
    assert [r.record_id for r in records] == ["3"]
    assert records[0].columns["status"] == "dealstage"
    filters = searches(fake)[0]["filterGroups"][0]["filters"]
    assert {"propertyName": "pipeline", "operator": "EQ", "value": "7654321"} in filters
    assert {"propertyName": "dealstage", "operator": "IN", "values": ["1111"]} in filters
    assert fake.state.seen[0].path == PIPELINES


def test_an_unknown_pipeline_or_stage_names_the_config_key(fake: FakeHubSpot) -> None:
    fake.state.pipelines = PIPELINE_LIST
    source = build(fake, pipeline="Retail")
    with pytest.raises(UserError, match=r"sources\.crm\.pipeline: .*'Retail'.*Wholesale"):
        pull_all(source)
    problems, _ = source.check()
    assert problems and "sources.crm.pipeline" in problems[0]
    with pytest.raises(UserError, match=r"sources\.crm\.won_stages: .*'Won'"):
        pull_all(build(fake, won_stages=["Won"]))


def test_rate_limits_and_server_errors_are_retried(fake: FakeHubSpot) -> None:
    seed(fake.state, 3)
    fake.state.fail(SEARCH, 429, retry_after="2")
    fake.state.fail(ASSOCIATIONS, 502)
    fake.state.fail(CONTACTS, 503, times=2)
    source = build(fake)
    waits: list[float] = []
    source.sleep = waits.append  # type: ignore[method-assign]
    assert len(records_of(pull_all(source))) == 3
    assert waits[0] == 2.0  # Retry-After honoured
    assert len(waits) == 4
    assert source.requests == 3 + 4


def test_errors_that_do_not_pass_stop_the_source_without_moving_the_cursor(
    fake: FakeHubSpot,
) -> None:
    seed(fake.state, 3)
    fake.state.fail(SEARCH, 500, times=99)
    pulled = build(fake).pull(SourceState(cursor={"modified": "2026-01-01T00:00:00.000+00:00"}))
    with pytest.raises(UserError, match=r"after 5 tries .*next run tries again"):
        next(pulled)


def test_a_daily_limit_is_not_retried(fake: FakeHubSpot) -> None:
    seed(fake.state, 1)
    body = {"status": "error", "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT", "policyName": "DAILY"}  # fmt: skip
    fake.state.fail(SEARCH, 429, body=body)
    with pytest.raises(UserError, match="daily API limit"):
        pull_all(build(fake))
    assert len(fake.state.requests_to(SEARCH)) == 1


def test_a_bad_token_and_a_missing_scope_name_the_token(fake: FakeHubSpot) -> None:
    seed(fake.state, 1)
    source = build(fake)
    fake.state.token = "pat-na1-another"
    with pytest.raises(UserError, match=r"sources\.crm\.token: .*401.*crm\.objects\.deals\.read"):
        pull_all(source)
    fake.state.token = "pat-na1-11111111-2222-3333-4444-555555555555"
    fake.state.missing_scopes = {"crm.objects.contacts.read"}
    with pytest.raises(
        UserError, match=r"sources\.crm\.token: .*403.*crm\.objects\.contacts\.read"
    ):
        pull_all(build(fake))


def test_search_requests_keep_to_the_account_rate(fake: FakeHubSpot) -> None:
    seed(fake.state, 8, step=timedelta(seconds=1))
    source = build(fake, search_requests_per_second=5, fields={"email": None, "phone": None,
                   "gclid": None, "landing_url": None})  # fmt: skip
    source.page_size = 1
    assert len(records_of(pull_all(source))) == 8
    times = [s.at for s in fake.state.requests_to(SEARCH)]
    assert len(times) == 8
    # no second-long window holds more than 5 search requests
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t - start < 1.0) <= 5
