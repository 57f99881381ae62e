"""yandex_metrica ``type: calls`` targets: their config, the calls row (no Target, the
call columns from record fields) and the pre-flight of each call column."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from convsync.config.loader import parse_config
from convsync.core.errors import ConfigError, RowRejected
from convsync.core.model import Conversion, Identifiers
from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.destinations.yandex_metrica.config import MetricaConfig, MetricaTarget

from .contract import NOW, DestinationContract, assert_explained

MSK = timezone(timedelta(hours=3))
CLIENT_ID = "1700000000123456789"
FIELDS = {
    "PhoneNumber": "tracking_number",
    "TalkDuration": "talk",
    "HoldDuration": "hold",
    "CallMissed": "missed",
    "Tag": "tag",
    "FirstTimeCaller": "first",
    "URL": "page",
    "CallTrackerURL": "tracker",
    "StaticCall": "static",
}
ATTRIBUTES = {
    "tracking_number": "+7 (495) 123-45-67",
    "talk": "1:35",
    "hold": "12",
    "missed": "no",
    "tag": "price too high, will call back",
    "first": "да",
    "page": "https://shop.example/landing?utm=direct",
    "tracker": "https://calltracker.example/calls/42",
    "static": "0",
}
CALLS = MetricaTarget(type="calls", call_fields=FIELDS)  # type: ignore[arg-type]


def make_call(**changes: Any) -> Conversion:
    base = Conversion(
        key="call-1",
        source="calls",
        record_id="77",
        goal="call",
        order_id="77",
        occurred_at=datetime(2026, 11, 20, 14, 3, tzinfo=MSK),
        value=Decimal("500"),
        currency="RUB",
        ids=Identifiers(metrica_client_id=CLIENT_ID),
        attributes=dict(ATTRIBUTES),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def destination() -> MetricaDestination:
    config = MetricaConfig(type="yandex_metrica", counter_id=12345678, token="secret-token")
    return MetricaDestination("metrica", config)


@pytest.fixture
def target() -> MetricaTarget:
    return CALLS


@pytest.fixture
def conversion() -> Conversion:
    return make_call()


@pytest.fixture
def conversion_without_identifier() -> Conversion:
    # PurchaseId links an order, not a call: a calls file has no such column
    return make_call(ids=Identifiers(purchase_id="A-1001", gclid="Cj0KCQiA2-2eBhClARIs"))


class TestMetricaCallsContract(DestinationContract):
    pass


def test_calls_row_has_no_target_and_every_mapped_call_column(
    destination: MetricaDestination,
) -> None:
    payload = destination.build(make_call(), CALLS, NOW)
    assert payload == {
        "counter_id": 12345678,
        "type": "CALLS",
        "row": {
            "ClientId": CLIENT_ID,
            "DateTime": 1795172580,
            "Price": "500",
            "Currency": "RUB",
            "PhoneNumber": "+74951234567",
            "TalkDuration": 95,
            "HoldDuration": 12,
            "CallMissed": 0,
            "Tag": "price too high, will call back",
            "FirstTimeCaller": 1,
            "URL": "https://shop.example/landing?utm=direct",
            "CallTrackerURL": "https://calltracker.example/calls/42",
            "StaticCall": 0,
        },
    }


def test_a_field_without_a_value_leaves_its_column_out(destination: MetricaDestination) -> None:
    call = make_call(attributes={"talk": "40", "tag": "  "}, value=None)
    assert destination.build(call, CALLS, NOW)["row"] == {
        "ClientId": CLIENT_ID,
        "DateTime": 1795172580,
        "TalkDuration": 40,
    }
    assert destination.build(make_call(attributes=None), CALLS, NOW)["row"] == {
        "ClientId": CLIENT_ID,
        "DateTime": 1795172580,
        "Price": "500",
        "Currency": "RUB",
    }


def test_calls_keep_the_mapped_fields_and_link_by_client_user_or_yclid(
    destination: MetricaDestination,
) -> None:
    assert destination.attribute_fields(CALLS) == frozenset(FIELDS.values())
    assert destination.attribute_fields(MetricaTarget(target="lead")) == frozenset()
    for ids in (
        Identifiers(metrica_client_id=CLIENT_ID),
        Identifiers(metrica_user_id="crm-42"),
        Identifiers(yclid="7436478623946523647"),
    ):
        assert destination.has_identifier(make_call(ids=ids), CALLS)
    purchase_only = make_call(ids=Identifiers(purchase_id="A-1"))
    assert not destination.has_identifier(purchase_only, CALLS)
    assert destination.has_identifier(purchase_only, MetricaTarget(target="lead"))
    row = destination.build(make_call(ids=Identifiers(yclid="7", purchase_id="A-1")), CALLS, NOW)
    assert "PurchaseId" not in row["row"] and row["row"]["Yclid"] == "7"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("talk", "95 sec", "invalid_call_duration"),
        ("talk", "1:75", "invalid_call_duration"),
        ("hold", "-3", "invalid_call_duration"),
        ("missed", "maybe", "invalid_call_flag"),
        ("static", "2", "invalid_call_flag"),
        ("tracking_number", "8 495 123-45-67", "invalid_phone_number"),
        ("tracking_number", "ext. 42", "invalid_phone_number"),
        ("page", "shop.example/landing", "invalid_call_url"),
        ("tracker", "https://tracker.example/a b", "invalid_call_url"),
        ("tag", "line\nbreak", "invalid_call_tag"),
    ],
)
def test_a_malformed_call_value_rejects_the_row_not_the_file(
    destination: MetricaDestination, field: str, value: str, code: str
) -> None:
    call = make_call(attributes={**ATTRIBUTES, field: value})
    with pytest.raises(RowRejected) as caught:
        destination.build(call, CALLS, NOW)
    assert caught.value.code == code
    assert_explained(caught.value)
    assert repr(field) in caught.value.message  # names the record field to fix


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("95", 95), ("1:35", 95), ("01:02:03", 3723), ("0:00", 0)]
)
def test_durations_in_seconds_or_as_a_clock(
    destination: MetricaDestination, text: str, seconds: int
) -> None:
    call = make_call(attributes={"talk": text})
    assert destination.build(call, CALLS, NOW)["row"]["TalkDuration"] == seconds


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "calls", "target": "call_goal"}, "a calls target takes no 'target'"),
        ({"type": "calls", "call_fields": {"PhoneNumber": "phone"}}, "keeps only hashed"),
        ({"type": "calls", "call_fields": {"Duration": "talk"}}, "call_fields.Duration"),
        ({"target": "lead", "call_fields": {"Tag": "tag"}}, "call_fields needs type: calls"),
        ({}, "'target' is required"),
        ({"type": "chats", "target": "x"}, "type"),
    ],
)
def test_calls_target_config_rules(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MetricaTarget.model_validate(raw)
    assert message in str(caught.value)


def test_call_fields_must_be_mapped_by_the_goal_source(tmp_path: Path) -> None:
    text = """\
sources:
  calls: {type: csv, path: "*.csv", id: id, time: t, fields: {metrica_client_id: cid, talk: dur}}
destinations:
  metrica: {type: yandex_metrica, counter_id: 1, token: "${TOKEN}"}
goals:
  call:
    source: calls
    send:
      metrica: {type: calls, call_fields: {TalkDuration: talk, Tag: result}}
"""
    path = tmp_path / "convsync.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path, {"TOKEN": "t"})
    [problem] = [p.render() for p in caught.value.problems]
    assert "goals.call.send.metrica.call_fields.Tag: field 'result' is not mapped" in problem
