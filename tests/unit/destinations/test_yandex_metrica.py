"""yandex_metrica: offline-conversion CSV rows (the dry-run contract) and their pre-flight;
calls rows are in test_yandex_metrica_calls.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from convsync.core.errors import RowDeferred, RowRejected
from convsync.core.model import Conversion, Identifiers
from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.destinations.yandex_metrica.config import MetricaConfig, MetricaTarget

from .contract import NOW, DestinationContract, assert_explained

MSK = timezone(timedelta(hours=3))
CLIENT_ID = "1700000000123456789"
YCLID = "7436478623946523647"
#: 2026-11-20 14:03:00+03:00 as a Unix time
DESIGN_DATETIME = 1795172580


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
        ids=Identifiers(metrica_client_id=CLIENT_ID),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def destination() -> MetricaDestination:
    config = MetricaConfig(type="yandex_metrica", counter_id=12345678, token="secret-token")
    return MetricaDestination("metrica", config)


@pytest.fixture
def target() -> MetricaTarget:
    return MetricaTarget(target="offline_purchase")


@pytest.fixture
def conversion() -> Conversion:
    return make_conversion()


@pytest.fixture
def conversion_without_identifier() -> Conversion:
    return make_conversion(ids=Identifiers(gclid="Cj0KCQiA2-2eBhClARIs", vk_click_id="abc"))


class TestMetricaContract(DestinationContract):
    pass


TARGET = MetricaTarget(target="offline_purchase")


def test_payload_of_the_design_example(destination: MetricaDestination) -> None:
    assert destination.build(make_conversion(), TARGET, NOW) == {
        "counter_id": 12345678,
        "row": {
            "ClientId": CLIENT_ID,
            "Target": "offline_purchase",
            "DateTime": DESIGN_DATETIME,
            "Price": "1500.00",
            "Currency": "RUB",
        },
    }


def test_row_lists_every_identifier_present_then_target_time_price_currency(
    destination: MetricaDestination,
) -> None:
    conv = make_conversion(
        ids=Identifiers(
            purchase_id="A-1001",
            yclid=YCLID,
            metrica_user_id="crm-42",
            metrica_client_id=CLIENT_ID,
            gclid="ignored-by-metrica",
        )
    )
    row = destination.build(conv, TARGET, NOW)["row"]
    assert list(row) == [
        "ClientId",
        "UserId",
        "Yclid",
        "PurchaseId",
        "Target",
        "DateTime",
        "Price",
        "Currency",
    ]
    assert (row["UserId"], row["Yclid"], row["PurchaseId"]) == ("crm-42", YCLID, "A-1001")


def test_row_without_value_has_no_price_or_currency(destination: MetricaDestination) -> None:
    conv = make_conversion(ids=Identifiers(yclid=YCLID), value=None, currency="bogus")
    assert destination.build(conv, TARGET, NOW)["row"] == {
        "Yclid": YCLID,
        "Target": "offline_purchase",
        "DateTime": DESIGN_DATETIME,
    }


@pytest.mark.parametrize(
    ("value", "currency", "price"),
    [
        (Decimal("1500.5"), "USD", "1500.5"),
        (Decimal("1E+3"), "USD", "1000"),
        (Decimal("0"), "USD", "0"),
        (Decimal("99.90"), None, "99.90"),
    ],
)
def test_price_is_text_with_a_decimal_point(
    destination: MetricaDestination, value: Decimal, currency: str | None, price: str
) -> None:
    row = destination.build(make_conversion(value=value, currency=currency), TARGET, NOW)["row"]
    assert row["Price"] == price
    assert row.get("Currency") == currency


def test_datetime_is_the_same_instant_whatever_the_offset(
    destination: MetricaDestination,
) -> None:
    in_utc = make_conversion(occurred_at=datetime(2026, 11, 20, 11, 3, 0, 900000, tzinfo=UTC))
    assert destination.build(in_utc, TARGET, NOW)["row"]["DateTime"] == DESIGN_DATETIME


@pytest.mark.parametrize(
    "identifiers",
    [
        Identifiers(metrica_client_id=CLIENT_ID),
        Identifiers(metrica_user_id="crm-42"),
        Identifiers(yclid=YCLID),
        Identifiers(purchase_id="A-1001"),
    ],
)
def test_any_one_of_the_four_identifiers_is_enough(
    destination: MetricaDestination, identifiers: Identifiers
) -> None:
    assert destination.has_identifier(make_conversion(ids=identifiers), TARGET)


@pytest.mark.parametrize(
    ("identifiers", "code"),
    [
        (Identifiers(metrica_client_id="abc123"), "invalid_client_id"),
        (Identifiers(metrica_client_id="1.5"), "invalid_client_id"),
        (Identifiers(metrica_client_id="18446744073709551616"), "invalid_client_id"),
        (Identifiers(metrica_client_id="١٢٣"), "invalid_client_id"),
        (Identifiers(yclid="12x"), "invalid_yclid"),
        (Identifiers(yclid="123456789012345678901"), "invalid_yclid"),
        (Identifiers(metrica_user_id="crm\n42"), "invalid_user_id"),
        (Identifiers(purchase_id="A-1\x00"), "invalid_purchase_id"),
    ],
)
def test_malformed_identifiers_are_rejected(
    destination: MetricaDestination, identifiers: Identifiers, code: str
) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(ids=identifiers), TARGET, NOW)
    assert caught.value.code == code
    assert_explained(caught.value)


def test_largest_client_id_is_accepted(destination: MetricaDestination) -> None:
    conv = make_conversion(ids=Identifiers(metrica_client_id="18446744073709551615"))
    assert destination.build(conv, TARGET, NOW)["row"]["ClientId"] == "18446744073709551615"


@pytest.mark.parametrize("bad", ["goal/1", "a\\b", "a&b", "a#b", "a?b", "a=b", 'a"b', "a b", ""])
def test_target_with_forbidden_characters_is_rejected_even_past_the_config(
    destination: MetricaDestination, bad: str
) -> None:
    # model_construct skips validation: the row check must not rely on the config's.
    target = MetricaTarget.model_construct(target=bad)
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(), target, NOW)
    assert caught.value.code == "invalid_target"
    assert_explained(caught.value)


def test_matching_window_is_21_days(destination: MetricaDestination) -> None:
    at_limit = make_conversion(occurred_at=NOW - timedelta(days=21))
    assert destination.build(at_limit, TARGET, NOW)["row"]["DateTime"] == int(
        (NOW - timedelta(days=21)).timestamp()
    )
    with pytest.raises(RowRejected) as caught:
        destination.build(
            make_conversion(occurred_at=NOW - timedelta(days=21, seconds=1)), TARGET, NOW
        )
    assert caught.value.code == "outside_matching_window"
    assert "21 days" in caught.value.message
    assert "visit" in caught.value.message


def test_datetime_must_be_safely_in_the_past(destination: MetricaDestination) -> None:
    just_now = NOW - timedelta(seconds=20)
    with pytest.raises(RowDeferred) as caught:
        destination.build(make_conversion(occurred_at=just_now), TARGET, NOW)
    assert caught.value.code == "future_conversion_time"
    assert caught.value.retry_at == just_now + timedelta(minutes=1)
    a_minute_ago = make_conversion(occurred_at=NOW - timedelta(minutes=1))
    assert destination.build(a_minute_ago, TARGET, NOW)["row"]["DateTime"] == int(
        (NOW - timedelta(minutes=1)).timestamp()
    )
    with pytest.raises(RowRejected) as rejected:
        destination.build(make_conversion(occurred_at=NOW + timedelta(days=2)), TARGET, NOW)
    assert rejected.value.code == "future_conversion_time"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"value": Decimal("-1")}, "negative_value"),
        ({"value": Decimal("sNaN")}, "invalid_value"),
        ({"currency": "RUBLES"}, "invalid_currency"),
    ],
)
def test_value_rules(destination: MetricaDestination, changes: dict[str, Any], code: str) -> None:
    with pytest.raises(RowRejected) as caught:
        destination.build(make_conversion(**changes), TARGET, NOW)
    assert caught.value.code == code


def test_describe_names_the_counter_and_never_the_token(destination: MetricaDestination) -> None:
    described = destination.describe()
    assert described["counter_id"] == 12345678
    assert "secret-token" not in repr(described)
