"""One Data Manager API ``Event``, as the dry-run shows it, and its pre-flight.

Field names are the API's (``transaction_id``, ``event_timestamp``, ``ad_identifiers`` …),
so the dry-run plan reads like the request and the event is made from the payload key by
key. How a ClickConversion of the Google Ads API maps to an Event: ``order_id`` →
``transaction_id``, ``conversion_date_time`` → ``event_timestamp`` (an instant, UTC),
``gclid``/``gbraid``/``wbraid`` → ``ad_identifiers``, hashed e-mail/phone →
``user_data.user_identifiers`` (hex, the request's ``encoding``), ``conversion_action`` →
the request destination the event's ``destination_references`` name.

Consent: the record's ``ad_user_data`` consent overrides the destination's default; a
conversion whose consent is denied is sent without user data (hashed contacts, IP
address, user agent), and one with nothing else to match it by has no identifier.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from convsync.core.errors import RowRejected, RowSkipped
from convsync.core.model import Adjustment, AdjustmentKind, Conversion
from convsync.destinations.google_ads.adjustments import check_adjustment_timing
from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget
from convsync.destinations.google_ads.payload import (
    check_click_id,
    check_conversion_time,
    checked_order,
    click_id,
    custom_variable_values,
    has_hashed_contact,
    hashed_contacts,
    no_identifier,
)

#: Google's own samples send offline conversions as WEB events (required since v1.2)
DEFAULT_EVENT_SOURCE = "WEB"
#: the canonical record fields that carry match signals (kept sealed in the ledger)
SESSION_ATTRIBUTES = "google_session_attributes"
IP_ADDRESS = "ip_address"
USER_AGENT = "user_agent"

_CONTACT = {"email": "email_address", "phone": "phone_number"}
_CONSENT = {"GRANTED": "CONSENT_GRANTED", "DENIED": "CONSENT_DENIED"}


def reference_of(target: GoogleAdsTarget) -> str:
    """The request destination an event of ``target`` points at: its conversion action."""
    return str(target.conversion_action)


def match_fields(config: GoogleAdsConfig) -> frozenset[str]:
    """Record fields a conversion keeps for this destination: the session attributes, and
    the device's IP address and user agent where ``send_ip_address`` allows them."""
    if config.send_ip_address:
        return frozenset({SESSION_ATTRIBUTES, IP_ADDRESS, USER_AGENT})
    return frozenset({SESSION_ATTRIBUTES})


def user_data_consent(conversion: Conversion, config: GoogleAdsConfig) -> str | None:
    """``GRANTED`` / ``DENIED`` / None: the record's own, else the destination default."""
    if conversion.consent:
        return conversion.consent.strip().upper()
    default = config.consent.ad_user_data if config.consent else None
    return default.upper() if default else None


def has_identifier(
    conversion: Conversion, config: GoogleAdsConfig, target: GoogleAdsTarget
) -> bool:
    if click_id(conversion.ids) is not None:
        return True
    return (
        target.enhanced_for_leads
        and has_hashed_contact(conversion.ids)
        and user_data_consent(conversion, config) != "DENIED"
    )


def build_event(
    conversion: Conversion, config: GoogleAdsConfig, target: GoogleAdsTarget, now: datetime
) -> dict[str, Any]:
    """The Event of one conversion; raises RowRejected / RowDeferred."""
    consent = user_data_consent(conversion, config)
    denied = consent == "DENIED"
    click = click_id(conversion.ids)
    contacts = hashed_contacts(conversion.ids) if target.enhanced_for_leads and not denied else []
    if click is None and not contacts:
        if denied and target.enhanced_for_leads and has_hashed_contact(conversion.ids):
            raise RowRejected(
                "no_identifier",
                "The conversion has no Google click id, and its hashed e-mail and phone are "
                "not sent because the customer denied ad_user_data consent.",
            )
        raise no_identifier(conversion, target)
    if click is not None:
        check_click_id(*click)
    value, currency = checked_order(conversion)
    if consent is not None and consent not in _CONSENT:
        raise RowRejected(
            "invalid_consent",
            f"The ad_user_data consent {consent!r} is neither granted nor denied; leave it "
            "empty when it is not known.",
        )
    check_conversion_time(conversion, now)

    event: dict[str, Any] = {
        "destination_references": [reference_of(target)],
        "transaction_id": conversion.order_id,
        "event_timestamp": format_timestamp(conversion.occurred_at),
        "event_source": target.event_source or DEFAULT_EVENT_SOURCE,
    }
    if value is not None:
        event["conversion_value"] = float(value)
        event["currency"] = currency
    identifiers = _ad_identifiers(conversion, config, click, denied=denied)
    if identifiers:
        event["ad_identifiers"] = identifiers
    if contacts:
        event["user_data"] = {
            "user_identifiers": [{_CONTACT[kind]: digest} for kind, digest in contacts]
        }
    if conversion.consent:
        event["consent"] = _event_consent(conversion.consent, config)
    variables = [
        {"variable": name, "value": text}
        for name, text in custom_variable_values(conversion, target)
    ]
    if variables:
        event["custom_variables"] = variables
    return event


def build_restatement(
    conversion: Conversion,
    adjustment: Adjustment,
    config: GoogleAdsConfig,
    target: GoogleAdsTarget,
    now: datetime,
) -> dict[str, Any]:
    """A restatement is the conversion's own event again with the new value: the same
    ``transaction_id`` for the same conversion action makes Google overwrite the value
    and currency without counting the conversion twice. A retraction has no equivalent
    in the Data Manager API: skipped."""
    if adjustment.kind is AdjustmentKind.RETRACTION:
        raise RowSkipped(
            "retraction_not_supported",
            "The Data Manager API cannot retract a conversion (it only restates a value), so "
            "Google keeps counting this one. Google Ads API users whose developer token is "
            "allowlisted for offline conversion imports can retract with api: google_ads_api.",
        )
    if adjustment.value is None:
        raise RowRejected(
            "missing_restatement_value",
            "The restatement has no new value; a restatement replaces the conversion's value, "
            "so it needs one.",
        )
    restated = dataclasses.replace(
        conversion, value=adjustment.value, currency=adjustment.currency or conversion.currency
    )
    event = build_event(restated, config, target, now)  # rejections before deferrals
    check_adjustment_timing(conversion, adjustment, now)
    return event


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as the API's JSON shows a Timestamp: ``2026-11-20T11:03:00Z``."""
    # isoformat of a UTC moment ends "+00:00" (after ".ffffff" when it has microseconds),
    # and is several times faster than strftime
    return moment.astimezone(UTC).isoformat()[:-6] + "Z"


def _ad_identifiers(
    conversion: Conversion,
    config: GoogleAdsConfig,
    click: tuple[str, str] | None,
    *,
    denied: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if click is not None:
        out[click[0]] = click[1]
    attributes = conversion.attributes or {}
    session = (attributes.get(SESSION_ATTRIBUTES) or "").strip()
    if session:
        out["session_attributes"] = session
    if config.send_ip_address and not denied:
        device = _device_info(attributes)
        if device:
            out["landing_page_device_info"] = device
    return out


def _device_info(attributes: Mapping[str, str]) -> dict[str, str]:
    """IP address and user agent of the landing; an IP that is not one is left out."""
    device: dict[str, str] = {}
    text = (attributes.get(IP_ADDRESS) or "").strip()
    if text:
        # not an address (a proxy chain, "unknown"): sent without it
        with contextlib.suppress(ValueError):
            device["ip_address"] = str(ipaddress.ip_address(text))
    agent = (attributes.get(USER_AGENT) or "").strip()
    if agent:
        device["user_agent"] = agent
    return device


def _event_consent(own: str, config: GoogleAdsConfig) -> dict[str, str]:
    """The event's consent: the record's ad_user_data, with the destination's
    ad_personalization default so that the event's consent is whole."""
    consent = {"ad_user_data": _CONSENT[own.strip().upper()]}
    personalization = config.consent.ad_personalization if config.consent else None
    if personalization:
        consent["ad_personalization"] = _CONSENT[personalization.upper()]
    return consent


def request_consent(config: GoogleAdsConfig) -> dict[str, str] | None:
    """The request's consent: the destination's defaults (None: not sent)."""
    if config.consent is None:
        return None
    consent = {
        key: _CONSENT[value.upper()]
        for key, value in (
            ("ad_user_data", config.consent.ad_user_data),
            ("ad_personalization", config.consent.ad_personalization),
        )
        if value
    }
    return consent or None


def shown(payload: dict[str, Any]) -> dict[str, Any]:
    """The event as the dry-run plan shows it: the match signals masked — the IP address,
    the user agent and the session attributes (which hold the landing's user agent and
    URL): the plan is shared and kept, and they are personal data."""
    identifiers = payload.get("ad_identifiers")
    if not identifiers:
        return payload
    masked = dict(identifiers)
    session = masked.get("session_attributes")
    if session:
        masked["session_attributes"] = f"<session attributes, {len(session)} characters>"
    device = masked.get("landing_page_device_info")
    if device:
        device = dict(device)
        if "ip_address" in device:
            version = ipaddress.ip_address(device["ip_address"]).version
            device["ip_address"] = f"<IPv{version} address>"
        if "user_agent" in device:
            device["user_agent"] = f"<user agent, {len(device['user_agent'])} characters>"
        masked["landing_page_device_info"] = device
    return {**payload, "ad_identifiers": masked}
