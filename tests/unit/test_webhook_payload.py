"""Reading webhook bodies: bracketed form names, paths, values as the sender wrote them."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import pytest

from convsync.sources.webhook.config import WebhookSourceConfig
from convsync.sources.webhook.payload import (
    RecordReader,
    Refusal,
    as_text,
    lookup,
    nest_form,
    parse_json,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def form(pairs: list[tuple[str, str]]) -> dict[str, object]:
    # through the real encoding, as a sender would send it
    return nest_form(parse_qsl(urlencode(pairs), keep_blank_values=True))


def test_bracketed_names_nest_and_numbered_items_read_as_a_list() -> None:
    data = form(
        [
            ("leads[status][0][id]", "1"),
            ("leads[status][1][id]", "2"),
            ("tags[]", "a"),
            ("tags[]", "b"),
            ("plain", "first"),
            ("plain", "second"),
        ]
    )
    assert lookup(data, "leads.status.1.id") == "2"
    assert data["tags"] == {"0": "a", "1": "b"}
    assert as_text(lookup(data, "tags")) == "a"
    assert data["plain"] == "first"


def test_a_key_holding_dots_is_found_whole() -> None:
    assert lookup({"utm.source": "ya", "utm": {"source": "no"}}, "utm.source") == "ya"
    assert lookup({"a": [{"b": "x"}]}, "a.0.b") == "x"
    assert lookup({"a": "scalar"}, "a.b") is None


def test_json_numbers_keep_the_senders_digits() -> None:
    data = parse_json(b'{"total": 1500.10, "n": 10000000000000000001, "ok": true}')
    assert data["total"] == "1500.10"
    assert data["n"] == "10000000000000000001"
    assert as_text(data["ok"]) == "true"


def test_a_json_number_with_three_decimals_is_that_number_not_thousands() -> None:
    from decimal import Decimal

    from convsync.core.parsing import parse_money

    data = parse_json(b'{"a": 1.500, "b": 12.345, "c": 1e400, "d": 2.5e3}')
    assert parse_money(data["a"])[0] == Decimal("1.5")  # a JSON "." is always a point
    assert parse_money(data["b"])[0] == Decimal("12.345")
    assert data["c"] == "1e400"  # far out of any amount's range: kept, then refused
    assert parse_money(data["d"])[0] == Decimal("2500")


@pytest.mark.parametrize("body", [b"{", b"[1,", b'{"a": 1} trailing', b"\xff"])
def test_malformed_json_is_a_400_with_the_place(body: bytes) -> None:
    with pytest.raises(Refusal) as info:
        parse_json(body)
    assert info.value.status == 400 and info.value.reason


def reader(**config: object) -> RecordReader:
    cfg = WebhookSourceConfig.model_validate({"type": "webhook", "token": "t", **config})
    return RecordReader("src", cfg, ZoneInfo("Europe/Moscow"))


def test_ids_of_several_paths_are_joined_and_times_read_in_the_zone() -> None:
    (record,) = reader(id=["order", "step"], time="at", fields={"value": "sum"}).records(
        {"order": "A-1", "step": "paid", "at": "2026-11-27 10:00", "sum": "5"}, NOW
    )
    assert record.record_id == "A-1:paid"
    assert record.occurred_at == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert record.fields == {"value": "5"}
    assert record.columns["value"] == "sum"


def test_without_a_time_path_the_moment_of_receipt_is_used() -> None:
    (record,) = reader().records({"id": "1"}, NOW)
    assert record.occurred_at == NOW


def test_amocrm_custom_fields_by_name_and_id() -> None:
    data = form(
        [
            ("leads[status][0][id]", "5"),
            ("leads[status][0][status_id]", "142"),
            ("leads[status][0][custom_fields][0][id]", "77"),
            ("leads[status][0][custom_fields][0][name]", "GCLID"),
            ("leads[status][0][custom_fields][0][values][0][value]", "Cj0-click"),
        ]
    )
    amo = reader(sender="amocrm", fields={"gclid": "custom_fields.GCLID", "g2": "custom_fields.77"})
    (record,) = amo.records(data, NOW)
    assert record.record_id == "5:142"
    assert record.fields["gclid"] == record.fields["g2"] == "Cj0-click"
    assert record.fields["status"] == "142"


def test_tilda_cookies_become_paths() -> None:
    (record,) = reader(sender="tilda").records(
        {"tranid": "9:1", "COOKIES": "_ym_uid=1700; _ga=GA1.1.2.3", "Email": "a@b.ru"}, NOW
    )
    assert record.fields["metrica_client_id"] == "1700"
    assert record.fields["email"] == "a@b.ru"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"x": "1"}, "no_id"),
        ({"id": "x" * 300}, "bad_id"),
        ([], "no_records"),
        (["text"], "not_a_record"),
    ],
)
def test_records_that_cannot_be_read_are_422(payload: object, code: str) -> None:
    with pytest.raises(Refusal) as info:
        reader().records(payload, NOW)
    assert (info.value.status, info.value.code) == (422, code)


def test_a_bitrix24_event_handler_post_is_explained() -> None:
    event = form(
        [
            ("event", "ONCRMDEALUPDATE"),
            ("data[FIELDS][ID]", "321"),
            ("auth[application_token]", "t"),
        ]
    )
    with pytest.raises(Refusal) as info:
        reader(sender="bitrix24").records(event, NOW)
    assert (info.value.status, info.value.code) == (422, "event_only")
    assert "automation rule" in info.value.reason
