"""vk_ads: pixel offline events (the dry-run contract) and their pre-flight."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable, RowDeferred, RowRejected
from convsync.core.model import Conversion, Identifiers, OutboundRow, OutcomeKind
from convsync.destinations.vk_ads import VkAdsDestination
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
from convsync.destinations.vk_ads.tracker import event_url

from .contract import NOW, DestinationContract, assert_explained

MSK = timezone(timedelta(hours=3))
CLICK_ID = "a1b2c3d4e5f6"


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
        ids=Identifiers(vk_click_id=CLICK_ID),
    )
    return dataclasses.replace(base, **changes)


def make_destination(**config: Any) -> VkAdsDestination:
    return VkAdsDestination("vk", VkAdsConfig(type="vk_ads", pixel_id=3456789, **config))


@pytest.fixture
def destination() -> VkAdsDestination:
    return make_destination()


@pytest.fixture
def target() -> VkAdsTarget:
    return VkAdsTarget(goal="purchase")


@pytest.fixture
def conversion() -> Conversion:
    return make_conversion()


@pytest.fixture
def conversion_without_identifier() -> Conversion:
    return make_conversion(ids=Identifiers(gclid="Cj0KCQiA2-2eBhClARIs", yclid="123"))


class TestVkAdsContract(DestinationContract):
    pass


TARGET = VkAdsTarget(goal="purchase")


def test_payload_of_the_design_example(destination: VkAdsDestination) -> None:
    assert destination.build(make_conversion(), TARGET, NOW) == {
        "pixel_id": 3456789,
        "goal": "purchase",
        "value": 1500,
        "rb_clickid": CLICK_ID,
    }


def test_click_id_wins_over_user_id_and_user_id_is_the_fallback(
    destination: VkAdsDestination,
) -> None:
    both = make_conversion(ids=Identifiers(vk_click_id=CLICK_ID, vk_user_id="u-42"))
    payload = destination.build(both, TARGET, NOW)
    assert payload["rb_clickid"] == CLICK_ID
    assert "userid" not in payload
    user_only = make_conversion(ids=Identifiers(vk_user_id="u-42"))
    assert destination.has_identifier(user_only, TARGET)
    assert destination.build(user_only, TARGET, NOW) == {
        "pixel_id": 3456789,
        "goal": "purchase",
        "value": 1500,
        "userid": "u-42",
    }


@pytest.mark.parametrize(
    ("value", "sent"),
    [(None, 0), (Decimal("0"), 0), (Decimal("99.90"), 99.9), (Decimal("1E+3"), 1000)],
)
def test_value_is_a_number_and_zero_without_one(
    destination: VkAdsDestination, value: Decimal | None, sent: float
) -> None:
    payload = destination.build(make_conversion(value=value), TARGET, NOW)
    assert payload["value"] == sent
    assert type(payload["value"]) is type(sent)


@pytest.mark.parametrize(
    ("identifiers", "code", "named"),
    [
        (Identifiers(vk_click_id="abc;def"), "invalid_rb_clickid", "';'"),
        (Identifiers(vk_click_id="abc/def"), "invalid_rb_clickid", "'/'"),
        (Identifiers(vk_click_id="abc def"), "invalid_rb_clickid", "space"),
        (Identifiers(vk_click_id="a&b=c"), "invalid_rb_clickid", "'&', '='"),
        (Identifiers(vk_user_id="u;42"), "invalid_vk_user_id", "';'"),
        (Identifiers(vk_user_id="u\n42"), "invalid_vk_user_id", "line break"),
    ],
)
def test_identifiers_that_would_break_the_tracker_url_are_rejected(
    destination: VkAdsDestination, identifiers: Identifiers, code: str, named: str
) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(ids=identifiers), TARGET, NOW)
    assert caught.value.code == code
    assert named in caught.value.message
    assert_explained(caught.value)


@pytest.mark.parametrize("bad", ["buy;now", "a/b", "a b", "a%3A", ""])
def test_goal_that_would_break_the_tracker_url_is_rejected_even_past_the_config(
    destination: VkAdsDestination, bad: str
) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(), VkAdsTarget.model_construct(goal=bad), NOW)
    assert caught.value.code == "invalid_goal"


def test_negative_value_is_rejected(destination: VkAdsDestination) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(value=Decimal("-5")), TARGET, NOW)
    assert caught.value.code == "negative_value"


def test_events_older_than_max_event_age_are_rejected(destination: VkAdsDestination) -> None:
    at_limit = make_conversion(occurred_at=NOW - timedelta(days=30))
    assert destination.build(at_limit, TARGET, NOW)["goal"] == "purchase"
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(occurred_at=NOW - timedelta(days=31)), TARGET, NOW)
    assert caught.value.code == "event_too_old"
    assert "30 days" in caught.value.message
    assert "max_event_age" in caught.value.message


def test_max_event_age_is_configurable(target: VkAdsTarget) -> None:
    week = make_destination(max_event_age="7d")
    with pytest.raises(RowRejected) as caught:
        week.build(make_conversion(occurred_at=NOW - timedelta(days=8)), target, NOW)
    assert caught.value.code == "event_too_old"
    assert "7 days" in caught.value.message


def test_future_event_waits_because_vk_counts_it_on_arrival(
    destination: VkAdsDestination,
) -> None:
    moment = NOW + timedelta(minutes=30)
    with pytest.raises(RowDeferred) as caught:
        destination.build(make_conversion(occurred_at=moment), TARGET, NOW)
    assert caught.value.retry_at == moment + timedelta(minutes=1)


def test_describe_names_the_pixel(destination: VkAdsDestination) -> None:
    assert destination.describe() == {"destination": "vk", "type": "vk_ads", "pixel_id": 3456789}


def test_the_payload_becomes_the_documented_tracker_url(destination: VkAdsDestination) -> None:
    payload = destination.build(make_conversion(), TARGET, NOW)
    assert event_url("https://top-fwz1.mail.ru/tracker", payload) == (
        "https://top-fwz1.mail.ru/tracker?id=3456789;e=RG%3A1500/purchase;rb_clickid=a1b2c3d4e5f6"
    )
    user = destination.build(make_conversion(ids=Identifiers(vk_user_id="u-42")), TARGET, NOW)
    assert event_url("https://top-fwz1.mail.ru/tracker", user) == (
        "https://top-fwz1.mail.ru/tracker?id=3456789;e=RG%3A1500/purchase;userid=u-42"
    )


def test_a_row_left_in_sending_by_a_crash_is_uncertain_never_resent(
    destination: VkAdsDestination,
) -> None:
    rows = [
        OutboundRow(i, make_conversion(), destination.build(make_conversion(), TARGET, NOW))
        for i in (1, 2, 3)
    ]
    verdicts = destination.recover(rows)
    assert len(verdicts) == 3
    for verdict in verdicts:
        assert verdict is not None
        assert verdict.kind is OutcomeKind.UNCERTAIN and verdict.code == "no_receipt"
        assert verdict.message is not None
        assert "may or may not have reached VK" in verdict.message
        assert "`convsync retry --state uncertain`" in verdict.message


def test_send_needs_connect_and_an_empty_batch_sends_nothing(
    destination: VkAdsDestination,
) -> None:
    assert destination.send([]) == []
    row = OutboundRow(1, make_conversion(), destination.build(make_conversion(), TARGET, NOW))
    with pytest.raises(RuntimeError, match="connect"):
        destination.send([row])


def test_api_needs_the_client_credentials(destination: VkAdsDestination) -> None:
    with pytest.raises(DestinationUnavailable) as caught:
        destination.api()
    assert caught.value.code == "api_client_missing"
    assert "client_id and client_secret" in caught.value.message
