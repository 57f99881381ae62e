from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from convsync.config_loader import parse_config
from convsync.destinations import load_destination_class
from convsync.goals import GoalMapper, conversion_key
from convsync.identity import sha256_hex
from convsync.model import DeliveryState, RawRecord

CONFIG = """\
phone_region: RU
sources:
  crm: {type: csv, path: x.csv, id: id, time: t,
        fields: {status: s, value: v, currency: c, email: e, phone: p, gclid: g,
                 order_id: o, consent: consent, pipeline: pl, vk_click_id: vk}}
  shop: {type: csv, path: y.csv, id: id, time: t, fields: {order_id: o, gclid: g}}
destinations:
  google: {type: google_ads, customer_id: "123-456-7890"}
  vk: {type: vk_ads, pixel_id: 1}
goals:
  won:
    source: crm
    when: {status: [Won, paid], pipeline: {not: [test, sandbox]}}
    value: value
    currency: RUB
    send: {google: {conversion_action: 1}, vk: {goal: won}}
  any_lead:
    source: crm
    value: 100
    send: {google: {conversion_action: 2, enhanced_for_leads: true}}
  order:
    source: crm
    when: {status: paid}
    order_id: order_id
    dedup_by: order_id
    send: {google: {conversion_action: 3}}
  order_shop:
    source: shop
    order_id: order_id
    dedup_by: order_id
    send: {google: {conversion_action: 3}}
"""


@pytest.fixture
def loaded(tmp_path: Path):  # type: ignore[no-untyped-def]
    return parse_config(CONFIG, tmp_path / "c.yaml", {})


def mapper(loaded, source: str = "crm") -> GoalMapper:  # type: ignore[no-untyped-def]
    dests = {n: load_destination_class(c.type)(n, c) for n, c in loaded.app.destinations.items()}
    return GoalMapper(loaded, source, dests)


def record(source: str = "crm", rid: str = "1", **fields: str) -> RawRecord:
    return RawRecord(
        source=source,
        record_id=rid,
        occurred_at=datetime(2026, 11, 20, 11, 3, tzinfo=UTC),
        fields=fields,
        origin=f"{source}.csv:2",
        columns={"value": "Сумма", "currency": "Валюта", "order_id": "Заказ"},
    )


def test_when_conditions_are_case_insensitive_and_all_must_hold(loaded) -> None:  # type: ignore[no-untyped-def]
    m = mapper(loaded)
    goals = lambda **f: sorted(c.goal for c in m.map([record(**f)]).conversions)  # noqa: E731
    assert goals(status="won ") == ["any_lead", "won"]
    assert goals(status="WON", pipeline="Sandbox") == ["any_lead"]
    assert goals(status="lost") == ["any_lead"]
    assert goals(status="paid", order_id="O-1") == ["any_lead", "order", "won"]


def test_value_currency_and_identity(loaded) -> None:  # type: ignore[no-untyped-def]
    out = mapper(loaded).map(
        [
            record(
                status="won",
                value="1 500,50",
                email=" Jane.Doe@Gmail.com ",
                phone="8 912 345-67-89",
                consent="да",
            )
        ]
    )
    won = next(c for c in out.conversions if c.goal == "won")
    assert won.value == Decimal("1500.50") and won.currency == "RUB"
    assert won.ids.email_sha256 == sha256_hex("janedoe@gmail.com")
    assert won.ids.phone_sha256 == sha256_hex("+79123456789")
    assert won.consent == "GRANTED"
    assert won.order_id == "1"  # the record id unless the goal names a field
    lead = next(c for c in out.conversions if c.goal == "any_lead")
    assert lead.value == Decimal(100) and lead.currency is None


def test_record_currency_wins_and_bad_values_are_rejected_with_column(loaded) -> None:  # type: ignore[no-untyped-def]
    m = mapper(loaded)
    ok = m.map([record(status="won", value="10", currency="usd")]).conversions
    assert {c.goal: c.currency for c in ok}["won"] == "USD"
    bad = m.map([record(status="won", value="много", email="x@example.com")])
    assert [c.goal for c in bad.conversions] == ["any_lead"]
    (rej,) = bad.rejections
    assert (rej.origin, rej.column, rej.code, rej.goal) == (
        "crm.csv:2",
        "Сумма",
        "bad_value",
        "won",
    )
    secret = m.map([record(status="won", value="jane@example.com")]).rejections[0]
    assert "jane@example.com" not in secret.reason
    cur = m.map([record(status="won", value="1", currency="XYZ")]).rejections[0]
    assert (cur.column, cur.code) == ("Валюта", "bad_currency")


def test_planned_deliveries_skip_destinations_without_identifier(loaded) -> None:  # type: ignore[no-untyped-def]
    out = mapper(loaded).map(
        [
            record(status="won", gclid="EAIaIQobChMIabc"),
            record(rid="2", status="won", email="a@b.example"),
        ]
    )
    plan = {(d.conversion_key[:6], d.destination, d.goal): d.state for d in out.deliveries}
    by_goal = {}
    for d in out.deliveries:
        by_goal.setdefault((d.goal, d.destination), []).append(d.state)
    assert by_goal[("won", "google")] == [DeliveryState.PENDING, DeliveryState.SKIPPED]
    assert by_goal[("won", "vk")] == [DeliveryState.SKIPPED, DeliveryState.SKIPPED]
    # enhanced conversions for leads: a hashed e-mail is enough
    assert by_goal[("any_lead", "google")] == [DeliveryState.PENDING, DeliveryState.PENDING]
    skipped = next(d for d in out.deliveries if d.state is DeliveryState.SKIPPED)
    assert skipped.code == "no_identifier"
    assert len(plan) == len(out.deliveries)


def test_keys_are_stable_and_dedup_by_order_spans_sources(loaded) -> None:  # type: ignore[no-untyped-def]
    crm = mapper(loaded, "crm").map([record(status="paid", order_id="O-7")]).conversions
    again = mapper(loaded, "crm").map([record(status="paid", order_id="O-7")]).conversions
    assert [c.key for c in crm] == [c.key for c in again]
    shop = (
        mapper(loaded, "shop").map([record(source="shop", rid="S-1", order_id="O-7")]).conversions
    )
    order_crm = next(c for c in crm if c.goal == "order")
    assert order_crm.key != shop[0].key  # different goals…
    assert conversion_key("order", "order", "O-7") == order_crm.key  # …but keyed by order id
    assert conversion_key("crm", "1", "won") == next(c for c in crm if c.goal == "won").key


def test_same_order_twice_in_a_chunk_is_one_conversion(loaded) -> None:  # type: ignore[no-untyped-def]
    out = mapper(loaded).map(
        [
            record(rid="1", status="paid", order_id="O-1"),
            record(rid="2", status="paid", order_id="O-1"),
        ]
    )
    assert [c.goal for c in out.conversions].count("order") == 1


def test_missing_order_id_is_rejected(loaded) -> None:  # type: ignore[no-untyped-def]
    out = mapper(loaded).map([record(status="paid")])
    assert [(r.goal, r.code, r.column) for r in out.rejections] == [
        ("order", "missing_order_id", "Заказ")
    ]


def test_a_currency_written_with_the_amount_is_kept(loaded) -> None:  # type: ignore[no-untyped-def]
    m = mapper(loaded)
    won = lambda out: next(c for c in out.conversions if c.goal == "won")  # noqa: E731
    dollars = won(m.map([record(status="won", value="$20")]))
    assert (dollars.value, dollars.currency) == (Decimal(20), "USD")  # not the goal's RUB
    rubles = won(m.map([record(status="won", value="1 500 ₽")]))
    assert (rubles.value, rubles.currency) == (Decimal(1500), "RUB")
    (clash,) = m.map([record(status="won", value="$20", currency="EUR")]).rejections
    assert (clash.code, clash.column) == ("bad_currency", "Сумма")
    assert "written in USD" in clash.reason and "says EUR" in clash.reason
