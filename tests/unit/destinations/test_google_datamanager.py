"""google_ads with api: data_manager — Event payloads (the dry-run contract), consent,
match signals, restatements, and the destination's config."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from convsync.core.errors import RowDeferred, RowRejected, RowSkipped
from convsync.core.model import Adjustment, AdjustmentKind, Conversion, Identifiers
from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget
from convsync.destinations.google_ads.datamanager.destination import DataManagerDestination

from .contract import EMAIL_SHA256, NOW, PHONE_SHA256, DestinationContract
from .test_google_ads import GCLID, MSK
from .test_google_ads import make_conversion as google_conversion

DM = {"api": "data_manager"}


def make_conversion(**changes: Any) -> Conversion:
    """The Google Ads API tests' conversion (the DESIGN example), without a consent."""
    return google_conversion(**{"consent": None, **changes})


def dm(**config: Any) -> DataManagerDestination:
    return DataManagerDestination(
        "google",
        GoogleAdsConfig.model_validate(
            {"type": "google_ads", "customer_id": "123-456-7890", **config}
        ),
    )


def target(**fields: Any) -> GoogleAdsTarget:
    return GoogleAdsTarget.model_validate({"conversion_action": 987654321, **fields}, context=DM)


PLAIN = target()
EC4L = target(enhanced_for_leads=True)
SIGNALS = {"google_session_attributes": "Z2FkX3NvdXJjZT0x", "ip_address": "203.0.113.77",
           "user_agent": "Mozilla/5.0 (X11)"}  # fmt: skip


@pytest.fixture
def destination() -> DataManagerDestination:
    return dm()


@pytest.fixture(name="target")
def target_fixture() -> GoogleAdsTarget:
    return EC4L  # the contract's PII checks go through the hashed-contact path too


@pytest.fixture
def conversion() -> Conversion:
    return make_conversion()


@pytest.fixture
def conversion_without_identifier() -> Conversion:
    return make_conversion(ids=Identifiers(yclid="123", vk_click_id="abc"))


class TestDataManagerContract(DestinationContract):
    pass


def test_event_of_the_design_example(destination: DataManagerDestination) -> None:
    assert destination.build(make_conversion(), PLAIN, NOW) == {
        "destination_references": ["987654321"],
        "transaction_id": "A-1001",
        "event_timestamp": "2026-11-20T11:03:00Z",
        "event_source": "WEB",
        "conversion_value": 1500.0,
        "currency": "RUB",
        "ad_identifiers": {"gclid": GCLID},
    }


def test_event_source_is_the_targets_when_given(destination: DataManagerDestination) -> None:
    event = destination.build(make_conversion(), target(event_source="in_store"), NOW)
    assert event["event_source"] == "IN_STORE"


def test_user_data_is_sent_hex_hashed_only_for_enhanced_conversions_for_leads(
    destination: DataManagerDestination,
) -> None:
    both = make_conversion(
        ids=Identifiers(gclid=GCLID, email_sha256=EMAIL_SHA256, phone_sha256=PHONE_SHA256)
    )
    assert "user_data" not in destination.build(both, PLAIN, NOW)
    assert destination.build(both, EC4L, NOW)["user_data"] == {
        "user_identifiers": [{"email_address": EMAIL_SHA256}, {"phone_number": PHONE_SHA256}]
    }
    only_email = make_conversion(ids=Identifiers(email_sha256=EMAIL_SHA256))
    event = destination.build(only_email, EC4L, NOW)
    assert "ad_identifiers" not in event
    assert destination.has_identifier(only_email, EC4L)
    assert not destination.has_identifier(only_email, PLAIN)


def test_the_records_consent_overrides_the_destination_default() -> None:
    dest = dm(consent={"ad_user_data": "granted", "ad_personalization": "Denied"})
    assert "consent" not in dest.build(make_conversion(), PLAIN, NOW)  # the request's applies
    own = dest.build(make_conversion(consent="DENIED"), PLAIN, NOW)
    assert own["consent"] == {
        "ad_user_data": "CONSENT_DENIED",
        "ad_personalization": "CONSENT_DENIED",
    }


def test_denied_consent_sends_no_user_data_and_no_device_info() -> None:
    dest = dm(send_ip_address=True, consent={"ad_user_data": "denied"})
    with_all = make_conversion(
        ids=Identifiers(gclid=GCLID, email_sha256=EMAIL_SHA256), attributes=SIGNALS
    )
    event = dest.build(with_all, EC4L, NOW)
    assert "user_data" not in event
    assert event["ad_identifiers"] == {"gclid": GCLID, "session_attributes": "Z2FkX3NvdXJjZT0x"}
    granted = dest.build(dataclasses.replace(with_all, consent="GRANTED"), EC4L, NOW)
    assert granted["user_data"] and granted["ad_identifiers"]["landing_page_device_info"]

    contact_only = make_conversion(ids=Identifiers(email_sha256=EMAIL_SHA256))
    assert not dest.has_identifier(contact_only, EC4L)  # planned as skipped: no_identifier
    with pytest.raises(RowRejected) as caught:
        dest.build(contact_only, EC4L, NOW)
    assert caught.value.code == "no_identifier"
    assert "denied ad_user_data consent" in caught.value.message


def test_an_unknown_consent_value_is_rejected(destination: DataManagerDestination) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(consent="maybe"), PLAIN, NOW)
    assert caught.value.code == "invalid_consent"


def test_session_attributes_are_sent_whenever_mapped_device_info_only_when_allowed() -> None:
    conversion = make_conversion(attributes=SIGNALS)
    off = dm().build(conversion, PLAIN, NOW)["ad_identifiers"]
    assert off == {"gclid": GCLID, "session_attributes": "Z2FkX3NvdXJjZT0x"}
    on = dm(send_ip_address=True).build(conversion, PLAIN, NOW)["ad_identifiers"]
    assert on["landing_page_device_info"] == {
        "ip_address": "203.0.113.77",
        "user_agent": "Mozilla/5.0 (X11)",
    }
    assert "ad_identifiers" not in dm(send_ip_address=True).build(
        make_conversion(ids=Identifiers(email_sha256=EMAIL_SHA256)), EC4L, NOW
    )


def test_an_ip_that_is_not_an_address_is_left_out() -> None:
    conversion = make_conversion(attributes={"ip_address": "10.0.0.1, 203.0.113.7"})
    event = dm(send_ip_address=True).build(conversion, PLAIN, NOW)
    assert event["ad_identifiers"] == {"gclid": GCLID}


def test_the_destination_keeps_the_signals_it_may_send() -> None:
    assert dm().attribute_fields(target(custom_variables={"Plan": "plan"})) == {
        "plan",
        "google_session_attributes",
    }
    assert dm(send_ip_address=True).attribute_fields(PLAIN) == {
        "google_session_attributes",
        "ip_address",
        "user_agent",
    }


def test_the_plan_shows_the_match_signals_masked() -> None:
    dest = dm(send_ip_address=True)
    event = dest.build(make_conversion(attributes=SIGNALS), PLAIN, NOW)
    shown = dest.shown_payload(event)
    assert shown["ad_identifiers"] == {
        "gclid": GCLID,
        "session_attributes": "<session attributes, 16 characters>",
        "landing_page_device_info": {
            "ip_address": "<IPv4 address>",
            "user_agent": "<user agent, 17 characters>",
        },
    }
    for value in SIGNALS.values():
        assert value not in repr(shown)
    assert event["ad_identifiers"]["landing_page_device_info"]["ip_address"] == "203.0.113.77"


def test_custom_variables_go_by_name(destination: DataManagerDestination) -> None:
    variables = target(custom_variables={"Plan tier": "plan", "Unused": "none"})
    event = destination.build(make_conversion(attributes={"plan": "gold"}), variables, NOW)
    assert event["custom_variables"] == [{"variable": "Plan tier", "value": "gold"}]


LATER = datetime(2026, 11, 22, 12, 0, tzinfo=MSK)


def test_a_restatement_is_the_same_event_with_the_new_value(
    destination: DataManagerDestination,
) -> None:
    restatement = Adjustment(
        AdjustmentKind.RESTATEMENT, datetime(2026, 11, 22, 10, 0, tzinfo=MSK), Decimal("900")
    )
    event = destination.build_adjustment(make_conversion(), restatement, PLAIN, LATER)
    assert event == {
        **destination.build(make_conversion(), PLAIN, LATER),
        "conversion_value": 900.0,
    }
    early = Adjustment(
        AdjustmentKind.RESTATEMENT, datetime(2026, 11, 20, 18, 0, tzinfo=MSK), Decimal("900")
    )
    with pytest.raises(RowDeferred) as deferred:
        destination.build_adjustment(
            make_conversion(), early, PLAIN, datetime(2026, 11, 20, 20, 0, tzinfo=MSK)
        )
    assert deferred.value.code == "too_recent_conversion"


def test_a_retraction_is_skipped_with_the_way_that_can_retract(
    destination: DataManagerDestination,
) -> None:
    retraction = Adjustment(AdjustmentKind.RETRACTION, datetime(2026, 11, 22, 10, 0, tzinfo=MSK))
    with pytest.raises(RowSkipped) as caught:
        destination.build_adjustment(make_conversion(), retraction, PLAIN, LATER)
    assert caught.value.code == "retraction_not_supported"
    assert "api: google_ads_api" in caught.value.message


# --- the destination's config -------------------------------------------------------------


def config(**values: Any) -> GoogleAdsConfig:
    return GoogleAdsConfig.model_validate({"type": "google_ads", "customer_id": "1", **values})


def test_the_default_api_is_data_manager_with_its_own_endpoint() -> None:
    plain = GoogleAdsConfig.model_validate({"type": "google_ads", "customer_id": "123-456-7890"})
    assert (plain.api, plain.endpoint) == ("data_manager", "datamanager.googleapis.com")
    legacy = GoogleAdsConfig.model_validate(
        {"type": "google_ads", "api": "google_ads_api", "customer_id": "1234567890"}
    )
    assert legacy.endpoint == "googleads.googleapis.com"
    own = GoogleAdsConfig.model_validate(
        {"type": "google_ads", "customer_id": "1234567890", "endpoint": "127.0.0.1:5"}
    )
    assert own.endpoint == "127.0.0.1:5"


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"developer_token": "x"}, "developer_token belongs to the Google Ads API"),
        ({"api": "google_ads_api", "send_ip_address": True}, "send_ip_address needs api"),
        (
            {"api": "google_ads_api", "consent": {"ad_user_data": "granted"}},
            "consent needs api: data_manager",
        ),
        ({"consent": {"ad_user_data": "maybe"}}, "ad_user_data"),
        ({"api": "data_mangaer"}, "api"),
    ],
)
def test_keys_of_the_other_api_are_refused(values: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        GoogleAdsConfig.model_validate(
            {"type": "google_ads", "customer_id": "1234567890", **values}
        )


def test_event_source_is_the_data_manager_apis_alone() -> None:
    with pytest.raises(ValidationError, match="event_source needs api: data_manager"):
        GoogleAdsTarget.model_validate(
            {"conversion_action": 1, "event_source": "WEB"}, context={"api": "google_ads_api"}
        )
    with pytest.raises(ValidationError, match="event_source"):
        target(event_source="SHOP")
