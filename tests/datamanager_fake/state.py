"""What the fake Data Manager API remembers: accepted requests (until and after they are
processed) and the conversions processing recorded.

A conversion is keyed by ``(operating account, conversion action, transaction_id)``. The
first event with a key is counted (``count`` is 1, and stays 1); a later one with the same
key is an adjustment, as Google treats it: ``conversion_value`` and ``currency`` are
overwritten, user data is added only if the conversion had none, and the event is kept in
``adjustments``, so a test can prove a resent conversion was counted once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from google.ads.datamanager_v1 import Destination, Event, IngestEventsRequest

from .faults import ProcessingErrors

Key = tuple[str, str, str]  # (operating account, conversion action, transaction_id)


@dataclass
class Receipt:
    """One event that reached a stored conversion, and the request that carried it."""

    request_id: str
    event: Event


@dataclass
class StoredConversion:
    key: Key
    event: Event  # as first recorded
    request_id: str
    value: float | None  # None: sent without a value
    currency: str
    count: int = 1  # times counted: an adjustment never adds to it
    #: the later events with this key (restatements), in processing order
    adjustments: list[Receipt] = field(default_factory=list)

    @property
    def receipts(self) -> int:
        """Times the conversion arrived (the original and each restatement)."""
        return 1 + len(self.adjustments)

    def restate(self, request_id: str, event: Event) -> None:
        self.adjustments.append(Receipt(request_id, event))
        if "conversion_value" in event:
            self.value = event.conversion_value
        if event.currency:
            self.currency = event.currency
        if not self.event.user_data.user_identifiers and event.user_data.user_identifiers:
            supplemented = Event.deserialize(Event.serialize(self.event))
            supplemented.user_data = event.user_data
            self.event = supplemented


@dataclass
class DestinationStatus:
    """A request's status at one of its destinations, as RetrieveRequestStatus tells it."""

    destination: Destination
    status: str = "PROCESSING"  # PROCESSING, SUCCESS, PARTIAL_SUCCESS, FAILED
    record_count: int = 0  # events sent to this destination
    #: ProcessingErrorReason name → events that failed with it (after processing)
    error_counts: dict[str, int] = field(default_factory=dict)
    #: event index → the reason it failed with (after processing)
    failed_events: dict[int, str] = field(default_factory=dict)


@dataclass
class StoredRequest:
    request_id: str
    request: IngestEventsRequest
    destinations: list[DestinationStatus]
    scripted: ProcessingErrors | None = None

    @property
    def processed(self) -> bool:
        return all(d.status != "PROCESSING" for d in self.destinations)


class DataManagerState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.conversions: dict[Key, StoredConversion] = {}
        #: accepted (not validate_only) requests by request_id, in arrival order
        self.requests: dict[str, StoredRequest] = {}
        #: conversion action ids that exist (None: every numeric id exists)
        self.conversion_actions: set[str] | None = None
        #: custom variable names that exist (None: any name)
        self.custom_variables: set[str] | None = None
        #: click ids (gclid, gbraid or wbraid) Google cannot find: CLICK_NOT_FOUND
        self.unknown_clicks: set[str] = set()
        #: transaction_id → ProcessingErrorReason name its events always fail with
        self.failing_transactions: dict[str, str] = {}

    def conversion(self, account: str, action: str, transaction_id: str) -> StoredConversion:
        return self.conversions[(account, action, transaction_id)]

    def pending(self) -> list[StoredRequest]:
        with self.lock:
            return [r for r in self.requests.values() if not r.processed]

    def record(self, key: Key, request_id: str, event: Event) -> StoredConversion:
        """Count a processed event as a conversion, or restate the one it matches."""
        with self.lock:
            stored = self.conversions.get(key)
            if stored is None:
                stored = StoredConversion(
                    key,
                    event,
                    request_id,
                    event.conversion_value if "conversion_value" in event else None,
                    event.currency,
                )
                self.conversions[key] = stored
            else:
                stored.restate(request_id, event)
            return stored
