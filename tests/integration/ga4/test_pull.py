"""The GA4 source against the fake BigQuery: paging, the re-read window, intraday
tables, click ids, timestamps, cost control, credentials and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from convsync.core.errors import UserError
from convsync.core.identity import build_identifiers
from convsync.core.model import RawRecord, SourceState
from convsync.sources.ga4.query import occurred_at
from tests.bigquery_fake import FakeBigQuery
from tests.unit.sources.contract import fold_state, pull_all, records_of

from .conftest import build, day, micros, param, purchase, seed


def pull(fake: FakeBigQuery, state: SourceState | None = None, **config: object) -> list[RawRecord]:
    return records_of(pull_all(build(fake, **config), state))  # type: ignore[arg-type]


def test_pages_are_followed_and_records_come_in_time_order(fake: FakeBigQuery) -> None:
    seed(fake.state, [day(-4), day(-3)], per_day=4)  # 8 purchases, 3 rows a page
    records = pull(fake)
    assert [r.fields["order_id"] for r in records] == [f"T-{n}" for n in range(1, 9)]
    pages = fake.state.requests_to("results")
    assert [p.query.get("pageToken") for p in pages] == [None, "3", "6"]
    assert {p.query["maxResults"] for p in pages} == {"3"}
    assert all(p.query["location"] == "US" for p in pages[1:])
    # the page_view rows in the same tables were not asked for
    events = fake.state.queries()[-1]["query"]["queryParameters"][0]
    assert events["name"] == "events"
    assert [v["value"] for v in events["parameterValue"]["arrayValues"]] == [
        "purchase", "generate_lead"]  # fmt: skip


def test_values_go_in_as_parameters_and_the_sql_names_the_tables(fake: FakeBigQuery) -> None:
    seed(fake.state, [day(-2)])
    pull(fake, fields={"plan": "user_properties.plan", "session": "event_params.ga_session_id"})
    query = fake.state.queries()[-1]["query"]
    sql = query["query"]
    assert "`convsync-test.analytics_123456789.events_*`" in sql
    # values only as parameters
    assert "'purchase'" not in sql and "generate_lead" not in sql and day(-2) not in sql
    params = {p["name"]: p["parameterValue"] for p in query["queryParameters"]}
    assert params["first_suffix"] == {"value": day(-20)}
    assert params["last_suffix"] == {"value": day(-2)}
    keys = [v["value"] for v in params["param_keys"]["arrayValues"]]
    assert keys == ["currency", "ga_session_id", "page_location", "value"]
    assert [v["value"] for v in params["property_keys"]["arrayValues"]] == ["plan"]


def test_fields_timestamps_and_defaults(fake: FakeBigQuery) -> None:
    fake.state.add_event("events_" + day(-2), **purchase(7, day(-2), user_id="crm-42"))
    lead = purchase(8, day(-2), name="generate_lead", ecommerce=None,
                    collected_traffic_source=None)  # fmt: skip
    lead["event_params"] = [param("value", 15), param("currency", "EUR"),
                            param("form_id", "contact-us")]  # fmt: skip
    fake.state.add_event("events_" + day(-2), **lead)
    buy, got = pull(fake, fields={"form_id": "event_params.form_id", "order_id": None})
    assert buy.occurred_at == occurred_at(micros(day(-2), 7))
    assert buy.occurred_at.microsecond == 123_456 and buy.occurred_at.utcoffset() is not None
    assert buy.fields["value"] == "107.5" and buy.fields["currency"] == "USD"
    assert buy.fields["user_id"] == "crm-42" and buy.fields["purchase_id"] == "T-7"
    assert "order_id" not in buy.fields and "order_id" not in buy.columns
    assert buy.columns["value"] == "ecommerce.purchase_revenue or event_params.value"
    # a lead has no ecommerce block: its value comes from the value parameter
    assert got.fields == {"event_name": "generate_lead", "user_pseudo_id": "1008.1700000000",
                          "value": "15", "currency": "EUR", "form_id": "contact-us"}  # fmt: skip


def test_click_ids_collected_gclid_wins_and_the_rest_come_from_page_location(
    fake: FakeBigQuery,
) -> None:
    url = "https://shop.example/p?gclid=FROM-URL&gbraid=GB1&wbraid=WB1&yclid=123&rb_clickid=RB1"
    event = purchase(1, day(-2))
    event["event_params"][0] = param("page_location", url)
    fake.state.add_event("events_" + day(-2), **event)
    bare = purchase(2, day(-2), collected_traffic_source=None)
    bare["event_params"][0] = param("page_location", "https://shop.example/?gclid=ONLY-URL")
    fake.state.add_event("events_" + day(-2), **bare)
    first, second = pull(fake)
    ids = build_identifiers(first.fields, None)
    assert (ids.gclid, ids.gbraid, ids.wbraid, ids.yclid, ids.vk_click_id) == (
        "Cj0KCQ-gclid-1", "GB1", "WB1", "123", "RB1")  # fmt: skip
    assert build_identifiers(second.fields, None).gclid == "ONLY-URL"


def test_the_lookback_rereads_three_days_with_the_same_ids(fake: FakeBigQuery) -> None:
    seed(fake.state, [day(-9), day(-6), day(-5), day(-3), day(-2)])
    chunks = pull_all(build(fake))
    first = {r.record_id: r.fields["order_id"] for r in records_of(chunks)}
    state = fold_state(SourceState(), chunks)
    assert state.cursor == {"daily": day(-2)}
    # late events arrive in a daily table the day after
    fake.state.add_event("events_" + day(-3), **purchase(77, day(-3)))
    again = records_of(pull_all(build(fake), state))
    params = fake.state.queries()[-1]["query"]["queryParameters"]
    assert {"name": "first_suffix", "parameterType": {"type": "STRING"},
            "parameterValue": {"value": day(-5)}} in params  # fmt: skip
    reread = {r.record_id: r.fields["order_id"] for r in again}
    assert set(reread) - set(first) == {i for i, o in reread.items() if o == "T-77"}
    assert {first[i] for i in set(reread) & set(first)} == {
        f"T-{n}" for n in range(5, 11)
    }  # not 6 days ago


def test_intraday_only_for_dates_without_a_daily_table_and_ids_survive(
    fake: FakeBigQuery,
) -> None:
    seed(fake.state, [day(-2), day(-1)])
    # yesterday's intraday table is still there beside its daily table; today's is not
    seed(fake.state, [day(-1)], start=3, table="events_intraday_", noise=False)
    seed(fake.state, [day(0)], start=20, table="events_intraday_")
    chunks = pull_all(build(fake, intraday=True))
    today = {r.record_id for r in records_of(chunks) if r.origin.count("events_intraday_")}
    orders = sorted(r.fields["order_id"] for r in records_of(chunks))
    assert orders == ["T-1", "T-2", "T-20", "T-21", "T-3", "T-4"]  # yesterday's once
    params = {p["name"]: p["parameterValue"] for p in fake.state.queries()[-1]["query"][
        "queryParameters"]}  # fmt: skip
    assert [v["value"] for v in params["intraday_suffixes"]["arrayValues"]] == [day(0)]
    assert "events_intraday_*" in fake.state.queries()[-1]["query"]["query"]
    state = fold_state(SourceState(), chunks)
    assert state.cursor == {"daily": day(-1)}  # an intraday table never moves the cursor

    # the day closes: today's daily table holds the same events, the intraday one is gone
    rows = fake.state.tables.pop("events_intraday_" + day(0))
    fake.state.tables["events_" + day(0)] = rows
    again = records_of(pull_all(build(fake, intraday=True), state))
    assert today and today <= {r.record_id for r in again}
    assert all("events_intraday_" not in r.origin for r in again)
    assert "intraday_suffixes" not in json.dumps(fake.state.queries()[-1])


def test_a_dry_run_is_logged_before_every_query_and_the_limit_is_sent(
    fake: FakeBigQuery,
) -> None:
    seed(fake.state, [day(-3), day(-2)])
    with structlog.testing.capture_logs() as logs:
        source = build(fake, maximum_bytes_billed="5MB")
        state = fold_state(SourceState(), pull_all(source))
        pull_all(source, state)
    estimates = [e for e in logs if e["event"] == "ga4_query_estimate"]
    assert [e["bytes"] for e in estimates] == [6 * 2000, 6 * 2000]
    assert all(e["maximum_bytes_billed"] == 5_000_000 for e in estimates)
    routes = [s for s in fake.state.seen if s.method == "POST"]
    assert [bool(s.body["configuration"].get("dryRun")) for s in routes] == [True, False] * 2
    dry, real = routes[0].body["configuration"], routes[1].body["configuration"]
    assert dry["query"]["useQueryCache"] is False
    assert real["query"]["maximumBytesBilled"] == "5000000"
    assert dry["query"]["query"] == real["query"]["query"]


def test_an_estimate_over_the_limit_is_refused_before_the_query(fake: FakeBigQuery) -> None:
    seed(fake.state, [day(-3), day(-2)])
    fake.state.bytes_per_row = 10**9
    with pytest.raises(UserError, match=r"sources\.ga4\.maximum_bytes_billed: .*6\.00 GB"):
        pull(fake, maximum_bytes_billed="1GB")
    assert fake.state.requests_to("insert") == []


def test_bigquery_stopping_the_job_at_the_limit_names_the_key(fake: FakeBigQuery) -> None:
    seed(fake.state, [day(-2)])
    fake.state.dry_run_bytes = 10  # the estimate was wrong
    with pytest.raises(UserError, match=r"sources\.ga4\.maximum_bytes_billed: BigQuery stopped"):
        pull(fake, maximum_bytes_billed=1000)


def test_a_service_account_key_signs_in_and_every_call_carries_its_token(
    fake: FakeBigQuery,
) -> None:
    seed(fake.state, [day(-2)])
    pull(fake)
    assert fake.oauth.grants and fake.oauth.grants[0]["grant_type"].endswith("jwt-bearer")
    assert {s.authorization for s in fake.state.seen} == {f"Bearer {fake.oauth.issued[0]}"}


def test_application_default_credentials_are_used_without_a_key_file(
    fake: FakeBigQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(fake.state, [day(-2)])
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fake.key_file))
    records = pull(fake, credentials_file=None, project=None)  # the key names the project
    assert len(records) == 2 and fake.oauth.issued
    assert all(s.path.startswith("/bigquery/v2/projects/convsync-test/") for s in fake.state.seen)


def test_a_file_that_is_no_key_and_a_key_google_refuses(fake: FakeBigQuery, tmp_path: Path) -> None:
    bad = tmp_path / "key.json"
    bad.write_text('{"type": "authorized_user"}')
    with pytest.raises(UserError, match=r"sources\.ga4\.credentials_file: .* not a service acc"):
        pull(fake, credentials_file=str(bad))
    fake.oauth.service_accounts.clear()  # the key was deleted
    with pytest.raises(UserError, match=r"credentials_file: Google refused the credentials"):
        pull(fake)
    assert fake.state.seen == []


def test_permission_denied_names_the_credentials_and_roles(fake: FakeBigQuery) -> None:
    seed(fake.state, [day(-2)])
    fake.state.access_denied = True
    with pytest.raises(UserError) as caught:
        pull(fake)
    message = str(caught.value)
    assert "sources.ga4.credentials_file" in message and "bigquery.jobs.create" in message
    assert "BigQuery Data Viewer" in message and "BigQuery Job User" in message


def test_an_unknown_dataset_names_the_dataset_key(fake: FakeBigQuery) -> None:
    with pytest.raises(UserError, match=r"sources\.ga4\.dataset: .*analytics_999"):
        pull(fake, dataset="convsync-test.analytics_999")


def test_server_errors_are_retried_then_reported_with_the_next_run(fake: FakeBigQuery) -> None:
    seed(fake.state, [day(-2)])
    fake.state.fail("tables", 500, "backendError")
    fake.state.fail("results", 503, "backendError")
    assert len(pull(fake)) == 2
    assert [s.status for s in fake.state.requests_to("tables")] == [500, 200]

    fake.state.fail("tables", 500, "backendError", times=10_000)
    with pytest.raises(UserError, match=r"sources\.ga4: BigQuery did not answer .* next run"):
        pull(fake, query_timeout="1s")


def test_validate_lists_the_tables_and_runs_no_query(fake: FakeBigQuery) -> None:
    assert build(fake).check() == ([], ["sources.ga4: the dataset has no events_YYYYMMDD "
                                        "table yet"])  # fmt: skip
    seed(fake.state, [day(-2)])
    assert build(fake).check() == ([], [])
    problems, _ = build(fake, dataset="analytics_404").check()
    assert len(problems) == 1 and "sources.ga4.dataset" in problems[0]
    assert fake.state.queries() == []
