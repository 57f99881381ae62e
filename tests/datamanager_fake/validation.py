"""The fast-fail checks the fake runs on an ``IngestEventsRequest``.

Access problems (an unknown operating account, a login account that is neither the
account nor its manager, a client reached through a manager without a login account)
deny the whole call (PERMISSION_DENIED). Everything else is a field violation, named as
Google names it (``destinations[0].product_destination_id``,
``events.events[3].ad_identifiers.gclid``,
``events.events[0].user_data.user_identifiers[1]``); every violation of the request is
collected, and any one fails the whole request (INVALID_ARGUMENT), nothing of it stored.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from google.ads.datamanager_v1 import (
    Destination,
    Encoding,
    Event,
    EventSource,
    IngestEventsRequest,
    ProductAccount,
)

from .errors import RequestFault, Violation
from .faults import permission_denied

MAX_DESTINATIONS = 10
MAX_EVENTS = 2000
MAX_USER_IDENTIFIERS = 10
CLICK_ID = re.compile(r"[A-Za-z0-9_-]+")
HEX_SHA256 = re.compile(r"[0-9A-Fa-f]{64}")
CURRENCY = re.compile(r"[A-Z]{3}")
CLICK_FIELDS = ("gclid", "gbraid", "wbraid")


@dataclass(frozen=True)
class Rules:
    """What the fake's account knows when a request arrives."""

    #: operating account id → the manager that must be the login account (None: direct)
    customers: Mapping[str, str | None]
    #: conversion action ids that exist (None: every numeric id)
    conversion_actions: frozenset[str] | None = None
    #: custom variable names that exist (None: any)
    custom_variables: frozenset[str] | None = None
    #: gclids always reported malformed, on their event / on no event
    bad_gclids: frozenset[str] = frozenset()
    unattributed_bad_gclids: frozenset[str] = frozenset()


@dataclass
class Verdict:
    denied: RequestFault | None = None
    violations: list[Violation] = field(default_factory=list)


def targets(request: IngestEventsRequest) -> list[list[int]]:
    """For each event, the indexes of the destinations it goes to (all, without references)."""
    by_reference = {d.reference: k for k, d in enumerate(request.destinations) if d.reference}
    everywhere = list(range(len(request.destinations)))
    return [
        [by_reference[r] for r in e.destination_references if r in by_reference]
        if e.destination_references
        else everywhere
        for e in request.events
    ]


def has_user_data(event: Event) -> bool:
    return bool(event.user_data.user_identifiers)


def click_ids(event: Event) -> list[str]:
    ids = event.ad_identifiers
    return [v for v in (ids.gclid, ids.gbraid, ids.wbraid) if v]


def validate(request: IngestEventsRequest, rules: Rules) -> Verdict:
    verdict = Verdict()
    destinations = list(request.destinations)
    if not destinations:
        verdict.violations.append(Violation("destinations", "REQUIRED_FIELD_MISSING"))
    elif len(destinations) > MAX_DESTINATIONS:
        verdict.violations.append(Violation("destinations", "TOO_MANY_DESTINATIONS"))
    seen: set[str] = set()
    for k, destination in enumerate(destinations):
        if destination.reference and destination.reference in seen:
            verdict.violations.append(
                Violation(f"destinations[{k}].reference", "DUPLICATE_DESTINATION_REFERENCE")
            )
        seen.add(destination.reference)
        denied = _check_destination(k, destination, rules, verdict.violations)
        if denied is not None and verdict.denied is None:
            verdict.denied = denied
    events = list(request.events)
    if not events:
        verdict.violations.append(Violation("events", "REQUIRED_FIELD_MISSING"))
    elif len(events) > MAX_EVENTS:
        verdict.violations.append(
            Violation("events", "TOO_MANY_EVENTS", "Too many events in the request.")
        )
        return verdict
    references = {d.reference for d in destinations if d.reference}
    for i, event in enumerate(events):
        verdict.violations += _check_event(f"events.events[{i}]", event, request, references, rules)
    if request.encoding == Encoding.ENCODING_UNSPECIFIED and any(has_user_data(e) for e in events):
        verdict.violations.append(Violation("encoding", "REQUIRED_FIELD_MISSING"))
    if rules.unattributed_bad_gclids & {e.ad_identifiers.gclid for e in events}:
        verdict.violations.append(
            Violation("events", "INVALID_FORMAT", "A click identifier is malformed.")
        )
    return verdict


def _check_destination(
    k: int, destination: Destination, rules: Rules, violations: list[Violation]
) -> RequestFault | None:
    at = f"destinations[{k}]"
    operating = destination.operating_account
    if operating.account_type == ProductAccount.AccountType.ACCOUNT_TYPE_UNSPECIFIED:
        violations.append(
            Violation(f"{at}.operating_account.account_type", "REQUIRED_FIELD_MISSING")
        )
    elif operating.account_type != ProductAccount.AccountType.GOOGLE_ADS:
        violations.append(Violation(f"{at}.operating_account.account_type", "INVALID_DESTINATION"))
    if not operating.account_id:
        violations.append(Violation(f"{at}.operating_account.account_id", "REQUIRED_FIELD_MISSING"))
        return None
    if not operating.account_id.isdigit():
        violations.append(
            Violation(
                f"{at}.operating_account.account_id",
                "INVALID_NUMBER_FORMAT",
                "String is not a valid number.",
            )
        )
        return None
    action = destination.product_destination_id
    if not action:
        violations.append(Violation(f"{at}.product_destination_id", "REQUIRED_FIELD_MISSING"))
    elif not action.isdigit() or (
        rules.conversion_actions is not None and action not in rules.conversion_actions
    ):
        violations.append(Violation(f"{at}.product_destination_id", "INVALID_CONVERSION_ACTION_ID"))
    if destination.linked_account.account_id:
        violations.append(
            Violation(
                f"{at}.linked_account",
                "LINKED_ACCOUNT_ONLY_ALLOWED_WITH_DATA_PARTNER_LOGIN_ACCOUNT",
            )
        )
    login = destination.login_account.account_id or None
    if login is not None and not login.isdigit():
        violations.append(
            Violation(
                f"{at}.login_account.account_id",
                "INVALID_NUMBER_FORMAT",
                "String is not a valid number.",
            )
        )
        return None
    if operating.account_id not in rules.customers:
        return permission_denied()
    manager = rules.customers[operating.account_id]
    if login not in {None, operating.account_id, manager} or (manager and login != manager):
        return permission_denied()
    return None


def _check_event(
    at: str, event: Event, request: IngestEventsRequest, references: set[str], rules: Rules
) -> list[Violation]:
    out: list[Violation] = []
    for j, reference in enumerate(event.destination_references):
        if reference not in references:
            out.append(Violation(f"{at}.destination_references[{j}]", "INVALID_DESTINATION"))
    if "event_timestamp" not in event:
        out.append(Violation(f"{at}.event_timestamp", "REQUIRED_FIELD_MISSING"))
    if not event.transaction_id:
        out.append(Violation(f"{at}.transaction_id", "REQUIRED_FIELD_MISSING"))
    if event.event_source == EventSource.EVENT_SOURCE_UNSPECIFIED:
        out.append(
            Violation(
                f"{at}.event_source",
                "REQUIRED_FIELD_MISSING",
                "An event source is required for offline conversions.",
            )
        )
    ids = event.ad_identifiers
    for name in CLICK_FIELDS:
        value = getattr(ids, name)
        if value and not CLICK_ID.fullmatch(value):
            out.append(Violation(f"{at}.ad_identifiers.{name}", "INVALID_FORMAT"))
        elif name == "gclid" and value in rules.bad_gclids:
            out.append(
                Violation(f"{at}.ad_identifiers.gclid", "INVALID_FORMAT", "The GCLID is malformed.")
            )
    if ids.gbraid and ids.wbraid:
        out.append(
            Violation(
                f"{at}.ad_identifiers",
                "INVALID_FORMAT",
                "Both gbraid and wbraid are set; an event may carry only one of them.",
            )
        )
    identifiers = list(event.user_data.user_identifiers)
    if not click_ids(event) and not identifiers and not ids.session_attributes:
        out.append(Violation(at, "NO_IDENTIFIERS_PROVIDED"))
    if len(identifiers) > MAX_USER_IDENTIFIERS:
        out.append(Violation(f"{at}.user_data.user_identifiers", "TOO_MANY_USER_IDENTIFIERS"))
    for j, identifier in enumerate(identifiers):
        where = f"{at}.user_data.user_identifiers[{j}]"
        hashed = [("", identifier.email_address), ("", identifier.phone_number)]
        hashed += [
            (".address.given_name", identifier.address.given_name),
            (".address.family_name", identifier.address.family_name),
        ]
        for suffix, value in hashed:
            reason = _hash_problem(value, request.encoding)
            if value and reason:
                out.append(Violation(where + suffix, reason))
    if event.currency and not CURRENCY.fullmatch(event.currency):
        out.append(Violation(f"{at}.currency", "INVALID_CURRENCY_CODE"))
    if "conversion_value" in event and event.conversion_value < 0:
        out.append(
            Violation(
                f"{at}.conversion_value", "INVALID_ARGUMENT", "The conversion value is negative."
            )
        )
    for path, device in (
        ("ad_identifiers.landing_page_device_info", ids.landing_page_device_info),
        ("event_device_info", event.event_device_info),
    ):
        if device.ip_address and not _is_ip(device.ip_address):
            out.append(Violation(f"{at}.{path}.ip_address", "INVALID_FORMAT"))
    if rules.custom_variables is not None:
        for j, variable in enumerate(event.custom_variables):
            if variable.variable not in rules.custom_variables:
                out.append(
                    Violation(f"{at}.custom_variables[{j}].variable", "CUSTOM_VARIABLE_NOT_FOUND")
                )
    return out


def _hash_problem(value: str, encoding: Encoding) -> str | None:
    if encoding == Encoding.HEX:
        return None if HEX_SHA256.fullmatch(value) else "INVALID_HEX_ENCODING"
    if encoding == Encoding.BASE64:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "INVALID_BASE64_ENCODING"
        return None if len(decoded) == 32 else "INVALID_SHA256_FORMAT"
    return None  # the missing encoding is one violation of the request


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
