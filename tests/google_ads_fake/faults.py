"""Errors the fake Google Ads server answers with, built from the library's own v26 types.

``Err`` is one ``GoogleAdsError``; ``RowFaults`` scripts a partial failure (some rows fail,
the others are processed as usual); ``RequestFault`` fails the whole call with a gRPC
status and, when it has errors, a ``GoogleAdsFailure`` in the trailing metadata (which the
client raises as ``GoogleAdsException``, or leaves unwrapped for INTERNAL and
RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.ads.googleads.v26.errors.types import errors as v26_errors
from google.protobuf import any_pb2
from google.rpc import status_pb2

FAILURE_TRAILER = "google.ads.googleads.v26.errors.googleadsfailure-bin"
FAILURE_TYPE_URL = "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure"

#: Google's texts for the errors tests use most (from the API's enum descriptions)
MESSAGES = {
    "TOO_RECENT_EVENT": "The click associated with the given identifier or iOS URL parameter "
    "occurred less than 6 hours ago. Retry after 6 hours have passed.",
    "ORDER_ID_ALREADY_IN_USE": "The imported event includes an order ID that was previously "
    "recorded, so the event was not processed.",
    "CLICK_CONVERSION_ALREADY_EXISTS": "The imported event has the same click and "
    "conversion_date_time as an existing conversion.",
    "UNPARSEABLE_GCLID": "The imported gclid could not be decoded.",
    "NO_CONVERSION_ACTION_FOUND": "The conversion action specified in the upload request "
    "cannot be found.",
    "USER_PERMISSION_DENIED": "User doesn't have permission to access customer. Note: If "
    "you're accessing a client customer, the manager's customer id must be set in the "
    "'login-customer-id' header.",
    "OAUTH_TOKEN_INVALID": "Authentication of the request failed.",
    "RESOURCE_EXHAUSTED": "Too many requests.",
    "RESOURCE_TEMPORARILY_EXHAUSTED": "Too many requests in a short amount of time.",
    "INTERNAL_ERROR": "An internal error has occurred.",
    "CONVERSION_NOT_FOUND": "The conversion was not found.",
}


@dataclass(frozen=True)
class Err:
    """One error: ``Err("conversion_upload_error", "TOO_RECENT_EVENT")``.

    ``field_path`` continues the location after the row (``("gclid",)``); ``index`` places a
    whole-request error on a row (row errors of ``RowFaults`` get their index from there).
    """

    field: str
    name: str
    message: str | None = None
    retry_delay: float | None = None  # seconds (quota errors)
    index: int | None = None
    field_path: tuple[str, ...] = ()

    def to_proto(self, rows_field: str, index: int | None = None) -> v26_errors.GoogleAdsError:
        error = v26_errors.GoogleAdsError(
            error_code=v26_errors.ErrorCode({self.field: self.name}),
            message=self.message if self.message is not None else default_message(self.name),
        )
        at = index if index is not None else self.index
        if at is not None:
            # index=0 set explicitly: proto3 optional, so "row 0" is present (and falsy)
            elements = [v26_errors.ErrorLocation.FieldPathElement(field_name=rows_field, index=at)]
            elements += [
                v26_errors.ErrorLocation.FieldPathElement(field_name=name)
                for name in self.field_path
            ]
            error.location = v26_errors.ErrorLocation(field_path_elements=elements)
        if self.retry_delay is not None:
            error.details = v26_errors.ErrorDetails(
                quota_error_details=v26_errors.QuotaErrorDetails(
                    rate_scope=v26_errors.QuotaErrorDetails.QuotaRateScope.ACCOUNT,
                    rate_name="Requests per account",
                    retry_delay={"seconds": int(self.retry_delay)},
                )
            )
        return error


def default_message(name: str) -> str:
    return MESSAGES.get(name) or name.replace("_", " ").capitalize() + "."


@dataclass(frozen=True)
class RowFaults:
    """A partial failure: ``errors`` by row (``-1`` is the last row) plus errors that name
    no row; every other row is processed as usual. ``split_details`` puts each error in a
    detail of its own (Google may send one or several)."""

    errors: Mapping[int, Sequence[Err]] = field(default_factory=dict)
    unattributed: Sequence[Err] = ()
    split_details: bool = False


@dataclass(frozen=True)
class RequestFault:
    """The whole call fails with ``status``; ``errors`` go into the failure trailer."""

    status: grpc.StatusCode
    errors: Sequence[Err] = ()
    message: str = ""


Fault = RowFaults | RequestFault


def failure(errors: Sequence[v26_errors.GoogleAdsError], request_id: str) -> bytes:
    message = v26_errors.GoogleAdsFailure(errors=list(errors), request_id=request_id)
    return bytes(v26_errors.GoogleAdsFailure.serialize(message))


def partial_failure_status(
    errors: Sequence[v26_errors.GoogleAdsError], request_id: str, *, split: bool
) -> status_pb2.Status:
    groups = [[e] for e in errors] if split else [list(errors)]
    first = errors[0]
    return status_pb2.Status(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
        message=f"{first.message}, at {first.location.field_path_elements[0].field_name}"
        if first.location.field_path_elements
        else first.message,
        details=[
            any_pb2.Any(type_url=FAILURE_TYPE_URL, value=failure(group, request_id))
            for group in groups
        ],
    )


# --- faults tests use often ---


def quota_exhausted(*, daily: bool, retry_delay: float | None = None) -> RequestFault:
    name = "RESOURCE_EXHAUSTED" if daily else "RESOURCE_TEMPORARILY_EXHAUSTED"
    return RequestFault(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        [Err("quota_error", name, retry_delay=retry_delay)],
        "Resource has been exhausted (e.g. check quota).",
    )


def internal(with_failure: bool = True) -> RequestFault:
    errors = [Err("internal_error", "INTERNAL_ERROR")] if with_failure else []
    return RequestFault(grpc.StatusCode.INTERNAL, errors, "Internal error encountered.")


def unavailable() -> RequestFault:
    return RequestFault(grpc.StatusCode.UNAVAILABLE, [], "The service is currently unavailable.")


def unauthenticated(name: str = "OAUTH_TOKEN_INVALID") -> RequestFault:
    return RequestFault(
        grpc.StatusCode.UNAUTHENTICATED,
        [Err("authentication_error", name)],
        "Request is missing required authentication credential.",
    )


def permission_denied(name: str = "USER_PERMISSION_DENIED") -> RequestFault:
    return RequestFault(
        grpc.StatusCode.PERMISSION_DENIED,
        [Err("authorization_error", name)],
        "The caller does not have permission",
    )


def invalid_argument(*errors: Err) -> RequestFault:
    return RequestFault(
        grpc.StatusCode.INVALID_ARGUMENT, list(errors), "Request contains an invalid argument."
    )
