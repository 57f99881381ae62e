"""The fake Data Manager API speaks the protocol the real ``google-ads-datamanager`` client
expects: TLS, OAuth bearer tokens, responses, and errors whose details the client decodes
(ErrorInfo, RequestInfo, BadRequest, RetryInfo) as it does Google's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from google.ads.datamanager_v1 import (
    ConsentStatus,
    IngestEventsRequest,
    IngestionServiceClient,
    RequestStatusPerDestination,
    RetrieveRequestStatusRequest,
)
from google.api_core import exceptions
from google.oauth2.credentials import Credentials
from google.rpc import error_details_pb2

from tests.datamanager_fake import (
    ACTION_ID,
    CUSTOMER_ID,
    DOMAIN,
    INGEST,
    PER_DAY,
    PER_MINUTE,
    FakeDataManager,
    destination,
    event,
    event_violations,
    fake_data_manager,
    ingest_request,
    processing_errors,
    quota_daily,
    quota_per_minute,
    service_disabled,
)
from tests.google_ads_fake.oauth import DATAMANAGER_SCOPE, SCOPE

Status = RequestStatusPerDestination.RequestStatus
EMAIL = "a" * 64


def client_for(fake: FakeDataManager, scopes: tuple[str, ...] = (DATAMANAGER_SCOPE,)) -> Any:
    auth = fake.oauth.oauth_client()
    credentials = Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=auth["refresh_token"],
        client_id=auth["client_id"],
        client_secret=auth["client_secret"],
        token_uri=auth["token_uri"],
        scopes=list(scopes),
    )
    return IngestionServiceClient(
        credentials=credentials, client_options={"api_endpoint": fake.endpoint}
    )


@pytest.fixture
def fake(datamanager_fake: FakeDataManager) -> FakeDataManager:
    return datamanager_fake


@pytest.fixture
def client(fake: FakeDataManager) -> Iterator[Any]:
    with client_for(fake) as client:
        yield client


def ingest(client: Any, request: IngestEventsRequest) -> Any:
    return client.ingest_events(request=request, retry=None, timeout=10)


def status_of(client: Any, request_id: str) -> list[Any]:
    response = client.retrieve_request_status(
        request=RetrieveRequestStatusRequest(request_id=request_id), retry=None, timeout=10
    )
    return list(response.request_status_per_destination)


def details_of(error: exceptions.GoogleAPICallError, kind: type[Any]) -> list[Any]:
    return [d for d in error.details if isinstance(d, kind)]


def test_an_accepted_request_is_processing_until_processed(
    fake: FakeDataManager, client: Any
) -> None:
    response = ingest(
        client, ingest_request(event("o-1", gclid="Cj0-abc_1"), event("o-2", emails=(EMAIL,)))
    )

    assert response.request_id.startswith("t-")
    call = fake.calls_of(INGEST)[-1]
    assert call.status == "OK" and call.request_id == response.request_id
    assert call.metadata["authorization"].startswith("Bearer ya29.fake-")
    assert [e.transaction_id for e in call.events] == ["o-1", "o-2"]
    [pending] = status_of(client, response.request_id)
    assert pending.request_status == Status.PROCESSING
    assert pending.events_ingestion_status.record_count == 2
    assert not fake.state.conversions

    assert fake.process() == [response.request_id]

    [done] = status_of(client, response.request_id)
    assert done.request_status == Status.SUCCESS
    assert done.destination.product_destination_id == ACTION_ID
    assert not done.error_info.error_counts
    assert fake.state.conversion(CUSTOMER_ID, ACTION_ID, "o-1").count == 1
    assert fake.state.conversion(CUSTOMER_ID, ACTION_ID, "o-2").value == 10.0


def test_every_event_violation_fails_the_whole_request(fake: FakeDataManager, client: Any) -> None:
    events = [
        event("o-0", gclid="ok"),
        event("o-1", gclid="not a gclid!"),
        event("o-2", gclid="ok"),
        event("o-3", emails=("not-hex",)),
    ]
    with pytest.raises(exceptions.InvalidArgument) as raised:
        ingest(client, ingest_request(*events))

    error = raised.value
    assert (error.reason, error.domain) == ("INVALID_ARGUMENT", DOMAIN)
    [bad_request] = details_of(error, error_details_pb2.BadRequest)
    assert [(v.field, v.reason) for v in bad_request.field_violations] == [
        ("events.events[1].ad_identifiers.gclid", "INVALID_FORMAT"),
        ("events.events[3].user_data.user_identifiers[0]", "INVALID_HEX_ENCODING"),
    ]
    assert bad_request.field_violations[1].description == "The HEX encoded value is malformed."
    [info] = details_of(error, error_details_pb2.RequestInfo)
    assert info.request_id == error.metadata["requestId"] == fake.calls[-1].request_id
    assert fake.calls[-1].status == "INVALID_ARGUMENT"
    assert not fake.state.requests  # fail-fast: nothing of the request was kept


def test_scripted_and_sticky_violations(fake: FakeDataManager, client: Any) -> None:
    fake.script(event_violations(-1, reason="INVALID_EVENT", field=""))
    fake.bad_gclids.add("badclick")
    fake.unattributed_bad_gclids.add("hidden")
    request = ingest_request(event("o-0", gclid="badclick"), event("o-1", gclid="hidden"))

    with pytest.raises(exceptions.InvalidArgument) as raised:
        ingest(client, request)

    [bad_request] = details_of(raised.value, error_details_pb2.BadRequest)
    assert [(v.field, v.reason) for v in bad_request.field_violations] == [
        ("events.events[0].ad_identifiers.gclid", "INVALID_FORMAT"),
        ("events", "INVALID_FORMAT"),  # names no event
        ("events.events[1]", "INVALID_EVENT"),
    ]


def test_destination_problems(fake: FakeDataManager, client: Any) -> None:
    fake.state.conversion_actions = {ACTION_ID}
    with pytest.raises(exceptions.InvalidArgument) as raised:
        ingest(client, ingest_request(event("o-0", gclid="ok"), destinations=(destination("555"),)))
    [bad_request] = details_of(raised.value, error_details_pb2.BadRequest)
    assert [(v.field, v.reason) for v in bad_request.field_violations] == [
        ("destinations[0].product_destination_id", "INVALID_CONVERSION_ACTION_ID")
    ]

    with pytest.raises(exceptions.PermissionDenied):
        ingest(
            client,
            ingest_request(event("o-0", gclid="ok"), destinations=(destination(account="42"),)),
        )

    fake.customers["7777777777"] = "9999999999"  # reached through a manager
    client_account = destination(account="7777777777")
    with pytest.raises(exceptions.PermissionDenied):
        ingest(client, ingest_request(event("o-0", gclid="ok"), destinations=(client_account,)))
    via_manager = destination(account="7777777777", login_account="9999999999")
    assert ingest(
        client, ingest_request(event("o-0", gclid="ok"), destinations=(via_manager,))
    ).request_id


def test_quota_errors_say_which_limit(fake: FakeDataManager, client: Any) -> None:
    fake.script(quota_per_minute(retry_after=7), quota_daily())

    with pytest.raises(exceptions.ResourceExhausted) as per_minute:
        ingest(client, ingest_request(event("o-1", gclid="ok")))
    with pytest.raises(exceptions.ResourceExhausted) as per_day:
        ingest(client, ingest_request(event("o-1", gclid="ok")))

    assert per_minute.value.reason == "RATE_LIMIT_EXCEEDED"
    assert per_minute.value.metadata["quota_limit"] == PER_MINUTE
    [retry] = details_of(per_minute.value, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 7
    assert per_day.value.metadata["quota_limit"] == PER_DAY
    assert not details_of(per_day.value, error_details_pb2.RetryInfo)
    assert ingest(client, ingest_request(event("o-1", gclid="ok"))).request_id  # faults used up


def test_a_repeated_transaction_id_restates_instead_of_counting_twice(
    fake: FakeDataManager, client: Any
) -> None:
    fake.auto_process = True
    first = ingest(client, ingest_request(event("o-1", gclid="ok", value=10.0)))
    again = ingest(client, ingest_request(event("o-1", gclid="ok", value=25.0, currency="USD")))

    stored = fake.state.conversion(CUSTOMER_ID, ACTION_ID, "o-1")
    assert (stored.count, stored.receipts, stored.value, stored.currency) == (1, 2, 25.0, "USD")
    assert stored.request_id == first.request_id
    assert [a.request_id for a in stored.adjustments] == [again.request_id]
    assert [d.request_status for d in status_of(client, again.request_id)] == [Status.SUCCESS]


def test_processing_errors_make_partial_success_or_failure(
    fake: FakeDataManager, client: Any
) -> None:
    fake.state.unknown_clicks.add("lost")
    partial = ingest(
        client,
        ingest_request(
            event("o-1", gclid="ok"),
            event("o-2", gclid="lost"),
            event("o-3", emails=(EMAIL,), consent={"ad_user_data": ConsentStatus.CONSENT_DENIED}),
        ),
    )
    fake.script(processing_errors({0: "EVENT_TOO_OLD"}))
    failed = ingest(client, ingest_request(event("o-4", gclid="ok")))
    fake.process()

    [status] = status_of(client, partial.request_id)
    assert status.request_status == Status.PARTIAL_SUCCESS
    assert status.events_ingestion_status.record_count == 3
    assert {(c.reason.name, c.record_count) for c in status.error_info.error_counts} == {
        ("PROCESSING_ERROR_REASON_CLICK_NOT_FOUND", 1),
        ("PROCESSING_ERROR_REASON_DENIED_CONSENT", 1),
    }
    [status] = status_of(client, failed.request_id)
    assert status.request_status == Status.FAILED
    assert [c.reason.name for c in status.error_info.error_counts] == [
        "PROCESSING_ERROR_REASON_EVENT_TOO_OLD"
    ]
    assert set(fake.state.conversions) == {(CUSTOMER_ID, ACTION_ID, "o-1")}


def test_validate_only_keeps_nothing_and_has_no_status(fake: FakeDataManager, client: Any) -> None:
    response = ingest(client, ingest_request(event("o-1", gclid="ok"), validate_only=True))

    assert response.request_id == ""
    assert not fake.state.requests
    for request_id in (response.request_id, "t-unknown"):
        with pytest.raises(exceptions.InvalidArgument) as raised:
            status_of(client, request_id)
        assert raised.value.reason == "INVALID_REQUEST_ID"
        [bad_request] = details_of(raised.value, error_details_pb2.BadRequest)
        assert bad_request.field_violations[0].reason == "INVALID_REQUEST_ID"


def test_auth_errors(fake: FakeDataManager) -> None:
    with (
        client_for(fake, scopes=(SCOPE,)) as ads_only,
        pytest.raises(exceptions.PermissionDenied) as raised,
    ):
        ingest(ads_only, ingest_request(event("o-1", gclid="ok")))
    assert (raised.value.reason, raised.value.domain) == (
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "googleapis.com",
    )
    fake.script(service_disabled())
    with client_for(fake) as client:
        with pytest.raises(exceptions.PermissionDenied) as raised:
            ingest(client, ingest_request(event("o-1", gclid="ok")))
        assert raised.value.reason == "SERVICE_DISABLED"
        assert "activationUrl" in raised.value.metadata
        fake.oauth.expire_access_tokens()
        with pytest.raises(exceptions.Unauthenticated):
            ingest(client, ingest_request(event("o-1", gclid="ok")))


def test_a_held_answer_is_stored_first_and_the_fake_stops_cleanly() -> None:
    before = set(threading.enumerate())
    with fake_data_manager() as fake, client_for(fake) as client:
        hold = fake.hold_next()
        answers: list[Any] = []
        sender = threading.Thread(
            target=lambda: answers.append(ingest(client, ingest_request(event("o-1", gclid="ok"))))
        )
        sender.start()
        assert hold.accepted.wait(10)
        assert len(fake.state.requests) == 1 and not answers
        hold.release()
        sender.join(10)
        assert answers[0].request_id in fake.state.requests
    leaked = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("fake-")]
    assert not leaked
