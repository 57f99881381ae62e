"""google_ads: the error table row by row and partial-failure decoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from convsync.destinations.google_ads import api, classify
from convsync.destinations.google_ads.classify import RULES, Verdict
from convsync.destinations.google_ads.failures import (
    ApiError,
    error_key,
    failure_errors,
    failure_from_trailers,
    partial_failure_errors,
)
from tests.google_ads_fake.faults import Err, failure, partial_failure_status

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
OCCURRED = datetime(2026, 11, 20, 14, 3, tzinfo=timezone(timedelta(hours=3)))
UP = "conversion_upload_error"
ADJ = "conversion_adjustment_upload_error"
H6 = timedelta(hours=6)

# --- the table, row by row -----------------------------------------------------------

#: (field, enum name) → (verdict, outcome code, wait) — written out independently of RULES
EXPECTED: dict[tuple[str, str], tuple[Verdict, str, timedelta | None]] = {
    (UP, "ORDER_ID_ALREADY_IN_USE"): (Verdict.DELIVERED, "duplicate", None),
    (UP, "CLICK_CONVERSION_ALREADY_EXISTS"): (Verdict.DELIVERED, "duplicate", None),
    (UP, "CLICK_NOT_FOUND"): (Verdict.DELIVERED, "click_not_found", None),
    (ADJ, "CONVERSION_ALREADY_RETRACTED"): (Verdict.DELIVERED, "duplicate", None),
    (ADJ, "RESTATEMENT_ALREADY_EXISTS"): (Verdict.DELIVERED, "duplicate", None),
    (ADJ, "MORE_RECENT_RESTATEMENT_FOUND"): (Verdict.DELIVERED, "superseded", None),
    ("internal_error", "INTERNAL_ERROR"): (Verdict.TRANSIENT, "internal_error", None),
    ("internal_error", "TRANSIENT_ERROR"): (Verdict.TRANSIENT, "transient_error", None),
    ("internal_error", "DEADLINE_EXCEEDED"): (Verdict.TRANSIENT, "deadline_exceeded", None),
    ("database_error", "CONCURRENT_MODIFICATION"): (
        Verdict.TRANSIENT,
        "concurrent_modification",
        None,
    ),
    ("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED"): (
        Verdict.TRANSIENT,
        "resource_temporarily_exhausted",
        None,
    ),
    ("quota_error", "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION"): (
        Verdict.TRANSIENT,
        "excessive_short_term_query_resource_consumption",
        None,
    ),
    (UP, "TOO_RECENT_EVENT"): (Verdict.DEFER, "too_recent_event", H6),
    (UP, "TOO_RECENT_CALL"): (Verdict.DEFER, "too_recent_call", H6),
    (UP, "TOO_RECENT_CONVERSION_ACTION"): (Verdict.DEFER, "too_recent_conversion_action", H6),
    (ADJ, "TOO_RECENT_CONVERSION_ACTION"): (Verdict.DEFER, "too_recent_conversion_action", H6),
    (ADJ, "TOO_RECENT_CONVERSION"): (Verdict.DEFER, "too_recent_conversion", timedelta(hours=24)),
    (ADJ, "CONVERSION_NOT_FOUND"): (Verdict.DEFER, "conversion_not_found", H6),
    ("quota_error", "RESOURCE_EXHAUSTED"): (Verdict.DAILY_QUOTA, "daily_quota_exhausted", None),
    **{
        (UP, name): (Verdict.REJECT, name.lower(), None)
        for name in (
            "UNPARSEABLE_GCLID",
            "UNPARSEABLE_GBRAID",
            "UNPARSEABLE_WBRAID",
            "EXPIRED_EVENT",
            "CONVERSION_PRECEDES_EVENT",
            "EVENT_NOT_FOUND",
            "GBRAID_WBRAID_BOTH_SET",
            "INVALID_USER_IDENTIFIER",
            "ORDER_ID_CONTAINS_PII",
            "CUSTOM_VARIABLE_NOT_ENABLED",
            "CUSTOM_VARIABLE_VALUE_CONTAINS_PII",
            "DUPLICATE_ORDER_ID",
            "DUPLICATE_CLICK_CONVERSION_IN_REQUEST",
            "NO_CONVERSION_ACTION_FOUND",
            "INVALID_CONVERSION_ACTION_TYPE",
            "INVALID_CUSTOMER_FOR_CLICK",
            "UNAUTHORIZED_CUSTOMER",
            "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS",
            "CUSTOMER_NOT_ENABLED_ENHANCED_CONVERSIONS_FOR_LEADS",
            "TOO_MANY_CONVERSIONS_IN_REQUEST",
        )
    },
    **{
        (ADJ, name): (Verdict.REJECT, name.lower(), None)
        for name in (
            "CONVERSION_EXPIRED",
            "GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET",
            "ADJUSTMENT_PRECEDES_CONVERSION",
            "NO_CONVERSION_ACTION_FOUND",
            "INVALID_CONVERSION_ACTION_TYPE",
            "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS",
            "TOO_MANY_ADJUSTMENTS_IN_REQUEST",
        )
    },
    ("database_error", "REQUEST_TOO_LARGE"): (Verdict.REJECT, "request_too_large", None),
    ("authentication_error", "*"): (Verdict.UNAVAILABLE, "auth_failed", None),
    ("authorization_error", "*"): (Verdict.UNAVAILABLE, "permission_denied", None),
    ("authorization_error", "CUSTOMER_NOT_ENABLED"): (
        Verdict.UNAVAILABLE,
        "customer_not_enabled",
        None,
    ),
    ("authorization_error", "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION"): (
        Verdict.UNAVAILABLE,
        "project_not_approved",
        None,
    ),
    ("authorization_error", "DEVELOPER_TOKEN_NOT_APPROVED"): (
        Verdict.UNAVAILABLE,
        "project_not_approved",
        None,
    ),
    ("authorization_error", "INVALID_LOGIN_CUSTOMER_ID_SERVING_CUSTOMER_ID_COMBINATION"): (
        Verdict.UNAVAILABLE,
        "permission_denied",
        None,
    ),
    ("header_error", "*"): (Verdict.UNAVAILABLE, "invalid_header", None),
    ("quota_error", "ACCESS_PROHIBITED"): (Verdict.UNAVAILABLE, "access_prohibited", None),
    ("not_allowlisted_error", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"): (
        Verdict.UNAVAILABLE,
        "not_allowlisted",
        None,
    ),
}


@pytest.mark.parametrize(("key", "expected"), sorted(EXPECTED.items()), ids=lambda v: str(v))
def test_table_row(key: tuple[str, str], expected: tuple[Verdict, str, timedelta | None]) -> None:
    field, name = key
    rule = classify.lookup(field, name)
    verdict, code, wait = expected
    assert (rule.verdict, classify.outcome_code(name, rule), rule.wait) == (verdict, code, wait)
    if rule.verdict is Verdict.DEFER:
        assert rule.wait is not None


def test_every_table_row_is_tested_here() -> None:
    assert set(RULES) == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(RULES))
def test_every_table_key_is_a_real_v26_error(key: tuple[str, str]) -> None:
    """A misspelt enum name would never match anything Google sends."""
    field, name = key
    enum_type = api.ErrorCode.meta.fields[field].enum
    assert name == "*" or name in enum_type.__members__


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("authentication_error", "OAUTH_TOKEN_REVOKED"),
        ("authorization_error", "USER_PERMISSION_DENIED"),
        ("header_error", "INVALID_LOGIN_CUSTOMER_ID"),
    ],
)
def test_a_fields_star_rule_covers_its_other_names(field: str, name: str) -> None:
    assert classify.lookup(field, name) is RULES[(field, "*")]


@pytest.mark.parametrize(
    ("field", "name"),
    [
        (UP, "UNKNOWN"),
        (UP, "SOMETHING_GOOGLE_ADDS_NEXT_YEAR"),
        ("request_error", "INVALID_CUSTOMER_ID"),
        ("", "UNSPECIFIED"),
    ],
)
def test_an_unknown_error_is_rejected_never_delivered(field: str, name: str) -> None:
    rule = classify.lookup(field, name)
    assert rule.verdict is Verdict.REJECT
    assert classify.outcome_code(name, rule) == name.lower()


@pytest.mark.parametrize(
    ("delay", "verdict"),
    [
        (None, Verdict.DAILY_QUOTA),
        (timedelta(seconds=30), Verdict.TRANSIENT),
        (timedelta(minutes=15), Verdict.TRANSIENT),
        (timedelta(minutes=15, seconds=1), Verdict.DAILY_QUOTA),
        (timedelta(hours=9), Verdict.DAILY_QUOTA),
    ],
)
def test_resource_exhausted_with_a_short_retry_delay_is_a_rate_limit(
    delay: timedelta | None, verdict: Verdict
) -> None:
    rule = classify.rule_for("quota_error", "RESOURCE_EXHAUSTED", retry_delay=delay)
    assert rule.verdict is verdict


def test_click_not_found_is_ignorable_only_for_rows_matched_by_email_or_phone() -> None:
    assert classify.rule_for(UP, "CLICK_NOT_FOUND").verdict is Verdict.DELIVERED
    rule = classify.rule_for(UP, "CLICK_NOT_FOUND", matched_by_identifiers=False)
    assert rule.verdict is Verdict.REJECT


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        # 01:00 PST on Nov 21 → midnight PST of Nov 22 (08:00 UTC)
        (datetime(2026, 11, 21, 9, 0, tzinfo=UTC), datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
        (datetime(2026, 11, 22, 7, 59, tzinfo=UTC), datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
        (datetime(2026, 11, 22, 8, 0, tzinfo=UTC), datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        # the night the clocks go forward (Mar 8, 2026): the next midnight is PDT
        (datetime(2026, 3, 8, 9, 0, tzinfo=UTC), datetime(2026, 3, 9, 7, 0, tzinfo=UTC)),
        # summer: midnight PDT is 07:00 UTC
        (datetime(2026, 7, 1, 6, 59, tzinfo=UTC), datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),
    ],
)
def test_daily_quota_resets_at_midnight_pacific(now: datetime, reset: datetime) -> None:
    assert classify.next_quota_reset(now) == reset
    assert classify.next_quota_reset(now).utcoffset() == timedelta(0)


def test_defer_times() -> None:
    too_recent = classify.lookup(UP, "TOO_RECENT_EVENT")
    assert classify.defer_until(too_recent, NOW, OCCURRED) == NOW + H6
    adjustment = classify.lookup(ADJ, "TOO_RECENT_CONVERSION")
    due = classify.defer_until(adjustment, NOW, OCCURRED)
    assert due == OCCURRED + timedelta(hours=24, minutes=5)
    assert due.utcoffset() == timedelta(0)
    # long past the 24 hours (Google's clock disagrees): try again soon, never in the past
    old = OCCURRED - timedelta(days=3)
    assert classify.defer_until(adjustment, NOW, old) == NOW + timedelta(minutes=1)


# --- decoding ---------------------------------------------------------------------------


def status_of(*row_errors: tuple[int | None, Err], split: bool = False) -> Any:
    protos = [err.to_proto("conversions", index) for index, err in row_errors]
    return partial_failure_status(protos, "req-1", split=split)


def test_no_partial_failure_means_no_errors() -> None:
    assert partial_failure_errors(None, "conversions") == []
    response = api.UploadClickConversionsResponse()
    assert partial_failure_errors(response.partial_failure_error, "conversions") == []


@pytest.mark.parametrize("split", [False, True])
def test_partial_failure_is_decoded_with_index_zero_and_every_error(split: bool) -> None:
    status = status_of(
        (0, Err(UP, "UNPARSEABLE_GCLID", "bad gclid", field_path=("gclid",))),
        (0, Err(UP, "TOO_RECENT_EVENT", "too recent")),
        (4, Err("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED", "slow", retry_delay=30)),
        (None, Err("internal_error", "TRANSIENT_ERROR", "try again")),
        split=split,
    )
    assert len(status.details) == (4 if split else 1)
    assert partial_failure_errors(status, "conversions") == [
        ApiError(UP, "UNPARSEABLE_GCLID", "bad gclid", 0),
        ApiError(UP, "TOO_RECENT_EVENT", "too recent", 0),
        ApiError(
            "quota_error",
            "RESOURCE_TEMPORARILY_EXHAUSTED",
            "slow",
            4,
            retry_delay=timedelta(seconds=30),
        ),
        ApiError("internal_error", "TRANSIENT_ERROR", "try again", None),
    ]


def test_an_error_on_another_field_is_not_attributed_to_a_row() -> None:
    status = status_of((3, Err(UP, "TOO_RECENT_EVENT")))
    assert [e.index for e in partial_failure_errors(status, "conversion_adjustments")] == [None]


def test_a_failed_status_without_a_decodable_detail_is_still_a_failure() -> None:
    status = status_of((1, Err(UP, "TOO_RECENT_EVENT")))
    del status.details[:]
    status.message = "something failed"
    errors = partial_failure_errors(status, "conversions")
    assert errors == [ApiError("", "PARTIAL_FAILURE", "something failed")]
    assert classify.lookup("", "PARTIAL_FAILURE").verdict is Verdict.REJECT


def test_failure_from_trailing_metadata() -> None:
    proto = Err("quota_error", "RESOURCE_EXHAUSTED", "daily").to_proto("conversions")
    trailers = [("request-id", "r1"), (api.FAILURE_TRAILER, failure([proto], "r1"))]
    decoded = failure_from_trailers(trailers)
    assert decoded is not None
    assert failure_errors(decoded, "conversions") == [
        ApiError("quota_error", "RESOURCE_EXHAUSTED", "daily")
    ]
    assert failure_from_trailers([("request-id", "r1")]) is None
    assert failure_from_trailers(None) is None


def test_an_enum_value_newer_than_the_client_is_an_unknown_name() -> None:
    code = api.ErrorCode(conversion_upload_error=9999)
    assert error_key(code) == (UP, "9999")
    assert error_key(api.ErrorCode()) == ("", "UNSPECIFIED")
