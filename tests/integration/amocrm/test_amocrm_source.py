"""The amoCRM source against the fake account: mapping, paging, cursor, retries,
auth, errors and pacing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from convsync.core.errors import UserError
from convsync.core.model import SourceState
from convsync.core.tokens import MemoryTokens, ReadOnlyTokens
from convsync.sources.amocrm.source import AmoCrmSource
from tests.amocrm_fake import FakeAmo
from tests.amocrm_fake.server import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH
from tests.unit.sources.contract import fold_state, pull_all, records_of, rejections_of

from .conftest import MSK, make_source, now

OAUTH = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "redirect_uri": "https://example.com/amo",
    "refresh_token": FIRST_REFRESH,
}
MAPPING = {
    "gclid": "lead.GCLID",
    "yclid": {"field_code": "yclid"},
    "vk_click_id": "lead.505",
    "email": "contact.email",
    "phone": "contact.phone",
}


def gets(fake: FakeAmo, path: str) -> int:
    return sum(1 for p in fake.paths() if p == path)


def test_a_won_lead_becomes_a_record_with_its_fields_and_contact(amo: FakeAmo) -> None:
    won_at = now() - 600
    amo.add_won_lead(
        11, won_at, price=25000, gclid="Cj0KCQ", yclid="777", vk_click="rb1",
        email="a@example.ru", phone="+79123456789", contact_id=21,
    )  # fmt: skip
    amo.add_won_lead(12, won_at + 5, price=None, status_id=143)  # won, then lost
    source = make_source(amo, fields=MAPPING)
    chunks = pull_all(source)
    records = {r.record_id: r for r in records_of(chunks)}
    first = records["11"]
    assert dict(first.fields) == {
        "gclid": "Cj0KCQ", "yclid": "777", "vk_click_id": "rb1", "email": "a@example.ru",
        "phone": "+79123456789", "value": "25000", "status": "won",
    }  # fmt: skip
    assert first.occurred_at == datetime.fromtimestamp(won_at, UTC)
    assert first.occurred_at.tzinfo == MSK
    assert first.origin == "amocrm lead 11"
    assert first.columns["gclid"] == "lead.GCLID" and first.columns["status"] == "lead.status"
    assert dict(records["12"].fields) == {"status": "moved_after_won"}
    # pipeline check, the lead field list, one events page, one lead batch, one contact batch
    assert amo.paths() == [
        "/api/v4/leads/pipelines/7001", "/api/v4/leads/custom_fields", "/api/v4/events",
        "/api/v4/leads", "/api/v4/contacts",
    ]  # fmt: skip
    leads_query = dict(amo.requests[3].query)
    assert leads_query["with"] == "contacts" and leads_query["limit"] == "250"
    assert chunks[-1].cursor is not None and chunks[-1].cursor["created_at"] >= won_at


def test_closed_at_as_time_and_a_lead_without_it_is_rejected(amo: FakeAmo) -> None:
    amo.add_won_lead(11, now() - 600)
    amo.account.leads[11]["closed_at"] = now() - 500
    amo.add_won_lead(12, now() - 400)
    amo.account.leads[12]["closed_at"] = None
    chunks = pull_all(make_source(amo, time="closed_at"))
    [record] = records_of(chunks)
    assert record.occurred_at == datetime.fromtimestamp(amo.account.leads[11]["closed_at"], UTC)
    [bad] = rejections_of(chunks)
    assert (bad.code, bad.record_id, bad.column) == ("bad_time", "12", "lead.closed_at")


@pytest.mark.parametrize(("leads", "event_pages", "lead_batches"), [(200, 3, 1), (251, 3, 2)])
def test_paging_at_exact_multiples_and_batches(
    amo: FakeAmo, leads: int, event_pages: int, lead_batches: int
) -> None:
    base = now() - 5000
    for i in range(leads):
        amo.add_won_lead(100 + i, base + i)
    chunks = pull_all(make_source(amo))
    assert len(records_of(chunks)) == leads
    # 200 events: two full pages, the third answers 204; 251: a last page of 51
    assert gets(amo, "/api/v4/events") == event_pages
    assert gets(amo, "/api/v4/leads") == lead_batches
    assert gets(amo, "/api/v4/contacts") == 0  # no contact field mapped


def test_nothing_won_is_one_empty_chunk_that_moves_the_cursor(amo: FakeAmo) -> None:
    started = now()
    chunks = pull_all(make_source(amo))
    assert [c.records for c in chunks] == [[]]
    assert chunks[0].cursor is not None and chunks[0].cursor["created_at"] >= started
    assert gets(amo, "/api/v4/leads") == 0


def test_ties_within_one_second_are_told_apart_by_event_id(amo: FakeAmo) -> None:
    t = now() - 100
    amo.add_won_lead(1, t, event_id="01a")
    amo.add_won_lead(2, t, event_id="01b")
    amo.add_won_lead(3, t, event_id="01c")
    state = SourceState(cursor={"created_at": t, "id": "01b"})
    again = records_of(pull_all(make_source(amo, lookback="0s"), state))
    assert [r.record_id for r in again] == ["3"]


def test_lookback_rereads_the_window_and_a_restart_resumes_after_the_chunk(amo: FakeAmo) -> None:
    t = now() - 3600
    for i in range(6):
        amo.add_won_lead(50 + i, t + i * 60)
    source = make_source(amo, chunk_size=2, lookback="2m")
    pulling = source.pull(SourceState())
    first = next(pulling)  # a crash after the first chunk was recorded
    pulling.close()
    assert [r.record_id for r in first.records] == ["50", "51"]
    state = fold_state(SourceState(), [first])
    rest = records_of(pull_all(source, state))
    # leads won within 2 minutes before the cursor come again (the ledger absorbs them)
    assert [r.record_id for r in rest] == ["50", "51", "52", "53", "54", "55"]
    state = fold_state(state, pull_all(source, state))
    assert records_of(pull_all(source, state)) == []  # the window ended at the last pull


def test_first_run_starts_at_start_date(amo: FakeAmo) -> None:
    amo.add_won_lead(1, int(datetime(2026, 1, 10, tzinfo=UTC).timestamp()))
    amo.add_won_lead(2, int(datetime(2025, 12, 1, tzinfo=UTC).timestamp()))
    records = records_of(pull_all(make_source(amo, start_date="2026-01-01")))
    assert [r.record_id for r in records] == ["1"]
    since = dict(amo.requests[1].query)["filter[created_at][from]"]  # no field lists
    assert int(since) == int(datetime(2026, 1, 1, tzinfo=MSK).timestamp())


def test_429_and_5xx_are_retried_honouring_retry_after(amo: FakeAmo) -> None:
    amo.add_won_lead(1, now() - 60)
    amo.fail("/api/v4/events", 429, retry_after="3")
    amo.fail("/api/v4/leads", 503, times=2)
    sleeps: list[float] = []
    records = records_of(pull_all(make_source(amo, sleeps=sleeps)))
    assert [r.record_id for r in records] == ["1"]
    assert sleeps == [3.0, 1.0, 2.0]  # Retry-After, then exponential backoff


def test_failures_that_outlast_the_retries_stop_the_source_without_moving_the_cursor(
    amo: FakeAmo,
) -> None:
    amo.add_won_lead(1, now() - 60)
    amo.fail("/api/v4/leads", 502, times=10)
    pulling = make_source(amo).pull(SourceState())
    # the first chunk (and its cursor) never comes: the lead batch of it failed
    with pytest.raises(UserError, match=r"sources\.crm: amoCRM .* failed 5 times on /api/v4/leads"):
        next(pulling)


def test_a_refused_long_lived_token_is_a_user_error_naming_the_key(amo: FakeAmo) -> None:
    amo.expire_access_tokens()
    with pytest.raises(UserError, match=r"sources\.crm\.auth: .*long-lived token"):
        pull_all(make_source(amo))


def test_unknown_pipeline_status_and_field_are_user_errors(amo: FakeAmo) -> None:
    with pytest.raises(
        UserError, match=r"sources\.crm\.pipeline_id: the account has no pipeline 9"
    ):
        pull_all(make_source(amo, pipeline_id=9))
    with pytest.raises(UserError, match=r"sources\.crm\.won_status_id: .* 142 'status 142'"):
        pull_all(make_source(amo, won_status_id=999))
    with pytest.raises(UserError, match=r"sources\.crm\.fields\.gclid: .*lead\.GCLIDD.*501 GCLID"):
        pull_all(make_source(amo, fields={"gclid": "lead.GCLIDD"}))


def test_oauth_refresh_tokens_rotate_and_are_kept_before_use(amo: FakeAmo) -> None:
    amo.add_won_lead(1, now() - 60)
    tokens = MemoryTokens()
    assert records_of(pull_all(make_source(amo, auth=OAUTH, tokens=tokens)))
    name = f"amocrm:crm:{CLIENT_ID}"
    kept = tokens.load(name)
    assert kept is not None and kept["refresh_token"] == amo.account.refresh_token
    assert amo.account.refreshes == 1
    # the next run uses the stored access token: no refresh
    pull_all(make_source(amo, auth=OAUTH, tokens=tokens))
    assert amo.account.refreshes == 1
    # revoked early: 401 → one refresh with the stored (not the spent config) token
    amo.expire_access_tokens()
    assert records_of(pull_all(make_source(amo, auth=OAUTH, tokens=tokens)))
    assert amo.account.refreshes == 2
    assert tokens.load(name)["refresh_token"] == amo.account.refresh_token  # type: ignore[index]
    # a store that lost the pair falls back to the spent config token: a clear error
    with pytest.raises(UserError, match=r"sources\.crm\.auth\.refresh_token: .*configured"):
        pull_all(make_source(amo, auth=OAUTH, tokens=MemoryTokens()))


def test_a_new_refresh_token_in_the_config_wins_over_the_stored_one(amo: FakeAmo) -> None:
    tokens = MemoryTokens()
    pull_all(make_source(amo, auth=OAUTH, tokens=tokens))
    amo.expire_access_tokens()
    renewed = {**OAUTH, "refresh_token": amo.account.refresh_token}  # re-authorized by hand
    tokens.save(
        f"amocrm:crm:{CLIENT_ID}",
        {**tokens.load(f"amocrm:crm:{CLIENT_ID}"), "refresh_token": "dead"},
    )  # type: ignore[dict-item]
    pull_all(make_source(amo, auth=renewed, tokens=tokens))
    assert amo.account.refreshes == 2


def test_a_dry_run_never_spends_a_refresh_token_it_could_not_keep(amo: FakeAmo) -> None:
    with pytest.raises(UserError, match="dry run cannot keep"):
        pull_all(make_source(amo, auth=OAUTH, tokens=ReadOnlyTokens(MemoryTokens())))
    with pytest.raises(UserError, match="needs the ledger"):
        pull_all(make_source(amo, auth=OAUTH, tokens=None))
    assert amo.account.refreshes == 0 and amo.account.refresh_token == FIRST_REFRESH


def test_requests_are_paced_to_seven_a_second(amo: FakeAmo) -> None:
    base = now() - 5000
    for i in range(900):  # 9 events pages + the rest: 13 requests
        amo.add_won_lead(100 + i, base + i)
    source: AmoCrmSource = make_source(amo, real_pace=True)
    assert len(records_of(pull_all(source))) == 900
    times = [seen.at for seen in amo.requests]
    assert len(times) >= 13
    # no 8 requests arrive within one second
    assert all(times[i + 7] - times[i] >= 1.0 for i in range(len(times) - 7))
