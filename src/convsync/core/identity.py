"""Identity normalisation: e-mails, phones, click ids from landing URLs, hashing.

Runs once per source record (the map step), so it is kept allocation-light: nothing
is parsed that is not there. Raw e-mails and phones enter here and leave only as
SHA-256 hex of their normalised form (see DESIGN.md, "Identity and deduplication").
One found in an id field — a column mapped to the wrong field — does not leave at all
(:func:`contact_in`, :class:`MisplacedContact`).

Rules follow Google's "Formatting user data" page (reference/google-ads.md §11):
dots and ``+suffix`` are removed from the local part for gmail.com / googlemail.com
only. The official ``upload_enhanced_conversions_for_leads.py`` example strips them
for every domain; that is a known bug (google-ads-python PR #1050) and not copied.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

import phonenumbers

from convsync.core.model import Identifiers

__all__ = [
    "CLICK_ID_FIELDS",
    "EMAIL",
    "IDENTITY_FIELDS",
    "PHONE",
    "MisplacedContact",
    "build_identifiers",
    "click_ids_from_url",
    "contact_in",
    "conversion_key",
    "lacks_country_code",
    "normalize_email",
    "normalize_phone",
    "sha256_hex",
]

#: identifier fields taken as they are (trimmed) from a record, by canonical name
CLICK_ID_FIELDS: tuple[str, ...] = (
    "gclid",
    "gbraid",
    "wbraid",
    "yclid",
    "metrica_client_id",
    "metrica_user_id",
    "purchase_id",
    "vk_click_id",
    "vk_user_id",
)

#: every canonical record field this module reads
IDENTITY_FIELDS: frozenset[str] = frozenset(
    (*CLICK_ID_FIELDS, "email", "phone", "landing_url"),
)

#: landing-page query parameter → Identifiers field
_URL_PARAMS: Mapping[str, str] = {
    "gclid": "gclid",
    "gbraid": "gbraid",
    "wbraid": "wbraid",
    "yclid": "yclid",
    "rb_clickid": "vk_click_id",
    "_ym_uid": "metrica_client_id",
}

# Google ignores dots and "+tag" only for consumer Gmail; Workspace and every other
# provider treat them as part of the address.
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

_E164 = phonenumbers.PhoneNumberFormat.E164


#: joins the parts of a conversion key (a character no id or goal name holds)
_KEY_SEP = "\x1f"


def conversion_key(*parts: str) -> str:
    """A stable key: the same parts always give the same 32 hex characters."""
    return hashlib.blake2b(_KEY_SEP.join(parts).encode("utf-8"), digest_size=16).hexdigest()


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``text``, lower-case hex (the Ads API's form)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_email(raw: str) -> str | None:
    """Trimmed, lower-cased e-mail; Gmail local parts lose dots and ``+suffix``.

    None when ``raw`` is not an e-mail address: not exactly one ``@``, an empty local
    part or domain, whitespace inside, or a domain without a dot (``user@localhost``
    cannot be matched by any ad platform).
    """
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "@" in domain or len(email.split()) != 1:
        return None
    if "." not in domain or domain.startswith(".") or domain.endswith("."):
        return None
    if domain in _GMAIL_DOMAINS:
        local = local.partition("+")[0].replace(".", "")
        if not local:
            return None
        return f"{local}@{domain}"
    return email


def normalize_phone(raw: str, region: str | None) -> str | None:
    """E.164 form (``+79123456789``) of a phone number, or None.

    ``region`` (ISO 3166 alpha-2, e.g. ``RU``) is the default country for numbers
    written without one; with ``RU`` the national trunk prefix ``8`` is understood
    (``8 (912) 345-67-89`` → ``+79123456789``). Extensions are dropped.

    The number must pass ``is_valid_number`` (it belongs to an allocated range of its
    country), not only ``is_possible_number`` (its length fits). The hash is only
    worth sending if it can match a real subscriber: placeholders typed into forms
    (``+7 000 000-00-00``, ``8 111 111 11 11``) are possible but never valid, and
    would only dilute match rates. The price is that a range allocated after the
    installed ``phonenumbers`` release is refused until the library is upgraded.
    """
    if not raw:
        return None
    return _e164(raw, region.upper() if region else None)


def lacks_country_code(raw: str) -> bool:
    """``raw`` is written like a phone number (7–15 digits) but without a ``+`` and a
    country code: only a ``phone_region`` says which country's number it is, and without
    one it is dropped (``8 (912) 345-67-89``)."""
    text = raw.strip()
    return (
        text[:1] != "+"
        and _PHONE_SHAPED.fullmatch(text) is not None
        and 7 <= sum(c.isdigit() for c in text) <= 15
    )


# Parsing and validating a phone costs ~20 µs, most of a record's mapping time. The same
# numbers come back: repeat customers, and every row of an appended file that is read
# again; the scheduler's process keeps this cache between runs (small runs map there).
@lru_cache(maxsize=16384)
def _e164(raw: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, _E164)


def click_ids_from_url(url: str) -> dict[str, str]:
    """Click ids found in a landing-page URL, keyed by ``Identifiers`` field name.

    Reads the query string, then the fragment (``#gclid=…`` or ``#/route?gclid=…``,
    as single-page apps keep them); the query wins. Relative URLs, URLs without a
    scheme and a URL that was percent-encoded as a whole are accepted; anything
    unparseable gives ``{}``. Values are percent-decoded and trimmed; the first
    non-empty occurrence of a parameter wins.
    """
    if "=" not in url:
        if "%3d" not in url.lower():
            return {}
        url = unquote(url)  # the whole URL was encoded once, e.g. by a redirector
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unbalanced "[" in the host
        return {}
    found: dict[str, str] = {}
    if parts.query:
        _collect_click_ids(parts.query, found)
    fragment = parts.fragment
    if "=" in fragment:
        _, question, route_query = fragment.partition("?")
        _collect_click_ids(route_query if question else fragment, found)
    return found


def _collect_click_ids(query: str, found: dict[str, str]) -> None:
    for key, value in parse_qsl(query, errors="replace"):
        name = _URL_PARAMS.get(key.strip().lower())
        if name is None or name in found:
            continue
        value = value.strip()
        if value:
            found[name] = value


# --- e-mails and phones where they do not belong -------------------------------------

EMAIL = "an e-mail address"
PHONE = "a phone number"

#: Google's click ids are URL-safe base64 tokens: never digits only.
_TOKEN_IDS = frozenset({"gclid", "gbraid", "wbraid"})
#: Metrica's ClientID (the ``_ym_uid`` cookie: Unix time and a random part) and the
#: yclid are 64-bit decimal numbers, 17–20 digits long.
_NUMERIC_IDS = frozenset({"yclid", "metrica_client_id"})
# Every other id (metrica_user_id, purchase_id, vk_click_id, vk_user_id, the record id,
# the order id) is free-form: the site's or the CRM's own, often a plain number.

_EMAIL_LIKE = re.compile(r"[^\s@]@[^\s@]")
#: only what a phone is written with: digits, a leading +, spaces, -, (), dots
_PHONE_SHAPED = re.compile(r"\+?[\s(]*[0-9][0-9\s().\-]*")


class MisplacedContact(ValueError):
    """An id or click-id field holds what looks like an e-mail or a phone number.

    The message names the field (and ``via``, the field it was read from, for a click
    id parsed from ``landing_url``), never the value.
    """

    def __init__(self, field: str, kind: str, via: str | None = None) -> None:
        self.field, self.kind, self.via = field, kind, via
        where = f"the {field} parameter of {via}" if via else field
        super().__init__(f"{where} holds what looks like {kind}")


def contact_in(value: str, field: str, region: str | None) -> str | None:
    """:data:`EMAIL` or :data:`PHONE` if ``value``, in the id field ``field`` (a click-id
    field, ``id`` or ``order_id``), looks like one; else None.

    An e-mail: an ``@`` (also percent-encoded) with a character other than a space on
    each side. No click id and no platform's id has one, and an e-mail in an id field
    is personal data whether it is routable or not.

    A phone: written only with digits, a leading ``+``, spaces, ``-``, ``()`` and dots,
    7–15 digits (E.164's longest is 15), and a valid number (``phonenumbers``) in
    ``region`` or by its own ``+`` country code; without a region a national number
    cannot be checked, so 10 digits or more count. Digits alone (no ``+`` and no
    separator) count only where they are not the field's own format:

    * ``gclid``, ``gbraid``, ``wbraid``: always (the ids are base64 tokens);
    * ``yclid``, ``metrica_client_id``: only 10–12 digits (the ids are 17–20 digits
      long; a national or international phone number is 10–12);
    * every other field (``id``, ``order_id``, ``metrica_user_id``, ``purchase_id``,
      ``vk_click_id``, ``vk_user_id``): never — plain numbers are what ids are
      (HubSpot's deal ids have 11 digits), and such an id is refused only when written
      like a phone: ``+7 900 000-00-01``, ``8 (900) 000-00-01``, ``+79000000001``.
    """
    if "@" in value or "%40" in value:
        text = unquote(value) if "%" in value else value
        return EMAIL if _EMAIL_LIKE.search(text) else None
    if value.isascii() and value.isdigit():
        digits = len(value)
        if field in _NUMERIC_IDS:
            if not 10 <= digits <= 12:
                return None
        elif field not in _TOKEN_IDS:
            return None
    elif value[:1].isalpha():  # "A-1001", "EAIaIQ…": no phone starts with a letter
        return None
    elif _PHONE_SHAPED.fullmatch(value):
        digits = sum(c.isdigit() for c in value)
    else:
        return None
    if not 7 <= digits <= 15:
        return None
    if region is None and value[0] != "+":
        return PHONE if digits >= 10 else None
    return PHONE if _e164(value, region.upper() if region else None) else None


def _check(value: str, field: str, region: str | None, via: str | None = None) -> None:
    kind = contact_in(value, field, region)
    if kind is not None:
        raise MisplacedContact(field, kind, via)


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip() or None


def build_identifiers(fields: Mapping[str, str], phone_region: str | None) -> Identifiers:
    """The ``Identifiers`` of one record from its canonical fields.

    A click id in its own field wins over one parsed from ``landing_url``. E-mail and
    phone are normalised and kept only as SHA-256 hex; values that do not normalise
    are dropped. Other keys of ``fields`` are ignored.

    Raises :class:`MisplacedContact` when a click id looks like an e-mail or a phone
    (:func:`contact_in`): a misconfigured column must not carry one into the ledger
    or to a platform, raw.
    """
    get = fields.get
    ids: dict[str, str | None] = {}
    for name in CLICK_ID_FIELDS:
        value = get(name)
        if value:
            value = value.strip() or None
            # the usual ids skip contact_in: a token starting with a letter (a gclid,
            # no "@" or "%" in it) or more digits than a phone has (a yclid, a ClientID)
            if value is not None and (
                "@" in value
                or "%" in value
                or not (value[0].isalpha() or (len(value) > 15 and value.isdigit()))
            ):
                _check(value, name, phone_region)
        ids[name] = value or None

    landing_url = _clean(get("landing_url"))
    if landing_url is not None:
        for name, value in click_ids_from_url(landing_url).items():
            if ids[name] is None:
                _check(value, name, phone_region, "landing_url")
                ids[name] = value

    email_sha256 = None
    raw_email = _clean(get("email"))
    if raw_email is not None:
        email = normalize_email(raw_email)
        if email is not None:
            email_sha256 = sha256_hex(email)

    phone_sha256 = None
    raw_phone = _clean(get("phone"))
    if raw_phone is not None:
        phone = normalize_phone(raw_phone, phone_region)
        if phone is not None:
            phone_sha256 = sha256_hex(phone)

    return Identifiers(**ids, email_sha256=email_sha256, phone_sha256=phone_sha256)
