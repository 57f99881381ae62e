"""One ClickConversion of UploadClickConversions, as the dry-run shows it, and its pre-flight.

Field names are the API's (``conversion_action``, ``conversion_date_time``, ``gclid`` …),
so the dry-run plan reads like the request and the uploader maps keys one to one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from convsync.core.errors import RowRejected
from convsync.core.model import Conversion, Identifiers
from convsync.destinations import preflight
from convsync.destinations.google_ads.config import GoogleAdsTarget

PLATFORM = "Google Ads"

#: Google's longest click-through lookback window; a click is always older than its
#: conversion, so an older conversion has no click Google could still attribute it to.
MAX_CONVERSION_AGE = timedelta(days=90)

#: the order Google's own tag prefers; the API takes exactly one (GBRAID_WBRAID_BOTH_SET)
CLICK_ID_FIELDS = ("gclid", "gbraid", "wbraid")

#: Click ids are URL-safe base64. The length bounds are a sanity check, not a documented
#: limit: real ids are roughly 20-150 characters, and these catch a truncated or
#: concatenated field before Google answers UNPARSEABLE_GCLID for it.
_CLICK_ID_CHARS = re.compile(r"[A-Za-z0-9_-]")
_CLICK_ID = re.compile(r"[A-Za-z0-9_-]*")
_CLICK_ID_MIN, _CLICK_ID_MAX = 10, 1000

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
#: ClickConversion's name of each hashed contact
_CLICK_CONVERSION_CONTACT = {"email": "hashed_email", "phone": "hashed_phone_number"}
_CONSENT_VALUES = ("GRANTED", "DENIED")


def click_id(ids: Identifiers) -> tuple[str, str] | None:
    """``(field, value)`` of the click id to send: the first present of gclid, gbraid, wbraid."""
    for field in CLICK_ID_FIELDS:
        value = getattr(ids, field)
        if value:
            return field, value
    return None


def has_hashed_contact(ids: Identifiers) -> bool:
    return bool(ids.email_sha256 or ids.phone_sha256)


def build_click_conversion(
    conversion: Conversion, customer_id: str, target: GoogleAdsTarget, now: datetime
) -> dict[str, Any]:
    """The ClickConversion for one conversion; raises RowRejected / RowDeferred."""
    click = click_id(conversion.ids)
    contacts = hashed_contacts(conversion.ids) if target.enhanced_for_leads else []
    if click is None and not contacts:
        raise no_identifier(conversion, target)
    if click is not None:
        check_click_id(*click)
    value, currency = checked_order(conversion)
    consent = _consent(conversion.consent)
    check_conversion_time(conversion, now)

    payload: dict[str, Any] = {
        "conversion_action": (
            f"customers/{customer_id}/conversionActions/{target.conversion_action}"
        ),
        "conversion_date_time": format_conversion_date_time(conversion.occurred_at),
    }
    if click is not None:
        payload[click[0]] = click[1]
    if value is not None:
        payload["conversion_value"] = float(value)
        payload["currency_code"] = currency
    payload["order_id"] = conversion.order_id
    if contacts:
        payload["user_identifiers"] = [
            {_CLICK_CONVERSION_CONTACT[kind]: digest} for kind, digest in contacts
        ]
    if consent is not None:
        payload["consent"] = {"ad_user_data": consent}
    variables = [
        {
            "conversion_custom_variable": (
                f"customers/{customer_id}/conversionCustomVariables/{variable_id}"
            ),
            "value": value,
        }
        for variable_id, value in custom_variable_values(conversion, target)
    ]
    if variables:
        payload["custom_variables"] = variables
    return payload


def no_identifier(conversion: Conversion, target: GoogleAdsTarget) -> RowRejected:
    """The rejection of a conversion with nothing Google could match it by."""
    if target.enhanced_for_leads:
        hint = " and no hashed e-mail or phone for enhanced conversions for leads."
    elif has_hashed_contact(conversion.ids):
        hint = "; turn on enhanced_for_leads for this goal to send it by e-mail or phone."
    else:
        hint = "."
    return RowRejected(
        "no_identifier",
        f"The conversion has no Google click id (gclid, gbraid or wbraid){hint}",
    )


def checked_order(conversion: Conversion) -> tuple[Decimal | None, str | None]:
    """The order id, value and currency rules both Google APIs share: ``(value,
    currency)`` to send, or RowRejected."""
    preflight.require_aware(conversion.occurred_at, "conversion time")
    if not conversion.order_id:
        raise RowRejected(
            "missing_order_id",
            "The conversion has no order id; convsync sends every Google conversion with one "
            "so that a re-sent upload is recognised instead of counted twice.",
        )
    value = preflight.checked_value(conversion)
    # A currency without a value is not sent, so it cannot stop the row either.
    currency = preflight.checked_currency(conversion) if value is not None else None
    if value is not None and currency is None:
        raise RowRejected(
            "missing_currency",
            f"The conversion has a value ({preflight.decimal_text(value)}) but no currency; "
            "Google Ads needs the currency of every value (set `currency` on the goal).",
        )
    return value, currency


def check_conversion_time(conversion: Conversion, now: datetime) -> None:
    """Not older than any click Google could attribute it to, not in the future."""
    preflight.require_aware(now, "now")
    preflight.check_not_older_than(
        conversion.occurred_at,
        now,
        max_age=MAX_CONVERSION_AGE,
        code="expired_event",
        why=(
            "Google Ads attributes an uploaded conversion only to a click within the "
            "conversion action's lookback window, at most 90 days, and the click came before "
            "the conversion, so it can no longer be attributed."
        ),
    )
    preflight.check_not_future(conversion.occurred_at, now, platform=PLATFORM)


_MINUTE = timedelta(minutes=1)


def format_conversion_date_time(moment: datetime) -> str:
    """``2026-11-20 14:03:00+03:00``: the API's format, in the conversion's own offset."""
    offset = moment.utcoffset()
    if offset is not None and not moment.microsecond and not offset % _MINUTE:
        return moment.isoformat(" ")  # the same text, several times faster
    if offset is None or offset % _MINUTE:
        # Historic offsets with seconds (LMT) have no hh:mm form; the instant stays exact.
        moment, offset = moment.astimezone(UTC), timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{moment:%Y-%m-%d %H:%M:%S}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def check_click_id(field: str, value: str) -> None:
    code = f"unparseable_{field}"
    # one match for the usual, well-formed id; the character by character scan only
    # to name what is wrong
    bad = (
        set()
        if _CLICK_ID.fullmatch(value)
        else {c for c in value if not _CLICK_ID_CHARS.fullmatch(c)}
    )
    if bad:
        raise RowRejected(
            code,
            f"{field} {preflight.shown(value)} contains characters a Google click id never has "
            f"({preflight.describe_chars(bad)}); check how the source captures it from the "
            "landing-page URL.",
        )
    if not _CLICK_ID_MIN <= len(value) <= _CLICK_ID_MAX:
        raise RowRejected(
            code,
            f"{field} {preflight.shown(value)} is {len(value)} characters long, which no Google "
            f"click id is (they have {_CLICK_ID_MIN} to {_CLICK_ID_MAX}); it is probably cut "
            "short or glued to another value.",
        )


def hashed_contacts(ids: Identifiers) -> list[tuple[str, str]]:
    """``[("email", sha256), ("phone", sha256)]`` — the hashes present, checked; the
    APIs take more, convsync has at most these two."""
    out: list[tuple[str, str]] = []
    for kind, value, what in (
        ("email", ids.email_sha256, "e-mail"),
        ("phone", ids.phone_sha256, "phone"),
    ):
        if not value:
            continue
        if not _SHA256_HEX.fullmatch(value):
            # The value is deliberately not shown: a malformed hash may be the raw contact.
            raise RowRejected(
                "invalid_user_identifier",
                f"The hashed {what} is not a SHA-256 hex digest (64 characters 0-9, a-f), so it "
                "is not sent: convsync never sends an e-mail or phone that is not hashed.",
            )
        out.append((kind, value.lower()))
    return out


def custom_variable_values(
    conversion: Conversion, target: GoogleAdsTarget
) -> list[tuple[str, str]]:
    """``(variable, value)`` of the target's custom variables whose record field has a
    value, in config order (a variable without a value is left out, not sent empty)."""
    attributes = conversion.attributes
    if not target.custom_variables or not attributes:
        return []
    return [
        (variable, value)
        for variable, field in target.custom_variables.items()
        if (value := (attributes.get(field) or "").strip())
    ]


def _consent(value: str | None) -> str | None:
    if value is None:
        return None
    consent = value.strip().upper()
    if consent not in _CONSENT_VALUES:
        raise RowRejected(
            "invalid_consent",
            f"The ad_user_data consent {preflight.shown(value)} is neither GRANTED nor DENIED; "
            "leave it empty when it is not known.",
        )
    return consent
