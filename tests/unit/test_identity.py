"""Normalisation, hashing and click-id parsing (convsync.core.identity)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convsync.core import identity
from convsync.core.identity import (
    CLICK_ID_FIELDS,
    EMAIL,
    IDENTITY_FIELDS,
    PHONE,
    MisplacedContact,
    build_identifiers,
    click_ids_from_url,
    contact_in,
    normalize_email,
    normalize_phone,
    sha256_hex,
)
from convsync.core.model import Identifiers

# Computed independently: printf '%s' '+18005550100' | sha256sum
SHA256_US_PHONE = "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"
# printf '%s' '+79123456789' | sha256sum
SHA256_RU_PHONE = "694e8de862e4f3198b67f7a4aa9f4dfb123c5b78b0a72460ce882c405b111e63"


# --- e-mail -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Google "Formatting user data" (Data Manager API) examples
        ("cloudy.sanfrancisco+shopping@gmail.com", "cloudysanfrancisco@gmail.com"),
        ("user.name+NYC@Example.com", "user.name+nyc@example.com"),
        # other domains keep dots and +suffix (the official ads example gets this wrong)
        ("janedoe+newsletter@example.com", "janedoe+newsletter@example.com"),
        ("Jane.Doe@Yandex.RU", "jane.doe@yandex.ru"),
        ("jane.doe@workspace-company.com", "jane.doe@workspace-company.com"),
        ("Jane.Doe+x@GoogleMail.com", "janedoe@googlemail.com"),
        ("  J.a.n.e@GMAIL.COM\t", "jane@gmail.com"),
        ("jane+a+b@gmail.com", "jane@gmail.com"),
        ("jane@gmail.com.evil.org", "jane@gmail.com.evil.org"),
        ("Иван@Почта.рф", "иван@почта.рф"),
    ],
)
def test_normalize_email_vectors(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "jane",
        "jane@",
        "@example.com",
        "jane@@example.com",
        "jane@doe@example.com",
        "jane doe@example.com",
        "jane@exam ple.com",
        "jane@localhost",
        "jane@.example.com",
        "jane@example.com.",
        "+tag@gmail.com",
        "...@gmail.com",
    ],
)
def test_normalize_email_rejects_non_addresses(raw: str) -> None:
    assert normalize_email(raw) is None


def test_sha256_of_normalised_gmail_address() -> None:
    email = normalize_email(" Cloudy.SanFrancisco+shopping@gmail.com ")
    assert email is not None
    # printf '%s' 'cloudysanfrancisco@gmail.com' | sha256sum
    assert sha256_hex(email) == "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4"


_local_part = st.text(
    alphabet=st.sampled_from("abcXYZ019._+-"),
    min_size=1,
    max_size=20,
)
_domain = st.sampled_from(
    ["gmail.com", "GMail.com", "googlemail.com", "example.com", "Mail.Ru", "yandex.ru"]
)
_padding = st.sampled_from(["", " ", "\t", "  \n"])


@given(_padding, _local_part, _domain, _padding)
def test_normalize_email_is_idempotent_on_addresses(
    before: str, local: str, domain: str, after: str
) -> None:
    once = normalize_email(f"{before}{local}@{domain}{after}")
    if once is not None:
        assert normalize_email(once) == once


@given(st.text(max_size=40))
def test_normalize_email_is_idempotent_on_any_text(raw: str) -> None:
    once = normalize_email(raw)
    if once is not None:
        assert normalize_email(once) == once


# --- phone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(800)555-0100", "US", "+18005550100"),  # Google's documented example
        ("+1 800 555 0100", None, "+18005550100"),
        ("8 (912) 345-67-89", "RU", "+79123456789"),  # Russian trunk prefix 8
        ("89123456789", "RU", "+79123456789"),
        ("+7 912 345-67-89", "RU", "+79123456789"),
        ("+7 912 345-67-89", None, "+79123456789"),
        ("7 912 345 67 89", "RU", "+79123456789"),
        ("9123456789", "RU", "+79123456789"),
        ("912 345 67 89", "ru", "+79123456789"),
        ("8 800 555-35-35", "RU", "+78005553535"),
        ("8-912-345-67-89 доб. 123", "RU", "+79123456789"),  # extension dropped
        ("+44 20 7946 0958", "RU", "+442079460958"),  # own country code wins
    ],
)
def test_normalize_phone_vectors(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("", "RU"),
        ("abc", None),
        ("89123456789", None),  # no country code and no default region
        ("+7 000 000-00-00", "RU"),  # possible (right length) but not valid
        ("+7 912 345 67 8", "RU"),  # too short
        ("12", "RU"),
        ("+8 912 345 67 89", "RU"),
    ],
)
def test_normalize_phone_rejects(raw: str, region: str | None) -> None:
    assert normalize_phone(raw, region) is None


def test_sha256_of_e164_phone() -> None:
    phone = normalize_phone("(800)555-0100", "US")
    assert phone is not None
    assert sha256_hex(phone) == SHA256_US_PHONE


_regions = st.sampled_from(["RU", "US", "GB", "DE", "KZ", None])


@given(st.text(alphabet="0123456789 +-()", max_size=20), _regions)
def test_normalize_phone_is_idempotent(raw: str, region: str | None) -> None:
    once = normalize_phone(raw, region)
    if once is not None:
        assert normalize_phone(once, region) == once
        assert normalize_phone(once, None) == once  # E.164 needs no region


_ru_mobile = st.tuples(
    st.sampled_from(["903", "912", "916", "926", "985", "999"]),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
)


@given(
    _ru_mobile,
    st.sampled_from(["+7", "8", "7", "+7 ", "8 ", "+7-"]),
    st.booleans(),
    st.lists(st.sampled_from(["", " ", "-"]), min_size=3, max_size=3),
)
def test_formatting_variants_of_a_ru_phone_give_one_hash(
    number: tuple[str, str], prefix: str, parens: bool, seps: list[str]
) -> None:
    code, rest = number
    area = f"({code})" if parens else code
    raw = f"{prefix}{area}{seps[0]}{rest[:3]}{seps[1]}{rest[3:5]}{seps[2]}{rest[5:]}"
    phone = normalize_phone(raw, "RU")
    assert phone == f"+7{code}{rest}"
    assert sha256_hex(phone) == sha256_hex(f"+7{code}{rest}")


# --- click ids from URLs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://shop.example/p?utm_source=x&gclid=Cj0KCQ%2DabcD_e&yclid=6372819",
            {"gclid": "Cj0KCQ-abcD_e", "yclid": "6372819"},
        ),
        (
            "shop.example/checkout?rb_clickid=vk123&_ym_uid=1690000000123456789",
            {"vk_click_id": "vk123", "metrica_client_id": "1690000000123456789"},
        ),
        ("/landing?gbraid=0AAAAA&wbraid=1BBBB", {"gbraid": "0AAAAA", "wbraid": "1BBBB"}),
        ("?GCLID=upper", {"gclid": "upper"}),
        ("https://a.example/#gclid=fromfragment", {"gclid": "fromfragment"}),
        ("https://a.example/#/cart?yclid=42&x=1", {"yclid": "42"}),
        ("https://a.example/?gclid=query#gclid=fragment", {"gclid": "query"}),
        ("https://a.example/?gclid=&gclid=second", {"gclid": "second"}),
        ("https://a.example/?gclid=%20padded%20", {"gclid": "padded"}),
        ("https%3A%2F%2Fa.example%2F%3Fgclid%3Dencoded", {"gclid": "encoded"}),
        ("https://a.example/?utm_source=yandex", {}),
        ("https://a.example/", {}),
        ("", {}),
        ("not a url at all", {}),
        ("http://[broken/?gclid=x", {}),
        ("https://a.example/?gclid=%ZZ%FF", {"gclid": "%ZZ\ufffd"}),
    ],
)
def test_click_ids_from_url(url: str, expected: dict[str, str]) -> None:
    assert click_ids_from_url(url) == expected


@given(st.text(max_size=80))
def test_click_ids_from_url_never_raises_and_names_identifier_fields(url: str) -> None:
    names = {f.name for f in dataclasses.fields(Identifiers)}
    assert set(click_ids_from_url(url)) <= names


# --- build_identifiers ------------------------------------------------------------


def test_identity_fields() -> None:
    id_fields = {f.name for f in dataclasses.fields(Identifiers)}
    assert id_fields - {"email_sha256", "phone_sha256"} <= IDENTITY_FIELDS
    assert {"email", "phone", "landing_url"} <= IDENTITY_FIELDS
    assert not IDENTITY_FIELDS & {"email_sha256", "phone_sha256"}


def test_build_identifiers_hashes_contacts_and_keeps_no_raw_value() -> None:
    raw_email = " Jane.Doe+Promo@GMAIL.com "
    raw_phone = "8 (912) 345-67-89"
    ids = build_identifiers(
        {"email": raw_email, "phone": raw_phone, "value": "1500.00", "gclid": " abc "},
        "RU",
    )
    assert ids.gclid == "abc"
    assert ids.email_sha256 == sha256_hex("janedoe@gmail.com")
    assert ids.phone_sha256 == SHA256_RU_PHONE
    text = repr(ids)
    for raw in (raw_email.strip(), "janedoe@gmail.com", "+79123456789", raw_phone):
        assert raw not in text


def test_build_identifiers_own_field_wins_over_landing_url() -> None:
    ids = build_identifiers(
        {
            "gclid": "own-gclid",
            "yclid": "  ",
            "landing_url": "https://s.example/?gclid=url-gclid&yclid=url-yclid&rb_clickid=vk",
        },
        None,
    )
    assert ids.gclid == "own-gclid"
    assert ids.yclid == "url-yclid"
    assert ids.vk_click_id == "vk"


def test_build_identifiers_empty_and_unusable_values_become_none() -> None:
    ids = build_identifiers(
        dict.fromkeys(IDENTITY_FIELDS, "") | {"email": "not-an-email", "phone": "n/a"},
        "RU",
    )
    assert ids == Identifiers()


def test_build_identifiers_skips_url_and_phone_parsing_when_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_run(*_args: object) -> None:
        raise AssertionError("called on the fast path")

    monkeypatch.setattr(identity, "click_ids_from_url", must_not_run)
    monkeypatch.setattr(identity, "normalize_phone", must_not_run)
    ids = build_identifiers({"yclid": "123", "landing_url": " ", "phone": ""}, "RU")
    assert ids == Identifiers(yclid="123")


def test_build_identifiers_parses_url_and_phone_when_present(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def spy_url(url: str) -> dict[str, str]:
        calls.append(url)
        return {"gclid": "from-url"}

    monkeypatch.setattr(identity, "click_ids_from_url", spy_url)
    ids = build_identifiers({"landing_url": " https://x.example/?gclid=1 "}, None)
    assert calls == ["https://x.example/?gclid=1"]
    assert ids.gclid == "from-url"


# --- e-mails and phones in id fields ----------------------------------------------

ID_FIELDS = (*CLICK_ID_FIELDS, "id", "order_id")


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize(
    "value",
    [
        "jane@example.com",
        "Jane.Doe+promo@Gmail.com",
        "mailto:jane@example.com",
        "Jane <jane@example.com>",
        "jane%40example.com",  # percent-encoded, as in a URL
        "jane@localhost",  # not routable, still personal
    ],
)
def test_an_email_is_found_in_every_id_field(field: str, value: str) -> None:
    assert contact_in(value, field, "RU") == EMAIL


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize(
    "value",
    [
        "+7 900 000-00-01",
        "8 (900) 000-00-02",
        "8 900 000-00-03",
        "+79000000001",
        "+7-900-000-00-04",
        "(900) 000 00 05",
        "8\u00a0900\u00a0000\u00a000\u00a006",
    ],
)
def test_a_phone_written_as_one_is_found_in_every_id_field(field: str, value: str) -> None:
    assert contact_in(value, field, "RU") == PHONE


@pytest.mark.parametrize(
    ("value", "field"),
    [
        # digits only: a phone where the field's own ids never look like that
        ("89000000002", "gclid"),
        ("9000000003", "wbraid"),
        ("79000000001", "gbraid"),
        ("89000000002", "yclid"),  # 10–12 digits: no yclid is that short
        ("9000000003", "metrica_client_id"),
    ],
)
def test_bare_digits_are_a_phone_only_where_they_are_not_an_id(value: str, field: str) -> None:
    assert contact_in(value, field, "RU") == PHONE


@pytest.mark.parametrize(
    ("value", "field", "region"),
    [
        # the fields' own formats
        ("EAIaIQobChMI8pXq2Kz-_AIVEAIaIQobChMI", "gclid", "RU"),
        ("Cj0KCQjw-Example_9000000001", "gclid", "RU"),  # digits inside a token
        ("0AAAAADjv0000000001", "gbraid", "RU"),
        ("6123456789012345678", "yclid", "RU"),  # 19 digits
        ("16900000001234567890", "metrica_client_id", "RU"),
        ("1690000000123456789", "metrica_client_id", "RU"),
        ("6372819", "yclid", "RU"),
        ("123", "yclid", "RU"),
        ("vk0000000123", "vk_click_id", "RU"),
        # free-form ids are often plain numbers, of phone length too
        ("89000000002", "id", "RU"),
        ("89000000002", "order_id", "RU"),
        ("79000000001", "purchase_id", "RU"),
        ("9000000003", "metrica_user_id", "RU"),
        ("89000000002", "vk_user_id", "RU"),
        ("89000000002", "vk_click_id", "RU"),
        ("15798537386", "id", "US"),  # a HubSpot deal id
        # formatted, but not a valid number in the region
        ("2026-000123", "order_id", "RU"),
        ("2026-11-20", "id", "RU"),
        ("123-456-7890", "order_id", "RU"),
        ("+7 000 000-00-00", "order_id", "RU"),
        ("1.500.000", "id", "RU"),
        # not a phone's characters, or too few or too many digits
        ("A-1", "id", "RU"),
        ("O-7", "order_id", "RU"),
        ("#1001", "order_id", "RU"),
        ("12-34", "id", "RU"),
        ("1234567", "gclid", "RU"),  # 7 digits, not a valid number
        ("+1234567890123456", "order_id", "RU"),  # 16 digits
        ("", "id", "RU"),
        ("+", "id", "RU"),
        ("@", "id", "RU"),
        ("user @ shop", "id", "RU"),
        ("%40", "order_id", "RU"),
    ],
)
def test_ids_that_are_not_contacts(value: str, field: str, region: str | None) -> None:
    assert contact_in(value, field, region) is None


def test_without_a_region_a_national_number_counts_from_ten_digits() -> None:
    assert contact_in("8 (900) 000-00-02", "order_id", None) == PHONE
    assert contact_in("+7 900 000-00-01", "order_id", None) == PHONE  # checked: +7
    assert contact_in("+7 000 000-00-00", "order_id", None) is None
    assert contact_in("12-34-567", "order_id", None) is None  # 7 digits
    assert contact_in("89000000002", "order_id", None) is None  # plain numbers stay ids


@pytest.mark.parametrize("field", CLICK_ID_FIELDS)
def test_build_identifiers_refuses_a_contact_in_a_click_id_field(field: str) -> None:
    for value in ("jane@example.com", "+7 900 000-00-01"):
        with pytest.raises(MisplacedContact) as caught:
            build_identifiers({field: f" {value} ", "email": "a@b.example"}, "RU")
        assert (caught.value.field, caught.value.via) == (field, None)
        assert value not in str(caught.value) and "900" not in str(caught.value)
        assert field in str(caught.value)


@pytest.mark.parametrize(
    ("param", "field"),
    [("gclid", "gclid"), ("yclid", "yclid"), ("_ym_uid", "metrica_client_id"),
     ("rb_clickid", "vk_click_id")],
)  # fmt: skip
def test_build_identifiers_refuses_a_contact_in_a_landing_url(param: str, field: str) -> None:
    url = f"https://shop.example/?{param}=jane%40example.com"
    with pytest.raises(MisplacedContact) as caught:
        build_identifiers({"landing_url": url}, "RU")
    assert (caught.value.field, caught.value.kind, caught.value.via) == (
        field,
        EMAIL,
        "landing_url",
    )
    assert "jane" not in str(caught.value)


def test_a_url_click_id_its_own_field_overrides_is_not_checked() -> None:
    # the URL's gclid is not used (its own field wins), so it is not checked either
    ids = build_identifiers(
        {"gclid": "EAIaIQobChMI", "landing_url": "https://s.example/?gclid=a@b.example"}, "RU"
    )
    assert ids.gclid == "EAIaIQobChMI"


def test_build_identifiers_keeps_real_click_ids() -> None:
    fields = {
        "gclid": "EAIaIQobChMI8pXq2Kz-_AIVEAIaIQobChMI",
        "gbraid": "0AAAAADjv0000000001",
        "wbraid": "ClUKCQjw",
        "yclid": "6123456789012345678",
        "metrica_client_id": "1690000000123456789",
        "metrica_user_id": "89000000002",
        "purchase_id": "O-1",
        "vk_click_id": "vk0000000123",
        "vk_user_id": "100500",
    }
    assert build_identifiers(fields, "RU").as_dict() == fields
