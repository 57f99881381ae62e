"""google_ads with api: data_manager — reading Google's refusals (field paths, quotas,
access) and cutting batches into requests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.pacing import WindowLimit
from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.destinations.google_ads.datamanager import classify, request
from convsync.destinations.google_ads.datamanager.failures import (
    CallFailure,
    Violation,
    parse_violation,
)
from convsync.destinations.google_ads.datamanager.ingest import bisect_budget

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
#: midnight in Los Angeles after NOW
QUOTA_RESET = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def violation(field: str, reason: str = "INVALID_FORMAT") -> Violation:
    return parse_violation(field, reason, "Format is invalid.")


@pytest.mark.parametrize(
    ("field", "event", "destination", "path"),
    [
        ("events.events[3].ad_identifiers.gclid", 3, None, "ad_identifiers.gclid"),
        ("events[1999].user_data.user_identifiers[1]", 1999, None, "user_data.user_identifiers[1]"),
        ("events[12].userData.userIdentifiers[0]", 12, None, "user_data.user_identifiers[0]"),
        ("destinations[0].product_destination_id", None, 0, "product_destination_id"),
        ("events", None, None, "events"),
        ("encoding", None, None, "encoding"),
    ],
)
def test_a_field_path_names_its_event_or_destination(
    field: str, event: int | None, destination: int | None, path: str
) -> None:
    found = violation(field)
    assert (found.event, found.destination, found.path) == (event, destination, path)


def test_a_rejected_row_gets_googles_reason_and_a_hint_naming_the_config() -> None:
    gclid = violation("events.events[0].ad_identifiers.gclid")
    assert classify.violation_code(gclid) == "invalid_format"
    assert "sources.{source}" in (classify.hint_for(gclid) or "")
    action = violation("destinations[0].product_destination_id", "INVALID_CONVERSION_ACTION_ID")
    assert "conversion_action in goals.{goal}.send.{destination}" in (
        classify.hint_for(action) or ""
    )


def failure(status: str, **values: Any) -> CallFailure:
    return CallFailure(status=status, message="Google's text", **values)


def error_of(found: CallFailure) -> Exception | None:
    return classify.call_error(found, destination="google", customer_id="1234567890", now=NOW)


def test_the_per_minute_quota_is_retried_after_googles_wait() -> None:
    error = error_of(
        failure(
            "RESOURCE_EXHAUSTED",
            reason="RATE_LIMIT_EXCEEDED",
            metadata={"quota_limit": "IngestionMutateRequestsPerMinutePerProject"},
            retry_after=17.0,
        )
    )
    assert isinstance(error, TransientError)
    assert (error.code, error.retry_after) == ("rate_limited", 17.0)
    without_wait = error_of(
        failure(
            "RESOURCE_EXHAUSTED",
            metadata={"quota_limit": "IngestionMutateRequestsPerMinutePerProject"},
        )
    )
    assert isinstance(without_wait, TransientError) and without_wait.retry_after == 60.0


def test_the_daily_quota_stops_the_destination_until_midnight_pacific() -> None:
    error = error_of(
        failure(
            "RESOURCE_EXHAUSTED",
            metadata={"quota_limit": "IngestionMutateRequestsPerDayPerProject"},
        )
    )
    assert isinstance(error, DestinationUnavailable)
    assert (error.code, error.retry_at) == ("daily_quota_exhausted", QUOTA_RESET)


@pytest.mark.parametrize("status", ["UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"])
def test_server_side_failures_are_transient(status: str) -> None:
    error = error_of(failure(status))
    assert isinstance(error, TransientError) and error.code == status.lower()


@pytest.mark.parametrize(
    ("found", "code", "said"),
    [
        (failure("UNAUTHENTICATED"), "auth_failed", "convsync auth google"),
        (
            failure(
                "PERMISSION_DENIED",
                reason="SERVICE_DISABLED",
                metadata={"activationUrl": "https://console.developers.google.com/x"},
            ),
            "api_disabled",
            "enable the Data Manager API",
        ),
        (
            failure("PERMISSION_DENIED", reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT"),
            "auth_scope",
            "auth/datamanager scope",
        ),
        (failure("PERMISSION_DENIED"), "permission_denied", "needs access to customer"),
        (failure("FAILED_PRECONDITION"), "failed_precondition", "owns the conversion actions"),
        (
            failure(
                "INVALID_ARGUMENT",
                violations=(violation("destinations[0]", "TERMS_AND_CONDITIONS_NOT_SIGNED"),),
            ),
            "invalid_argument",
            "stay pending",
        ),
        (
            CallFailure(
                status="UNAVAILABLE",
                message="Getting metadata from plugin failed with error: invalid_grant",
            ),
            "auth_failed",
            "revoked",
        ),
    ],
)
def test_access_problems_stop_the_destination(found: CallFailure, code: str, said: str) -> None:
    error = error_of(found)
    assert isinstance(error, DestinationUnavailable)
    assert error.code == code and said in error.message


def test_an_invalid_argument_that_names_no_row_is_left_to_isolation() -> None:
    assert error_of(failure("INVALID_ARGUMENT")) is None
    assert isinstance(error_of(failure("OUT_OF_RANGE")), PermanentError)


def test_bisection_is_bounded_by_the_depth_of_a_2000_row_batch() -> None:
    assert bisect_budget(2000) == 2 * 11 + 2
    assert bisect_budget(1) == 4


def payload(action: str, *, user_data: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {
        "destination_references": [action],
        "transaction_id": f"T-{action}",
        "event_timestamp": "2026-11-20T11:03:00Z",
        "event_source": "WEB",
        "ad_identifiers": {"gclid": "Cj0KCQiA-gclid"},
    }
    if user_data:
        event["user_data"] = {"user_identifiers": [{"email_address": "a" * 64}]}
    return event


def test_one_request_holds_up_to_ten_conversion_actions() -> None:
    payloads = [payload(str(100 + i % 12)) for i in range(24)]
    parts = request.parts(payloads, range(24))
    assert [len(p.references) for p in parts] == [10, 2]
    assert sorted(i for p in parts for i in p.indexes) == list(range(24))
    assert parts[1].references == ("110", "111")


def test_a_request_has_a_destination_per_action_and_hex_encoding_with_user_data() -> None:
    config = GoogleAdsConfig.model_validate(
        {
            "type": "google_ads",
            "customer_id": "1234567890",
            "login_customer_id": "5556667777",
            "consent": {"ad_user_data": "granted"},
        }
    )
    payloads = [payload("7"), payload("8", user_data=True)]
    [part] = request.parts(payloads, [0, 1])
    built = request.ingest_request(config, payloads, part, validate_only=True)
    assert [d.product_destination_id for d in built.destinations] == ["7", "8"]
    assert [d.reference for d in built.destinations] == ["7", "8"]
    assert built.destinations[0].operating_account.account_id == "1234567890"
    assert built.destinations[0].login_account.account_id == "5556667777"
    assert built.encoding.name == "HEX" and built.validate_only
    assert built.consent.ad_user_data.name == "CONSENT_GRANTED"
    assert built.events[1].user_data.user_identifiers[0].email_address == "a" * 64
    plain = request.ingest_request(
        config, payloads, request.parts(payloads, [0])[0], validate_only=False
    )
    assert plain.encoding.name == "ENCODING_UNSPECIFIED"


def test_a_window_limit_lets_a_burst_through_and_holds_the_next_for_the_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limit = WindowLimit(3, 60.0, clock=lambda: now[0], sleep=sleep)
    assert [limit.wait() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.wait() == 60.0  # the 4th waits for the 1st to leave the window
    now[0] = 61.0
    assert limit.wait() == 0.0
    assert slept == [60.0]
