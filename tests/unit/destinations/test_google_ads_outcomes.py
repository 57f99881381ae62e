"""google_ads: the outcome of each row of a batch (several errors, index 0, errors without
a row, failed requests) and the payload → request message mapping."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import Conversion, Identifiers, OutboundRow, OutcomeKind, RowOutcome
from convsync.destinations.google_ads import api
from convsync.destinations.google_ads.failures import ApiError
from convsync.destinations.google_ads.outcomes import Batch, judge
from convsync.destinations.google_ads.upload import click_conversion, conversion_adjustment

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
OCCURRED = datetime(2026, 11, 20, 14, 3, tzinfo=timezone(timedelta(hours=3)))
UP = "conversion_upload_error"
H6 = timedelta(hours=6)


# --- outcomes ---------------------------------------------------------------------------


def make_row(i: int, **payload: Any) -> OutboundRow:
    conversion = Conversion(
        key=f"k{i}",
        source="shop",
        record_id=str(i),
        goal="purchase",
        order_id=f"A-{i}",
        occurred_at=OCCURRED,
        value=Decimal("10"),
        currency="RUB",
        ids=Identifiers(gclid=f"gclid-{i:06d}"),
    )
    body = {"gclid": f"gclid-{i:06d}", "order_id": f"A-{i}", **payload}
    return OutboundRow(i, conversion, body)


def batch(n: int = 3, **changes: Any) -> Batch:
    rows = [make_row(i) for i in range(n)]
    made = Batch(rows, "conversions", NOW, "google", "1234567890")
    return dataclasses.replace(made, **changes)


def err(field: str, name: str, index: int | None = None, delay: float | None = None) -> ApiError:
    return ApiError(
        field,
        name,
        f"Google says {name}.",
        index,
        timedelta(seconds=delay) if delay is not None else None,
    )


def test_rows_without_an_error_are_delivered_and_index_zero_is_a_row() -> None:
    outcomes = judge(batch(), [err(UP, "UNPARSEABLE_GCLID", 0)], request_failed=False)
    assert [o.kind for o in outcomes] == [
        OutcomeKind.REJECTED,
        OutcomeKind.DELIVERED,
        OutcomeKind.DELIVERED,
    ]
    assert outcomes[1] == RowOutcome.delivered()


def test_validate_only_rows_without_an_error_are_valid() -> None:
    outcomes = judge(batch(validate_only=True), [err(UP, "EXPIRED_EVENT", 2)], request_failed=False)
    assert outcomes[0] == outcomes[1] == RowOutcome.delivered("valid")
    assert outcomes[2].kind is OutcomeKind.REJECTED


@pytest.mark.parametrize(
    ("names", "kind", "code"),
    [
        (["ORDER_ID_ALREADY_IN_USE", "TOO_RECENT_EVENT"], OutcomeKind.DEFERRED, "too_recent_event"),
        (["TOO_RECENT_EVENT", "UNPARSEABLE_GCLID"], OutcomeKind.REJECTED, "unparseable_gclid"),
        (
            ["CLICK_CONVERSION_ALREADY_EXISTS", "ORDER_ID_ALREADY_IN_USE"],
            OutcomeKind.DELIVERED,
            "duplicate",
        ),
        (["ORDER_ID_ALREADY_IN_USE", "INTERNAL_ERROR"], OutcomeKind.TRANSIENT, "internal_error"),
        (["INTERNAL_ERROR", "EXPIRED_EVENT"], OutcomeKind.REJECTED, "expired_event"),
        (["RESOURCE_EXHAUSTED", "INTERNAL_ERROR"], OutcomeKind.DEFERRED, "daily_quota_exhausted"),
    ],
)
def test_the_most_severe_error_of_a_row_decides_and_every_error_is_kept(
    names: list[str], kind: OutcomeKind, code: str
) -> None:
    fields = {"INTERNAL_ERROR": "internal_error", "RESOURCE_EXHAUSTED": "quota_error"}
    errors = [err(fields.get(n, UP), n, 1) for n in names]
    outcome = judge(batch(), errors, request_failed=False)[1]
    assert (outcome.kind, outcome.code) == (kind, code)
    assert outcome.message is not None
    for name in names:
        assert f"{name}: Google says {name}." in outcome.message


def test_deferral_time_of_a_row() -> None:
    outcomes = judge(
        batch(),
        [err(UP, "TOO_RECENT_EVENT", 0), err("quota_error", "RESOURCE_EXHAUSTED", 2)],
        request_failed=False,
    )
    assert outcomes[0].retry_at == NOW + H6
    assert outcomes[2].retry_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_a_rate_limited_row_is_transient_with_googles_delay() -> None:
    outcome = judge(
        batch(),
        [err("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED", 1, delay=42)],
        request_failed=False,
    )[1]
    assert outcome == RowOutcome.transient(
        "resource_temporarily_exhausted",
        "RESOURCE_TEMPORARILY_EXHAUSTED: Google says RESOURCE_TEMPORARILY_EXHAUSTED.",
        42.0,
    )


def test_errors_without_a_row_apply_to_every_row() -> None:
    outcomes = judge(
        batch(),
        [err("internal_error", "TRANSIENT_ERROR"), err(UP, "EXPIRED_EVENT", 1)],
        request_failed=False,
    )
    assert [o.kind for o in outcomes] == [
        OutcomeKind.TRANSIENT,
        OutcomeKind.REJECTED,
        OutcomeKind.TRANSIENT,
    ]
    assert "TRANSIENT_ERROR" in (outcomes[1].message or "")


def test_already_there_without_a_row_is_never_read_as_success() -> None:
    outcomes = judge(batch(), [err(UP, "ORDER_ID_ALREADY_IN_USE")], request_failed=False)
    assert [(o.kind, o.code) for o in outcomes] == [
        (OutcomeKind.TRANSIENT, "order_id_already_in_use")
    ] * 3


def test_an_index_beyond_the_batch_is_not_a_row() -> None:
    outcomes = judge(batch(2), [err(UP, "EXPIRED_EVENT", 2)], request_failed=False)
    assert [o.kind for o in outcomes] == [OutcomeKind.REJECTED, OutcomeKind.REJECTED]


def test_a_hint_names_the_goal_and_destination() -> None:
    outcome = judge(batch(), [err(UP, "NO_CONVERSION_ACTION_FOUND", 0)], request_failed=False)[0]
    assert outcome.message == (
        "NO_CONVERSION_ACTION_FOUND: Google says NO_CONVERSION_ACTION_FOUND. Check "
        "conversion_action in goals.purchase.send.google: it must be an import action of "
        "customer 1234567890."
    )


def test_click_not_found_is_delivered_for_an_ec4l_row_only() -> None:
    rows = [
        make_row(0, user_identifiers=[{"hashed_email": "ab" * 32}]),
        make_row(1),
    ]
    made = Batch(rows, "conversions", NOW, "google", "1234567890")
    outcomes = judge(
        made, [err(UP, "CLICK_NOT_FOUND", 0), err(UP, "CLICK_NOT_FOUND", 1)], request_failed=False
    )
    assert (outcomes[0].kind, outcomes[0].code) == (OutcomeKind.DELIVERED, "click_not_found")
    assert (outcomes[1].kind, outcomes[1].code) == (OutcomeKind.REJECTED, "click_not_found")


def test_an_auth_error_anywhere_stops_the_destination() -> None:
    with pytest.raises(DestinationUnavailable) as caught:
        judge(batch(), [err("authorization_error", "USER_PERMISSION_DENIED")], request_failed=True)
    assert caught.value.code == "permission_denied"
    assert "login_customer_id of destinations.google" in caught.value.message
    assert caught.value.retry_at is None


def test_a_failed_request_with_a_transient_error_is_a_transient_batch() -> None:
    errors = [err("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED", delay=17)]
    with pytest.raises(TransientError) as caught:
        judge(batch(request_id="abc"), errors, request_failed=True)
    assert caught.value.retry_after == 17.0
    assert caught.value.code == "resource_temporarily_exhausted"
    assert "request id abc" in str(caught.value)


def test_a_failed_request_with_a_permanent_error_rejects_the_batch() -> None:
    with pytest.raises(PermanentError) as caught:
        judge(batch(), [err("request_error", "INVALID_CUSTOMER_ID")], request_failed=True)
    assert caught.value.code == "invalid_customer_id"


def test_a_failed_request_out_of_daily_quota_stops_until_the_reset() -> None:
    with pytest.raises(DestinationUnavailable) as caught:
        judge(batch(), [err("quota_error", "RESOURCE_EXHAUSTED")], request_failed=True)
    assert caught.value.code == "daily_quota_exhausted"
    assert caught.value.retry_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_a_failed_request_blaming_rows_sends_the_other_rows_again() -> None:
    outcomes = judge(
        batch(), [err("request_error", "REQUIRED_FIELD_MISSING", 1)], request_failed=True
    )
    assert [(o.kind, o.code) for o in outcomes] == [
        (OutcomeKind.TRANSIENT, "not_processed"),
        (OutcomeKind.REJECTED, "required_field_missing"),
        (OutcomeKind.TRANSIENT, "not_processed"),
    ]


# --- payload → request message ----------------------------------------------------------


def test_a_payload_maps_one_to_one_onto_a_click_conversion() -> None:
    payload = {
        "conversion_action": "customers/1234567890/conversionActions/987654321",
        "conversion_date_time": "2026-11-20 14:03:00+03:00",
        "gbraid": "0AAAAADR1ZxyyZ2DI5Gw6p3HNnUcl6rqO8",
        "conversion_value": 1500.0,
        "currency_code": "RUB",
        "order_id": "A-1001",
        "user_identifiers": [{"hashed_email": "a" * 64}, {"hashed_phone_number": "b" * 64}],
        "consent": {"ad_user_data": "DENIED"},
        "custom_variables": [
            {"conversion_custom_variable": "customers/1/conversionCustomVariables/7", "value": "x"}
        ],
    }
    message = click_conversion(payload)
    assert api.ClickConversion.to_dict(
        message, preserving_proto_field_name=True, use_integers_for_enums=False
    ) == {
        **{k: v for k, v in payload.items() if k not in ("user_identifiers", "consent")},
        "wbraid": "",
        "user_identifiers": [
            {"hashed_email": "a" * 64, "user_identifier_source": "FIRST_PARTY"},
            {"hashed_phone_number": "b" * 64, "user_identifier_source": "FIRST_PARTY"},
        ],
        "consent": {"ad_user_data": "DENIED", "ad_personalization": "UNSPECIFIED"},
        "conversion_environment": "UNSPECIFIED",
        "customer_type": "UNSPECIFIED",
    }
    assert "gclid" not in message  # never set, not set to ""
    assert payload["user_identifiers"] == [
        {"hashed_email": "a" * 64},
        {"hashed_phone_number": "b" * 64},
    ]


def test_a_payload_key_the_api_does_not_have_is_a_bug() -> None:
    with pytest.raises(ValueError, match="gclid_typo"):
        click_conversion({"gclid_typo": "x"})


def test_an_adjustment_payload_maps_onto_a_conversion_adjustment() -> None:
    message = conversion_adjustment(
        {
            "adjustment_type": "RESTATEMENT",
            "conversion_action": "customers/1234567890/conversionActions/5",
            "order_id": "A-1",
            "adjustment_date_time": "2026-11-22 10:00:00+03:00",
            "restatement_value": {"adjusted_value": 900.0, "currency_code": "RUB"},
        }
    )
    assert message.adjustment_type.name == "RESTATEMENT"
    assert message.restatement_value.adjusted_value == 900.0
    assert message.order_id == "A-1"


def test_the_api_version_is_pinned_in_one_place() -> None:
    assert api.API_VERSION == "v26"
    for name in api.__all__:
        value = getattr(api, name)
        if isinstance(value, type):
            assert value.__module__.startswith(f"google.ads.googleads.{api.API_VERSION}."), name
    assert api.API_VERSION in api.FAILURE_TRAILER
