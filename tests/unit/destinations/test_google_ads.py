"""google_ads: ClickConversion payloads (the dry-run contract) and their pre-flight."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from convsync.core.errors import RowDeferred, RowRejected
from convsync.core.model import Adjustment, AdjustmentKind, Conversion, Identifiers
from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget

from .contract import (
    EMAIL_SHA256,
    NOW,
    PHONE_SHA256,
    DestinationContract,
    assert_explained,
    assert_json_only,
)

MSK = timezone(timedelta(hours=3))
GCLID = "Cj0KCQiA2-2eBhClARIsAGLQ2RlDk_example_gclid_w1Z3"
GBRAID = "0AAAAADR1ZxyyZ2DI5Gw6p3HNnUcl6rqO8"
WBRAID = "CjkKCQiA2-2eBhDkARIsAexample_wbraid_A1b2"


def make_conversion(**changes: Any) -> Conversion:
    base = Conversion(
        key="c-1",
        source="shop",
        record_id="1001",
        goal="purchase",
        order_id="A-1001",
        occurred_at=datetime(2026, 11, 20, 14, 3, tzinfo=MSK),
        value=Decimal("1500.00"),
        currency="RUB",
        ids=Identifiers(gclid=GCLID),
        consent="GRANTED",
    )
    return dataclasses.replace(base, **changes)


def ids(**values: str) -> Identifiers:
    return Identifiers(**values)


@pytest.fixture
def destination() -> GoogleAdsDestination:
    config = GoogleAdsConfig(type="google_ads", api="google_ads_api", customer_id="123-456-7890")
    return GoogleAdsDestination("google", config)


@pytest.fixture
def target() -> GoogleAdsTarget:
    # EC4L on, so the contract's PII checks go through the hashed-identifier path too.
    return GoogleAdsTarget(conversion_action=987654321, enhanced_for_leads=True)


@pytest.fixture
def conversion() -> Conversion:
    return make_conversion()


@pytest.fixture
def conversion_without_identifier() -> Conversion:
    return make_conversion(ids=ids(yclid="123", vk_click_id="abc"))


class TestGoogleAdsContract(DestinationContract):
    pass


PLAIN = GoogleAdsTarget(conversion_action=987654321)
EC4L = GoogleAdsTarget(conversion_action=987654321, enhanced_for_leads=True)


def test_payload_of_the_design_example(destination: GoogleAdsDestination) -> None:
    assert destination.build(make_conversion(), PLAIN, NOW) == {
        "conversion_action": "customers/1234567890/conversionActions/987654321",
        "conversion_date_time": "2026-11-20 14:03:00+03:00",
        "gclid": GCLID,
        "conversion_value": 1500.0,
        "currency_code": "RUB",
        "order_id": "A-1001",
        "consent": {"ad_user_data": "GRANTED"},
    }


def test_conversion_action_accepts_a_resource_name(destination: GoogleAdsDestination) -> None:
    target = GoogleAdsTarget(conversion_action="customers/1234567890/conversionActions/55")
    payload = destination.build(make_conversion(), target, NOW)
    assert payload["conversion_action"] == "customers/1234567890/conversionActions/55"


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 20, 11, 3, tzinfo=UTC), "2026-11-20 11:03:00+00:00"),
        (
            datetime(2026, 11, 19, 16, 3, 7, 999999, tzinfo=timezone(-timedelta(hours=8))),
            "2026-11-19 16:03:07-08:00",
        ),
        (
            datetime(2026, 11, 20, 16, 33, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2026-11-20 16:33:00+05:30",
        ),
        # an offset with seconds has no hh:mm form: the same instant in UTC
        (
            datetime(2026, 11, 20, 11, 3, 30, tzinfo=timezone(timedelta(seconds=30))),
            "2026-11-20 11:03:00+00:00",
        ),
    ],
)
def test_conversion_date_time_keeps_the_conversions_own_offset(
    destination: GoogleAdsDestination, moment: datetime, text: str
) -> None:
    payload = destination.build(make_conversion(occurred_at=moment), PLAIN, NOW)
    assert payload["conversion_date_time"] == text


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"gclid": GCLID, "gbraid": GBRAID, "wbraid": WBRAID}, ("gclid", GCLID)),
        ({"gbraid": GBRAID, "wbraid": WBRAID}, ("gbraid", GBRAID)),
        ({"wbraid": WBRAID}, ("wbraid", WBRAID)),
        ({"gclid": "", "wbraid": WBRAID}, ("wbraid", WBRAID)),
    ],
)
def test_exactly_one_click_id_is_sent_gclid_before_gbraid_before_wbraid(
    destination: GoogleAdsDestination, given: dict[str, str], sent: tuple[str, str]
) -> None:
    payload = destination.build(make_conversion(ids=ids(**given)), PLAIN, NOW)
    assert [k for k in ("gclid", "gbraid", "wbraid") if k in payload] == [sent[0]]
    assert payload[sent[0]] == sent[1]


def test_hashed_identifiers_are_sent_only_for_enhanced_conversions_for_leads(
    destination: GoogleAdsDestination,
) -> None:
    conv = make_conversion(
        ids=ids(gclid=GCLID, email_sha256=EMAIL_SHA256, phone_sha256=PHONE_SHA256.upper())
    )
    assert "user_identifiers" not in destination.build(conv, PLAIN, NOW)
    assert destination.build(conv, EC4L, NOW)["user_identifiers"] == [
        {"hashed_email": EMAIL_SHA256},
        {"hashed_phone_number": PHONE_SHA256},
    ]
    phone_only = make_conversion(ids=ids(phone_sha256=PHONE_SHA256))
    payload = destination.build(phone_only, EC4L, NOW)
    assert payload["user_identifiers"] == [{"hashed_phone_number": PHONE_SHA256}]
    assert not {"gclid", "gbraid", "wbraid"} & payload.keys()


def test_has_identifier(destination: GoogleAdsDestination) -> None:
    hashed_only = make_conversion(ids=ids(email_sha256=EMAIL_SHA256))
    assert destination.has_identifier(make_conversion(ids=ids(wbraid=WBRAID)), PLAIN)
    assert not destination.has_identifier(hashed_only, PLAIN)
    assert destination.has_identifier(hashed_only, EC4L)
    assert not destination.has_identifier(make_conversion(ids=ids(yclid="1")), EC4L)
    with pytest.raises(RowRejected, match="enhanced_for_leads") as caught:
        destination.build(hashed_only, PLAIN, NOW)
    assert caught.value.code == "no_identifier"


def test_malformed_hash_is_rejected_without_showing_it(destination: GoogleAdsDestination) -> None:
    conv = make_conversion(ids=ids(gclid=GCLID, email_sha256="jane@example.com"))
    assert "user_identifiers" not in destination.build(conv, PLAIN, NOW)
    with pytest.raises(RowRejected) as caught:
        destination.build(conv, EC4L, NOW)
    assert caught.value.code == "invalid_user_identifier"
    assert "jane" not in caught.value.message
    assert_explained(caught.value)


@pytest.mark.parametrize(
    ("consent", "sent"), [("GRANTED", "GRANTED"), ("DENIED", "DENIED"), ("denied", "DENIED")]
)
def test_consent_is_sent_when_known(
    destination: GoogleAdsDestination, consent: str, sent: str
) -> None:
    payload = destination.build(make_conversion(consent=consent), PLAIN, NOW)
    assert payload["consent"] == {"ad_user_data": sent}


def test_unknown_consent_is_left_out_and_a_bad_one_rejected(
    destination: GoogleAdsDestination,
) -> None:
    assert "consent" not in destination.build(make_conversion(consent=None), PLAIN, NOW)
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(consent="yes"), PLAIN, NOW)
    assert caught.value.code == "invalid_consent"


def test_value_and_currency(destination: GoogleAdsDestination) -> None:
    no_value = destination.build(make_conversion(value=None, currency="bogus"), PLAIN, NOW)
    assert "conversion_value" not in no_value
    assert "currency_code" not in no_value
    assert no_value["order_id"] == "A-1001"
    zero = destination.build(make_conversion(value=Decimal(0), currency="USD"), PLAIN, NOW)
    assert (zero["conversion_value"], zero["currency_code"]) == (0.0, "USD")
    cents = destination.build(make_conversion(value=Decimal("19.99")), PLAIN, NOW)
    assert cents["conversion_value"] == 19.99


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"currency": None}, "missing_currency"),
        ({"currency": "rub"}, "invalid_currency"),
        ({"value": Decimal("-0.01")}, "negative_value"),
        ({"value": Decimal("NaN")}, "invalid_value"),
        ({"value": Decimal("Infinity")}, "invalid_value"),
        ({"order_id": ""}, "missing_order_id"),
    ],
)
def test_value_currency_and_order_id_rules(
    destination: GoogleAdsDestination, changes: dict[str, object], code: str
) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(**changes), PLAIN, NOW)
    assert caught.value.code == code
    assert_explained(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("gclid", "abc def ghi jkl", "space"),
        ("gclid", "Cj0KCQiA2+2eBh/ClARIs=", "'+', '/', '='"),
        ("gbraid", "0AAAAADR1Zxy;yZ2DI5G", "';'"),
        ("wbraid", "CjkKCQiA2.2eBhDkARIs", "'.'"),
        ("gclid", "Cj0KCQ", "6 characters"),
        ("gclid", "C" * 1001, "1001 characters"),
    ],
)
def test_malformed_click_id_is_rejected_as_unparseable(
    destination: GoogleAdsDestination, field: str, value: str, named: str
) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(ids=ids(**{field: value})), PLAIN, NOW)
    assert caught.value.code == f"unparseable_{field}"
    assert named in caught.value.message
    assert_explained(caught.value)


def test_message_names_the_click_id(destination: GoogleAdsDestination) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(ids=ids(gclid="abc def ghij")), PLAIN, NOW)
    assert caught.value.message.startswith(
        "gclid 'abc def ghij' contains characters a Google click id never has (space)"
    )


def test_lookback_is_90_days(destination: GoogleAdsDestination) -> None:
    at_limit = make_conversion(occurred_at=NOW - timedelta(days=90))
    assert destination.build(at_limit, PLAIN, NOW)["order_id"] == "A-1001"
    with pytest.raises(RowRejected) as caught:
        destination.build(
            make_conversion(occurred_at=NOW - timedelta(days=90, seconds=1)), PLAIN, NOW
        )
    assert caught.value.code == "expired_event"
    assert "90 days" in caught.value.message
    assert "click" in caught.value.message


def test_future_conversion_waits_until_it_is_past(destination: GoogleAdsDestination) -> None:
    moment = datetime(2026, 11, 21, 15, 0, tzinfo=MSK)  # 3 hours after NOW
    with pytest.raises(RowDeferred) as caught:
        destination.build(make_conversion(occurred_at=moment), PLAIN, NOW)
    assert caught.value.code == "future_conversion_time"
    assert caught.value.retry_at == moment + timedelta(minutes=1)
    assert "2026-11-21 15:00:00+03:00" in caught.value.message
    day_ahead = make_conversion(occurred_at=NOW + timedelta(days=1))
    with pytest.raises(RowDeferred):
        destination.build(day_ahead, PLAIN, NOW)
    beyond = make_conversion(occurred_at=NOW + timedelta(days=1, seconds=1))
    with pytest.raises(RowRejected) as rejected:
        destination.build(beyond, PLAIN, NOW)
    assert rejected.value.code == "future_conversion_time"


def test_naive_time_is_a_bug_not_a_rejection(destination: GoogleAdsDestination) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        destination.build(make_conversion(occurred_at=datetime(2026, 11, 20, 14, 3)), PLAIN, NOW)


def test_describe_names_the_account(destination: GoogleAdsDestination) -> None:
    assert destination.describe() == {
        "destination": "google",
        "type": "google_ads",
        "customer_id": "1234567890",
    }


# --- custom variables ---------------------------------------------------------------------

VARIABLES = GoogleAdsTarget(conversion_action=987654321, custom_variables={11: "plan", 12: "tier"})


def test_custom_variables_carry_the_record_fields_that_have_a_value(
    destination: GoogleAdsDestination,
) -> None:
    conv = make_conversion(attributes={"plan": "gold", "tier": "  ", "other": "x"})
    assert destination.build(conv, VARIABLES, NOW)["custom_variables"] == [
        {
            "conversion_custom_variable": "customers/1234567890/conversionCustomVariables/11",
            "value": "gold",
        }
    ]
    both = make_conversion(attributes={"tier": "2", "plan": "gold"})
    assert [v["value"] for v in destination.build(both, VARIABLES, NOW)["custom_variables"]] == [
        "gold",
        "2",
    ]


@pytest.mark.parametrize("attributes", [None, {}, {"plan": ""}, {"unrelated": "x"}])
def test_no_custom_variables_without_values(
    destination: GoogleAdsDestination, attributes: dict[str, str] | None
) -> None:
    payload = destination.build(make_conversion(attributes=attributes), VARIABLES, NOW)
    assert "custom_variables" not in payload
    assert "custom_variables" not in destination.build(make_conversion(), PLAIN, NOW)


def test_attribute_fields_are_the_custom_variables_fields(
    destination: GoogleAdsDestination,
) -> None:
    assert destination.attribute_fields(VARIABLES) == frozenset({"plan", "tier"})
    assert destination.attribute_fields(PLAIN) == frozenset()


def test_custom_variable_ids_take_numbers_or_resource_names() -> None:
    api = {"api": "google_ads_api"}
    target = GoogleAdsTarget.model_validate(
        {
            "conversion_action": 1,
            "custom_variables": {
                "12": " plan ",
                "customers/123/conversionCustomVariables/77": "tier",
            },
        },
        context=api,
    )
    assert target.custom_variables == {"12": "plan", "77": "tier"}
    for bad in ({0: "plan"}, {"abc": "plan"}, {5: ""}):
        with pytest.raises(ValueError, match="custom_variables"):
            GoogleAdsTarget.model_validate(
                {"conversion_action": 1, "custom_variables": bad}, context=api
            )


def test_data_manager_custom_variables_are_named_by_name_not_id() -> None:
    api = {"api": "data_manager"}
    target = GoogleAdsTarget.model_validate(
        {"conversion_action": 1, "custom_variables": {" Plan tier ": "tier"}}, context=api
    )
    assert target.custom_variables == {"Plan tier": "tier"}
    for bad in ({12: "plan"}, {"customers/1/conversionCustomVariables/7": "plan"}):
        with pytest.raises(ValueError, match="named by its name"):
            GoogleAdsTarget.model_validate(
                {"conversion_action": 1, "custom_variables": bad}, context=api
            )


# --- adjustments --------------------------------------------------------------------------

#: two days after the DESIGN example conversion (2026-11-20 14:03:00+03:00)
LATER = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def restatement(value: str | None = "900", currency: str | None = None) -> Adjustment:
    return Adjustment(
        AdjustmentKind.RESTATEMENT,
        datetime(2026, 11, 22, 10, 0, tzinfo=MSK),
        Decimal(value) if value is not None else None,
        currency,
    )


def retraction(adjusted_at: datetime = datetime(2026, 11, 22, 10, 0, tzinfo=MSK)) -> Adjustment:
    return Adjustment(AdjustmentKind.RETRACTION, adjusted_at)


def test_destination_supports_adjustments_and_validation() -> None:
    assert GoogleAdsDestination.supports_adjustments is True
    assert GoogleAdsDestination.supports_validation is True


def test_retraction_payload(destination: GoogleAdsDestination) -> None:
    payload = destination.build_adjustment(make_conversion(), retraction(), PLAIN, LATER)
    assert payload == {
        "adjustment_type": "RETRACTION",
        "conversion_action": "customers/1234567890/conversionActions/987654321",
        "order_id": "A-1001",
        "adjustment_date_time": "2026-11-22 10:00:00+03:00",
    }
    assert_json_only(payload)


def test_restatement_payload_uses_its_own_currency_else_the_conversions(
    destination: GoogleAdsDestination,
) -> None:
    payload = destination.build_adjustment(make_conversion(), restatement("900.50"), PLAIN, LATER)
    assert payload == {
        "adjustment_type": "RESTATEMENT",
        "conversion_action": "customers/1234567890/conversionActions/987654321",
        "order_id": "A-1001",
        "adjustment_date_time": "2026-11-22 10:00:00+03:00",
        "restatement_value": {"adjusted_value": 900.5, "currency_code": "RUB"},
    }
    assert_json_only(payload)
    in_usd = destination.build_adjustment(make_conversion(), restatement("10", "USD"), PLAIN, LATER)
    assert in_usd["restatement_value"] == {"adjusted_value": 10.0, "currency_code": "USD"}
    zero = destination.build_adjustment(make_conversion(), restatement("0"), PLAIN, LATER)
    assert zero["restatement_value"]["adjusted_value"] == 0.0


@pytest.mark.parametrize(
    ("conversion_changes", "adjustment", "code"),
    [
        ({}, restatement(None), "missing_restatement_value"),
        ({"currency": None}, restatement("900"), "missing_currency"),
        ({}, restatement("900", "usd"), "invalid_currency"),
        ({}, restatement("-1"), "negative_value"),
        ({}, restatement("NaN"), "invalid_value"),
        ({"order_id": ""}, retraction(), "missing_order_id"),
        (
            {},
            retraction(datetime(2026, 11, 20, 14, 3, tzinfo=MSK)),
            "adjustment_precedes_conversion",
        ),
        (
            {},
            retraction(datetime(2026, 11, 19, 10, 0, tzinfo=MSK)),
            "adjustment_precedes_conversion",
        ),
    ],
)
def test_adjustment_rejections(
    destination: GoogleAdsDestination,
    conversion_changes: dict[str, Any],
    adjustment: Adjustment,
    code: str,
) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build_adjustment(
            make_conversion(**conversion_changes), adjustment, PLAIN, LATER
        )
    assert caught.value.code == code
    assert_explained(caught.value)


def test_adjustment_waits_until_the_conversion_is_24_hours_old(
    destination: GoogleAdsDestination,
) -> None:
    occurred = datetime(2026, 11, 20, 14, 3, tzinfo=MSK)
    adjusted = retraction(occurred + timedelta(hours=1))
    just_before = occurred + timedelta(hours=24) - timedelta(seconds=1)
    with pytest.raises(RowDeferred) as caught:
        destination.build_adjustment(make_conversion(), adjusted, PLAIN, just_before)
    assert caught.value.code == "too_recent_conversion"
    assert caught.value.retry_at == occurred + timedelta(hours=24, minutes=5)
    assert caught.value.retry_at.utcoffset() == timedelta(0)
    assert_explained(caught.value)
    at_24h = occurred + timedelta(hours=24)
    assert destination.build_adjustment(make_conversion(), adjusted, PLAIN, at_24h)


def test_adjustment_window_closes_after_54_days(destination: GoogleAdsDestination) -> None:
    occurred = datetime(2026, 11, 20, 14, 3, tzinfo=MSK)
    adjusted = retraction(occurred + timedelta(days=1))
    assert destination.build_adjustment(
        make_conversion(), adjusted, PLAIN, occurred + timedelta(days=54)
    )
    with pytest.raises(RowRejected) as caught:
        destination.build_adjustment(
            make_conversion(), adjusted, PLAIN, occurred + timedelta(days=54, seconds=1)
        )
    assert caught.value.code == "adjustment_window_closed"
    assert "54 days" in caught.value.message
    assert_explained(caught.value)


def test_a_rejected_adjustment_is_not_kept_waiting(destination: GoogleAdsDestination) -> None:
    """Too recent *and* without a value: rejected now, not deferred for 24 hours first."""
    with pytest.raises(RowRejected):
        destination.build_adjustment(make_conversion(), restatement(None), PLAIN, NOW)


def test_future_adjustment_time(destination: GoogleAdsDestination) -> None:
    soon = retraction(LATER + timedelta(minutes=30))
    with pytest.raises(RowDeferred) as caught:
        destination.build_adjustment(make_conversion(), soon, PLAIN, LATER)
    assert caught.value.code == "future_adjustment_time"
    assert caught.value.retry_at == LATER + timedelta(minutes=31)
    far = retraction(LATER + timedelta(days=2))
    with pytest.raises(RowRejected) as rejected:
        destination.build_adjustment(make_conversion(), far, PLAIN, LATER)
    assert rejected.value.code == "future_adjustment_time"
    assert_explained(rejected.value)
