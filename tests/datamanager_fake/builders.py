"""Small builders of Data Manager requests, for tests that talk to the fake directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.ads.datamanager_v1 import (
    AdIdentifiers,
    Consent,
    ConsentStatus,
    Destination,
    Encoding,
    Event,
    EventSource,
    IngestEventsRequest,
    ProductAccount,
    UserData,
    UserIdentifier,
)

from .server import ACTION_ID, CUSTOMER_ID

WHEN = datetime(2026, 11, 20, 11, 3, tzinfo=UTC)


def destination(
    action: str = ACTION_ID,
    account: str = CUSTOMER_ID,
    *,
    reference: str = "",
    login_account: str | None = None,
) -> Destination:
    """A Google Ads conversion action of ``account`` (optionally reached through
    ``login_account``)."""
    out = Destination(
        reference=reference,
        operating_account=ProductAccount(
            account_type=ProductAccount.AccountType.GOOGLE_ADS, account_id=account
        ),
        product_destination_id=action,
    )
    if login_account is not None:
        out.login_account = ProductAccount(
            account_type=ProductAccount.AccountType.GOOGLE_ADS, account_id=login_account
        )
    return out


def event(
    transaction_id: str,
    *,
    gclid: str = "",
    emails: tuple[str, ...] = (),
    value: float | None = 10.0,
    currency: str = "RUB",
    when: datetime = WHEN,
    source: EventSource | int = EventSource.WEB,
    **fields: Any,
) -> Event:
    """An offline conversion: ``emails`` are SHA-256 hex digests as sent (not hashed here)."""
    out = Event(
        transaction_id=transaction_id,
        event_timestamp=when,
        event_source=source,
        currency=currency,
        **fields,
    )
    if value is not None:
        out.conversion_value = value
    if gclid:
        out.ad_identifiers = AdIdentifiers(gclid=gclid)
    if emails:
        out.user_data = UserData(user_identifiers=[UserIdentifier(email_address=e) for e in emails])
    return out


def ingest_request(
    *events: Event,
    destinations: tuple[Destination, ...] = (),
    validate_only: bool = False,
    consent: ConsentStatus | int = ConsentStatus.CONSENT_GRANTED,
) -> IngestEventsRequest:
    """``events`` to ``destinations`` (default: the fake's account and ACTION_ID), HEX
    encoding, ``consent`` for both ad_user_data and ad_personalization."""
    return IngestEventsRequest(
        destinations=list(destinations or (destination(),)),
        events=list(events),
        consent=Consent(ad_user_data=consent, ad_personalization=consent),
        encoding=Encoding.HEX,
        validate_only=validate_only,
    )
