"""A fake Google Data Manager API for tests and benchmarks: real gRPC over TLS for the real
``google-ads-datamanager`` client, behind the fake OAuth endpoint of ``google_ads_fake``
(see ``server``)."""

from __future__ import annotations

from tests.hold import Hold

from .builders import destination, event, ingest_request
from .configured import destination_for
from .errors import DOMAIN, GOOGLEAPIS, PROJECT_NUMBER, RequestFault, Violation, describe
from .faults import (
    PER_DAY,
    PER_MINUTE,
    QUOTA_METRIC,
    EventViolation,
    EventViolations,
    Fault,
    ProcessingErrors,
    deadline_exceeded,
    event_violations,
    internal,
    invalid_argument,
    permission_denied,
    processing_errors,
    quota_daily,
    quota_per_minute,
    scope_insufficient,
    service_disabled,
    unattributed_violation,
    unauthenticated,
    unavailable,
)
from .server import (
    ACTION_ID,
    CUSTOMER_ID,
    INGEST,
    STATUS,
    Call,
    FakeDataManager,
    fake_data_manager,
)
from .state import DataManagerState, DestinationStatus, Receipt, StoredConversion, StoredRequest

__all__ = [
    "ACTION_ID",
    "CUSTOMER_ID",
    "DOMAIN",
    "GOOGLEAPIS",
    "INGEST",
    "PER_DAY",
    "PER_MINUTE",
    "PROJECT_NUMBER",
    "QUOTA_METRIC",
    "STATUS",
    "Call",
    "DataManagerState",
    "DestinationStatus",
    "EventViolation",
    "EventViolations",
    "FakeDataManager",
    "Fault",
    "Hold",
    "ProcessingErrors",
    "Receipt",
    "RequestFault",
    "StoredConversion",
    "StoredRequest",
    "Violation",
    "deadline_exceeded",
    "describe",
    "destination",
    "destination_for",
    "event",
    "event_violations",
    "fake_data_manager",
    "ingest_request",
    "internal",
    "invalid_argument",
    "permission_denied",
    "processing_errors",
    "quota_daily",
    "quota_per_minute",
    "scope_insufficient",
    "service_disabled",
    "unattributed_violation",
    "unauthenticated",
    "unavailable",
]
