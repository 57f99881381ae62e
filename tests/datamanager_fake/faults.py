"""Faults a test scripts on the fake Data Manager API (``FakeDataManager.script``), one per
request, in order, and the ready-made ones tests use most.

- ``RequestFault``: the call fails with any status and details (``errors.RequestFault``).
- ``EventViolations``: field violations on events named by index, added to what natural
  validation finds (the request then fails fast as a whole, as Google's does).
- ``ProcessingErrors``: the request is accepted; when processed, the named events fail
  with a ``ProcessingErrorReason`` (in RetrieveRequestStatus's ``error_counts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.ads.datamanager_v1 import ProcessingErrorReason

from .errors import (
    DOMAIN,
    GOOGLEAPIS,
    PROJECT_NUMBER,
    SERVICE,
    RequestFault,
    Violation,
    invalid_argument,
)

PER_MINUTE = "IngestionMutateRequestsPerMinutePerProject"
PER_DAY = "IngestionMutateRequestsPerDayPerProject"
QUOTA_METRIC = "datamanager.googleapis.com/ingestion_mutate_requests"
PROCESSING_PREFIX = "PROCESSING_ERROR_REASON_"


@dataclass(frozen=True)
class EventViolation:
    """A violation on event ``index`` of the request (``-1``: the last): its field is
    ``events.events[index].<field>`` (``field=""``: the event itself)."""

    index: int
    reason: str = "INVALID_FORMAT"
    field: str = "ad_identifiers.gclid"
    description: str = ""

    def at(self, count: int) -> Violation:
        index = self.index % count
        path = f"events.events[{index}]" + (f".{self.field}" if self.field else "")
        return Violation(path, self.reason, self.description)


@dataclass(frozen=True)
class EventViolations:
    violations: Sequence[EventViolation]


@dataclass(frozen=True)
class ProcessingErrors:
    """At processing, event index → ``ProcessingErrorReason`` name (the prefix
    ``PROCESSING_ERROR_REASON_`` may be left out), for the destination at ``destination``
    (an index in the request) or, when None, every destination of the event."""

    errors: Mapping[int, str] = field(default_factory=dict)
    destination: int | None = None


Fault = RequestFault | EventViolations | ProcessingErrors


def processing_reason(name: str) -> str:
    """The full ``ProcessingErrorReason`` name of ``name`` (``CLICK_NOT_FOUND`` or
    ``PROCESSING_ERROR_REASON_CLICK_NOT_FOUND``)."""
    full = name if name.startswith("PROCESSING_ERROR_") else PROCESSING_PREFIX + name
    getattr(ProcessingErrorReason, full)  # an AttributeError now for a name the enum lacks
    return full


# --- faults tests use often ---


def event_violations(
    *indexes: int,
    reason: str = "INVALID_FORMAT",
    field: str = "ad_identifiers.gclid",
    description: str = "",
) -> EventViolations:
    """The same violation on each event of ``indexes`` (the request fails as a whole)."""
    return EventViolations([EventViolation(i, reason, field, description) for i in indexes])


def processing_errors(
    errors: Mapping[int, str], *, destination: int | None = None
) -> ProcessingErrors:
    return ProcessingErrors({i: processing_reason(r) for i, r in errors.items()}, destination)


def unattributed_violation(
    reason: str = "INVALID_FORMAT", description: str = "A click identifier is malformed."
) -> RequestFault:
    """INVALID_ARGUMENT whose BadRequest names no event (field ``events``)."""
    return invalid_argument(Violation("events", reason, description))


def _quota(limit: str, retry_after: float | None, per: str) -> RequestFault:
    return RequestFault(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"Quota exceeded for quota metric 'Ingestion mutate requests' and limit "
        f"'Ingestion mutate requests per {per} per project' of service '{SERVICE}' "
        f"for consumer 'project_number:{PROJECT_NUMBER}'.",
        reason="RATE_LIMIT_EXCEEDED",
        domain=GOOGLEAPIS,
        metadata={
            "quota_limit": limit,
            "quota_metric": QUOTA_METRIC,
            "service": SERVICE,
            "consumer": f"projects/{PROJECT_NUMBER}",
            "quota_limit_value": "300" if per == "minute" else "100000",
            "quota_location": "global",
        },
        retry_after=retry_after,
        request_info=False,
    )


def quota_per_minute(retry_after: float = 30.0) -> RequestFault:
    """RESOURCE_EXHAUSTED, quota_limit IngestionMutateRequestsPerMinutePerProject, with a
    RetryInfo of ``retry_after`` seconds."""
    return _quota(PER_MINUTE, retry_after, "minute")


def quota_daily() -> RequestFault:
    """RESOURCE_EXHAUSTED, quota_limit IngestionMutateRequestsPerDayPerProject (no RetryInfo)."""
    return _quota(PER_DAY, None, "day")


def unavailable() -> RequestFault:
    return RequestFault(
        grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.", request_info=False
    )


def internal() -> RequestFault:
    return RequestFault(
        grpc.StatusCode.INTERNAL, "Internal error encountered.", reason="INTERNAL_ERROR"
    )


def deadline_exceeded() -> RequestFault:
    return RequestFault(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "The request took too long to respond.",
        reason="DEADLINE_EXCEEDED",
    )


def permission_denied(
    reason: str = "PERMISSION_DENIED", message: str = "The caller does not have permission"
) -> RequestFault:
    """PERMISSION_DENIED with ErrorInfo ``reason`` in the API's domain."""
    return RequestFault(grpc.StatusCode.PERMISSION_DENIED, message, reason=reason)


def unauthenticated(
    reason: str = "ACCESS_TOKEN_EXPIRED", method: str = "IngestEvents"
) -> RequestFault:
    """UNAUTHENTICATED: ``CREDENTIALS_MISSING`` (no token) or ``ACCESS_TOKEN_EXPIRED``."""
    start = (
        "Request is missing required authentication credential."
        if reason == "CREDENTIALS_MISSING"
        else "Request had invalid authentication credentials."
    )
    return RequestFault(
        grpc.StatusCode.UNAUTHENTICATED,
        f"{start} Expected OAuth 2 access token, login cookie or other valid authentication "
        "credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        reason=reason,
        domain=GOOGLEAPIS,
        metadata={
            "method": f"google.ads.datamanager.v1.IngestionService.{method}",
            "service": SERVICE,
        },
        request_info=False,
    )


def scope_insufficient(method: str = "IngestEvents") -> RequestFault:
    return RequestFault(
        grpc.StatusCode.PERMISSION_DENIED,
        "Request had insufficient authentication scopes.",
        reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        domain=GOOGLEAPIS,
        metadata={
            "method": f"google.ads.datamanager.v1.IngestionService.{method}",
            "service": SERVICE,
        },
        request_info=False,
    )


def service_disabled(project: str = PROJECT_NUMBER) -> RequestFault:
    """PERMISSION_DENIED SERVICE_DISABLED (the API is not enabled in the Cloud project)."""
    url = f"https://console.developers.google.com/apis/api/{SERVICE}/overview?project={project}"
    return RequestFault(
        grpc.StatusCode.PERMISSION_DENIED,
        f"Data Manager API has not been used in project {project} before or it is disabled. "
        f"Enable it by visiting {url} then retry. If you enabled this API recently, wait a "
        "few minutes for the action to propagate to our systems and retry.",
        reason="SERVICE_DISABLED",
        domain=GOOGLEAPIS,
        metadata={
            "consumer": f"projects/{project}",
            "service": SERVICE,
            "serviceTitle": "Data Manager API",
            "activationUrl": url,
            "containerInfo": project,
        },
        help_url=url,
        request_info=False,
    )


__all__ = [
    "DOMAIN",
    "PER_DAY",
    "PER_MINUTE",
    "QUOTA_METRIC",
    "EventViolation",
    "EventViolations",
    "Fault",
    "ProcessingErrors",
    "RequestFault",
    "Violation",
    "deadline_exceeded",
    "event_violations",
    "internal",
    "invalid_argument",
    "permission_denied",
    "processing_errors",
    "processing_reason",
    "quota_daily",
    "quota_per_minute",
    "scope_insufficient",
    "service_disabled",
    "unattributed_violation",
    "unauthenticated",
    "unavailable",
]
