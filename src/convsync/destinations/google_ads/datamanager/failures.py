"""Decoding a failed Data Manager API call into a plain record: its gRPC status, Google's
reason, the fields it names and the wait it asks for.

The API follows Google's error model (reference/google-data-manager.md): a
``google.rpc.Status`` whose details the client library decodes into ``exc.details`` —
``BadRequest`` (one ``FieldViolation`` per bad field: ``field`` path, ``reason`` from the
``ErrorReason`` enum, ``description``), ``ErrorInfo`` (``reason``, ``domain``,
``metadata``: ``quota_limit`` on quota errors, ``activationUrl`` when the API is off),
``RetryInfo`` and ``RequestInfo``.

A field path names an event by its index in the request's ``events``: Google's own
example is ``events.events[0].user_data.user_identifiers[1]``; ``events[0]…`` and the
camelCase form are read the same way. A path may name a request destination instead
(``destinations[0].product_destination_id``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as core_exceptions
from google.rpc import error_details_pb2

from convsync.destinations.google_ads.client import scrub

#: the first ``events[N]`` of a path (``events.events[3].ad_identifiers.gclid``)
_EVENT = re.compile(r"(?:^|\.)events\[(\d+)\]")
_DESTINATION = re.compile(r"(?:^|\.)destinations\[(\d+)\]")
#: ``events.events[3].`` / ``destinations[0].``: what comes after names the field
_PREFIX = re.compile(r"^(?:events\.)?(?:events|destinations)\[\d+\]\.?")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


@dataclass(frozen=True, slots=True)
class Violation:
    """One bad field of a refused request."""

    field: str  # as Google wrote it
    reason: str  # an ErrorReason name, e.g. INVALID_FORMAT ("" when Google gave none)
    description: str
    event: int | None = None  # index in the request's events
    destination: int | None = None  # index in the request's destinations

    @property
    def path(self) -> str:
        """The field within its event or destination, snake_case: ``ad_identifiers.gclid``."""
        return _CAMEL.sub(r"_\1", _PREFIX.sub("", self.field)).lower()

    @property
    def label(self) -> str:
        """``INVALID_FORMAT at ad_identifiers.gclid: Google's text``."""
        where = f" at {self.path}" if self.path else ""
        text = f": {self.description.rstrip('.')}" if self.description else ""
        return f"{self.reason or 'INVALID_ARGUMENT'}{where}{text}"


@dataclass(frozen=True, slots=True)
class CallFailure:
    """What Google said about a failed call."""

    status: str  # the gRPC status name: INVALID_ARGUMENT, RESOURCE_EXHAUSTED …
    message: str
    reason: str = ""  # ErrorInfo.reason
    domain: str = ""  # ErrorInfo.domain
    metadata: dict[str, str] = field(default_factory=dict)  # ErrorInfo.metadata
    violations: tuple[Violation, ...] = ()
    retry_after: float | None = None  # RetryInfo, seconds
    request_id: str | None = None  # RequestInfo, for Google's support

    @property
    def events(self) -> dict[int, list[Violation]]:
        """The violations that name an event, by its index in the request."""
        out: dict[int, list[Violation]] = {}
        for violation in self.violations:
            if violation.event is not None:
                out.setdefault(violation.event, []).append(violation)
        return out

    @property
    def destinations(self) -> dict[int, list[Violation]]:
        out: dict[int, list[Violation]] = {}
        for violation in self.violations:
            if violation.event is None and violation.destination is not None:
                out.setdefault(violation.destination, []).append(violation)
        return out

    @property
    def label(self) -> str:
        """``STATUS (REASON): message``, for a person."""
        reason = f" ({self.reason})" if self.reason and self.reason != self.status else ""
        return f"{self.status}{reason}: {self.message}"


def decode(exc: core_exceptions.GoogleAPICallError, secrets: Iterable[str] = ()) -> CallFailure:
    """The failure a call raised, details decoded (the library unpacks them from the
    ``grpc-status-details-bin`` trailer); ``secrets`` are scrubbed from its texts (a
    failed token refresh quotes Google's answer)."""
    status = getattr(exc.grpc_status_code, "name", None) or type(exc).__name__.upper()
    reason, domain, metadata = "", "", {}
    violations: list[Violation] = []
    retry_after: float | None = None
    request_id: str | None = None
    for detail in _details(exc):
        if isinstance(detail, error_details_pb2.ErrorInfo) and not reason:
            reason, domain, metadata = detail.reason, detail.domain, dict(detail.metadata)
        elif isinstance(detail, error_details_pb2.BadRequest):
            violations.extend(_violation(v) for v in detail.field_violations)
        elif isinstance(detail, error_details_pb2.RetryInfo):
            retry_after = detail.retry_delay.ToTimedelta().total_seconds()
        elif isinstance(detail, error_details_pb2.RequestInfo):
            request_id = detail.request_id or None
    return CallFailure(
        status=status,
        message=scrub(str(exc.message or ""), secrets),
        reason=reason,
        domain=domain,
        metadata=metadata,
        violations=tuple(violations),
        retry_after=retry_after,
        request_id=request_id or metadata.get("requestId") or None,
    )


def _details(exc: core_exceptions.GoogleAPICallError) -> Sequence[Any]:
    details = exc.details
    return details if isinstance(details, list) else []


def _violation(raw: Any) -> Violation:
    return parse_violation(
        str(raw.field), str(getattr(raw, "reason", "") or ""), str(raw.description)
    )


def parse_violation(path: str, reason: str, description: str) -> Violation:
    """A violation with the event or destination its path names."""
    event = _EVENT.search(path)
    destination = _DESTINATION.search(path)
    return Violation(
        field=path,
        reason=reason,
        description=description,
        event=int(event.group(1)) if event else None,
        destination=int(destination.group(1)) if destination else None,
    )
