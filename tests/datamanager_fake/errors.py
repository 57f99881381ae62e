"""How the fake Data Manager API fails a call, the way Google does: a ``google.rpc.Status``
in the ``grpc-status-details-bin`` trailer, its ``details`` packed as ``Any`` (ErrorInfo,
RequestInfo, BadRequest, RetryInfo, Help, LocalizedMessage), which the real client
decodes into ``GoogleAPICallError.details`` / ``.reason`` / ``.domain`` / ``.metadata``.

The Status's code and message are the call's own (``abort_with_status`` sends both from
the one proto): grpc_status raises ValueError in the client if they differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.ads.datamanager_v1 import ErrorReason
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

#: the API's own errors (ErrorInfo.domain); auth and quota errors come from googleapis.com
DOMAIN = "datamanager.googleapis.com"
GOOGLEAPIS = "googleapis.com"
SERVICE = "datamanager.googleapis.com"
#: the Cloud project the fake's OAuth client belongs to (quota and SERVICE_DISABLED errors)
PROJECT_NUMBER = "123456789012"
INVALID_ARGUMENT_MESSAGE = "There was a problem with the request."


def _reason_descriptions() -> dict[str, str]:
    """``ErrorReason`` value → its sentence in the client's enum docstring (Google's
    BadRequest descriptions are these: "The HEX encoded value is malformed.")."""
    out: dict[str, str] = {}
    name: str | None = None
    for line in (ErrorReason.__doc__ or "").splitlines():
        heading = re.fullmatch(r"\s*([A-Z0-9_]+) \(\d+\):\s*", line)
        if heading:
            name = heading.group(1)
            out[name] = ""
        elif name is not None and line.strip():
            out[name] = (out[name] + " " + line.strip()).strip()
    return out


DESCRIPTIONS = _reason_descriptions()


def describe(reason: str) -> str:
    """Google's sentence for an ``ErrorReason`` name (a plain one for unknown names)."""
    return DESCRIPTIONS.get(reason) or reason.replace("_", " ").capitalize() + "."


@dataclass(frozen=True)
class Violation:
    """One ``BadRequest.FieldViolation``: ``field`` as Google writes it
    (``events.events[3].ad_identifiers.gclid``), ``reason`` an ``ErrorReason`` name."""

    field: str
    reason: str
    description: str = ""

    def to_proto(self) -> error_details_pb2.BadRequest.FieldViolation:
        return error_details_pb2.BadRequest.FieldViolation(
            field=self.field,
            description=self.description or describe(self.reason),
            reason=self.reason,
        )


@dataclass(frozen=True)
class RequestFault:
    """The whole call fails with ``code`` and ``message``. ``reason`` (if any) makes an
    ErrorInfo in ``domain`` with ``metadata`` (``requestId`` is added for the API's own
    domain); ``retry_after`` a RetryInfo; ``violations`` a BadRequest; ``help_url`` a Help
    link and a LocalizedMessage; ``request_info`` a RequestInfo with the call's id."""

    code: grpc.StatusCode
    message: str
    reason: str | None = None
    domain: str = DOMAIN
    metadata: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    violations: Sequence[Violation] = ()
    help_url: str | None = None
    request_info: bool = True

    def to_status(self, request_id: str) -> status_pb2.Status:
        details: list[Message] = []
        if self.reason is not None:
            metadata = dict(self.metadata)
            if self.domain == DOMAIN:
                metadata.setdefault("requestId", request_id)
            details.append(
                error_details_pb2.ErrorInfo(
                    reason=self.reason, domain=self.domain, metadata=metadata
                )
            )
        if self.request_info:
            details.append(error_details_pb2.RequestInfo(request_id=request_id))
        if self.violations:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[v.to_proto() for v in self.violations]
                )
            )
        if self.retry_after is not None:
            seconds = int(self.retry_after)
            nanos = round((self.retry_after - seconds) * 1e9)
            details.append(
                error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(seconds=seconds, nanos=nanos)
                )
            )
        if self.help_url is not None:
            details.append(
                error_details_pb2.Help(
                    links=[error_details_pb2.Help.Link(description=self.message, url=self.help_url)]
                )
            )
            details.append(error_details_pb2.LocalizedMessage(locale="en-US", message=self.message))
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status


def invalid_argument(*violations: Violation, reason: str = "INVALID_ARGUMENT") -> RequestFault:
    """INVALID_ARGUMENT as a fast-fail validation error: ErrorInfo ``reason`` in the API's
    domain, RequestInfo, and a BadRequest listing ``violations``."""
    return RequestFault(
        grpc.StatusCode.INVALID_ARGUMENT,
        INVALID_ARGUMENT_MESSAGE,
        reason=reason,
        violations=violations,
    )
