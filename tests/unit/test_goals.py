from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from convsync.config.loader import parse_config
from convsync.core.identity import conversion_key, sha256_hex
from convsync.core.model import DeliveryState, RawRecord
from convsync.destinations import load_destination_class
from convsync.sync.goals import GoalMapper

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


# --- e-mails and phones in id and click-id columns --------------------------------

JANE = "Jane.Doe@Example.com"
PHONE = "+7 900 000-00-01"
#: what must appear nowhere: the raw values and their normalised forms
NEEDLES = (JANE, JANE.lower(), "jane.doe", PHONE, "+79000000001", "9000000001", "000-00-01")


def _no_needle(*texts: object) -> None:
    for text in texts:
        for needle in NEEDLES:
            assert needle.lower() not in str(text).lower(), (needle, text)


@pytest.mark.parametrize("value", [JANE, PHONE])
@pytest.mark.parametrize(
    "field", ["gclid", "vk_click_id"]
)  # the two click ids this test source maps
def test_a_contact_in_a_click_id_column_rejects_the_record_by_column(
    loaded, field: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    out = mapper(loaded).map(
        [record(status="won", value="10", **{field: value}, email="a@b.example")]
    )
    assert out.conversions == [] and out.deliveries == []
    assert {(r.goal, r.code, r.column) for r in out.rejections} == {
        ("won", "identity_in_wrong_column", field),
        ("any_lead", "identity_in_wrong_column", field),
    }
    rejection = out.rejections[0]
    assert rejection.record_id == "1" and rejection.origin == "crm.csv:2"
    assert f"The {field} (column {field!r}) holds what looks like" in rejection.reason
    assert "neither stored nor sent" in rejection.reason
    _no_needle(*out.rejections)


def test_a_contact_in_a_landing_url_names_the_parameter_and_the_url_column(tmp_path: Path) -> None:
    loaded = parse_config(
        CONFIG.replace("vk_click_id: vk}", "vk_click_id: vk, landing_url: url}"),
        tmp_path / "c.yaml",
        {},
    )
    rec = record(status="won", landing_url="https://s.example/?yclid=%2B79000000001&x=1")
    rec.columns = {"landing_url": "Страница входа"}
    (rejection, _) = mapper(loaded).map([rec]).rejections
    assert (rejection.column, rejection.code) == ("Страница входа", "identity_in_wrong_column")
    assert "The yclid parameter of the landing page URL (column 'Страница входа')" in (
        rejection.reason
    )
    assert "a phone number" in rejection.reason
    _no_needle(rejection)


@pytest.mark.parametrize("value", [JANE, PHONE, "8 (900) 000-00-01"])
def test_a_record_id_that_is_a_contact_is_refused_and_kept_nowhere(loaded, value: str) -> None:  # type: ignore[no-untyped-def]
    rec = record(rid=value, status="paid", order_id="O-1")
    rec.origin = f"webhook leads #{value}"  # a source that names rows by their id
    out = mapper(loaded).map([rec])
    assert out.conversions == []
    assert {r.goal for r in out.rejections} == {"won", "any_lead", "order"}
    for rejection in out.rejections:
        assert (rejection.code, rejection.column, rejection.record_id) == (
            "identity_in_wrong_column",
            "id",  # the source's id column
            None,
        )
        assert rejection.origin == "webhook leads #(id hidden)"
        assert "The record id (column 'id') looks like" in rejection.reason
        assert "Map a real order or record number as the source's id" in rejection.reason
    _no_needle(*out.rejections)


@pytest.mark.parametrize("value", [JANE, PHONE])
def test_an_order_id_that_is_a_contact_is_refused_with_a_hint(loaded, value: str) -> None:  # type: ignore[no-untyped-def]
    out = mapper(loaded).map([record(status="paid", order_id=value)])
    assert sorted(c.goal for c in out.conversions) == ["any_lead", "won"]  # order ids: record id
    (rejection,) = out.rejections
    assert (rejection.goal, rejection.code, rejection.column, rejection.record_id) == (
        "order",
        "identity_in_wrong_column",
        "Заказ",
        "1",
    )
    assert "Map a real order number as the goal's order_id" in rejection.reason
    _no_needle(rejection, *out.conversions)


def test_a_contact_order_id_retracts_nothing(tmp_path: Path) -> None:
    text = CONFIG.replace(
        "    dedup_by: order_id\n    send: {google: {conversion_action: 3}}\n  order_shop:",
        "    dedup_by: order_id\n    retract_when: {status: refunded}\n"
        "    send: {google: {conversion_action: 3}}\n  order_shop:",
    )
    loaded = parse_config(text, tmp_path / "c.yaml", {})
    m = mapper(loaded)
    assert len(m.map([record(status="refunded", order_id="O-1")]).adjustments) == 1
    out = m.map([record(status="refunded", order_id=PHONE)])
    assert out.adjustments == [] and all(r.goal != "order" for r in out.rejections)


def test_plain_numbers_stay_ids(loaded) -> None:  # type: ignore[no-untyped-def]
    out = mapper(loaded).map(
        [record(rid="89000000002", status="paid", order_id="79000000001", gclid="EAIaIQobChMI")]
    )
    assert sorted(c.goal for c in out.conversions) == ["any_lead", "order", "won"]
    assert out.rejections == []
    order = next(c for c in out.conversions if c.goal == "order")
    assert (order.record_id, order.order_id) == ("89000000002", "79000000001")


def test_the_record_id_is_checked_once_per_record(loaded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from convsync.sync import goals

    calls: list[str] = []
    real = goals.contact_in

    def spy(value: str, field: str, region: str | None) -> str | None:
        calls.append(field)
        return real(value, field, region)

    monkeypatch.setattr(goals, "contact_in", spy)
    mapper(loaded).map([record(status="won"), record(rid="2", status="lost", pipeline="test")])
    assert calls == ["id", "id"]


def test_a_phone_that_reads_as_an_amount_is_refused(loaded) -> None:  # type: ignore[no-untyped-def]
    m = mapper(loaded)
    (rejection,) = m.map([record(status="won", value="+79000000001")]).rejections
    assert (rejection.goal, rejection.code, rejection.column) == (
        "won",
        "identity_in_wrong_column",
        "Сумма",
    )
    assert "The value (column 'Сумма') looks like a phone number" in rejection.reason
    _no_needle(rejection)
    won = [c for c in m.map([record(status="won", value="+1500")]).conversions if c.goal == "won"]
    assert won[0].value == Decimal(1500)  # a + alone is no phone


def test_api_sources_write_a_single_point_as_the_decimal_point(tmp_path: Path) -> None:
    text = """\
sources:
  ym: {type: metrica_logs, counter_id: 1, token: "${T}", goal_ids: [5]}
  shop: {type: csv, path: x.csv, id: id, time: t, fields: {value: v}}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals:
  lead: {source: ym, value: value, send: {vk: {goal: x}}}
  sale: {source: shop, value: value, send: {vk: {goal: x}}}
"""
    loaded = parse_config(text, tmp_path / "c.yaml", {"T": "t"})
    ym = mapper(loaded, "ym").map([record(source="ym", value="12.345")])
    assert [c.value for c in ym.conversions] == [Decimal("12.345")]  # Metrica's Price
    shop = mapper(loaded, "shop").map([record(source="shop", value="12.345")])
    assert [r.code for r in shop.rejections] == ["bad_value"]  # an export: ambiguous
    assert "ambiguous" in shop.rejections[0].reason
    # the comma stays ambiguous everywhere; the rest of the rule too
    assert [
        r.code for r in mapper(loaded, "ym").map([record(source="ym", value="1,500")]).rejections
    ] == ["bad_value"]
