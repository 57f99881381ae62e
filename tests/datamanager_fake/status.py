"""The fake's asynchronous processing of an accepted request, and RetrieveRequestStatus.

Each event is judged at each of its destinations: scripted ``ProcessingErrors`` first,
then ``state.failing_transactions``, then a click id in ``state.unknown_clicks``
(CLICK_NOT_FOUND), then denied ``ad_user_data`` consent (the event's, else the request's)
on an event identified by user data only (DENIED_CONSENT). An event without an error is
recorded as a conversion (or restates the one with its transaction_id). A destination is
SUCCESS when none of its events failed, FAILED when all did, PARTIAL_SUCCESS otherwise.
"""

from __future__ import annotations

from collections import Counter

from google.ads.datamanager_v1 import (
    ConsentStatus,
    Event,
    IngestEventsRequest,
    ProcessingErrorReason,
    RequestStatusPerDestination,
    RetrieveRequestStatusResponse,
)
from google.ads.datamanager_v1.types import processing_errors as pe

from .faults import ProcessingErrors, processing_reason
from .state import DataManagerState, DestinationStatus, StoredRequest
from .validation import click_ids, has_user_data, targets

Status = RequestStatusPerDestination.RequestStatus


def new_request(
    request_id: str, request: IngestEventsRequest, scripted: ProcessingErrors | None
) -> StoredRequest:
    """An accepted request, PROCESSING at each destination."""
    routes = targets(request)
    return StoredRequest(
        request_id,
        request,
        [
            DestinationStatus(d, record_count=sum(k in r for r in routes))
            for k, d in enumerate(request.destinations)
        ],
        scripted,
    )


def process(state: DataManagerState, stored: StoredRequest) -> None:
    """Judge every event of ``stored`` at each destination and record the good ones."""
    with state.lock:
        if stored.processed:
            return
        request = stored.request
        routes = targets(request)
        for k, status in enumerate(stored.destinations):
            destination = status.destination
            for i, event in enumerate(request.events):
                if k not in routes[i]:
                    continue
                reason = _error_of(state, stored, k, i, event)
                if reason is not None:
                    status.failed_events[i] = reason
                    continue
                key = (
                    destination.operating_account.account_id,
                    destination.product_destination_id,
                    event.transaction_id,
                )
                state.record(key, stored.request_id, event)
            status.error_counts = dict(Counter(status.failed_events.values()))
            failed = len(status.failed_events)
            if not failed:
                status.status = "SUCCESS"
            elif failed == status.record_count:
                status.status = "FAILED"
            else:
                status.status = "PARTIAL_SUCCESS"


def _error_of(
    state: DataManagerState, stored: StoredRequest, k: int, i: int, event: Event
) -> str | None:
    scripted = stored.scripted
    if scripted is not None and scripted.destination in (None, k):
        count = len(stored.request.events)
        by_event = {index % count: reason for index, reason in scripted.errors.items()}
        if i in by_event:
            return by_event[i]
    if event.transaction_id in state.failing_transactions:
        return processing_reason(state.failing_transactions[event.transaction_id])
    if set(click_ids(event)) & state.unknown_clicks:
        return "PROCESSING_ERROR_REASON_CLICK_NOT_FOUND"
    consent = event.consent.ad_user_data
    if consent == ConsentStatus.CONSENT_STATUS_UNSPECIFIED:
        consent = stored.request.consent.ad_user_data
    if consent == ConsentStatus.CONSENT_DENIED and has_user_data(event) and not click_ids(event):
        return "PROCESSING_ERROR_REASON_DENIED_CONSENT"
    return None


def status_response(stored: StoredRequest) -> RetrieveRequestStatusResponse:
    """RetrieveRequestStatus's answer: one entry per destination, in request order;
    ``error_info`` only once processing found errors."""
    entries = []
    for status in stored.destinations:
        entry = RequestStatusPerDestination(
            destination=status.destination,
            request_status=getattr(Status, status.status),
            events_ingestion_status=RequestStatusPerDestination.IngestEventsStatus(
                record_count=status.record_count
            ),
        )
        if status.error_counts:
            entry.error_info = pe.ErrorInfo(
                error_counts=[
                    pe.ErrorCount(record_count=n, reason=getattr(ProcessingErrorReason, reason))
                    for reason, n in sorted(status.error_counts.items())
                ]
            )
        entries.append(entry)
    return RetrieveRequestStatusResponse(request_status_per_destination=entries)
