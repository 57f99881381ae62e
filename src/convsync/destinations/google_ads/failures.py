"""Decoding Google Ads errors into plain records: which error, which row, what it says.

Errors come in three wrappings (reference/google-ads.md §6-§7):

- a partial failure: ``response.partial_failure_error`` (a ``google.rpc.Status``) whose
  ``details`` are ``Any``-packed ``GoogleAdsFailure`` messages, one or several;
- a whole-request ``GoogleAdsException`` whose ``failure`` is a ``GoogleAdsFailure``;
- an unwrapped ``google.api_core`` exception (INTERNAL, RESOURCE_EXHAUSTED) whose gRPC
  cause may carry the same failure in its trailing metadata.

The row of an error is ``location.field_path_elements[0]`` when it names the request's
repeated field (``conversions``, ``conversion_adjustments``) and has an index; index 0 is
a real row although it is falsy, so presence is tested, not truth.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from convsync.destinations.google_ads.api import (
    FAILURE_TRAILER,
    FAILURE_TYPE_URL,
    ErrorCode,
    GoogleAdsError,
    GoogleAdsFailure,
)

#: the protobuf class under the proto-plus GoogleAdsFailure
_FAILURE_PB: Any = GoogleAdsFailure.pb()


@dataclass(frozen=True, slots=True)
class ApiError:
    """One Google Ads error: ``("conversion_upload_error", "TOO_RECENT_EVENT")`` …"""

    field: str  # the error_code oneof field; "" when Google set none
    name: str  # the enum name, e.g. TOO_RECENT_EVENT
    message: str
    index: int | None = None  # the row in the request; None: not attributed to a row
    retry_delay: timedelta | None = None  # quota errors: how long Google asks to wait

    @property
    def label(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


def error_key(code: ErrorCode) -> tuple[str, str]:
    """``(oneof field, enum name)`` of an ``ErrorCode``; ``("", "UNSPECIFIED")`` if unset."""
    return _key(ErrorCode.pb(code))


def _key(raw: Any) -> tuple[str, str]:
    field = raw.WhichOneof("error_code")
    if not field:
        return "", "UNSPECIFIED"
    number = int(getattr(raw, field))  # the wire value: proto-plus warns on unknown ones
    try:
        return str(field), _enum_of(str(field))(number).name
    except ValueError:  # newer than this client's enum: named by its number
        return str(field), str(number)


@functools.cache
def _enum_of(field: str) -> type[enum.IntEnum]:
    names: type[enum.IntEnum] = ErrorCode.meta.fields[field].enum
    return names


def decode_error(error: GoogleAdsError, rows_field: str) -> ApiError:
    return _decode(GoogleAdsError.pb(error), rows_field)


def _decode(raw: Any, rows_field: str) -> ApiError:
    """One error of the raw protobuf (a few times faster than proto-plus per error, which
    counts when 2,000 rows each come back with errors)."""
    field, name = _key(raw.error_code)
    delay: timedelta | None = None
    if raw.HasField("details") and raw.details.HasField("quota_error_details"):
        quota = raw.details.quota_error_details
        if quota.HasField("retry_delay"):
            delay = timedelta(
                seconds=quota.retry_delay.seconds, microseconds=quota.retry_delay.nanos // 1000
            )
    return ApiError(field, name, str(raw.message), _row_index(raw, rows_field), delay)


def _row_index(raw: Any, rows_field: str) -> int | None:
    elements = raw.location.field_path_elements
    if not elements:
        return None
    first = elements[0]
    # HasField: presence of the proto3 optional index, so row 0 counts although it is falsy
    if first.field_name != rows_field or not first.HasField("index"):
        return None
    return int(first.index)


def failure_errors(failure: GoogleAdsFailure, rows_field: str) -> list[ApiError]:
    return [_decode(raw, rows_field) for raw in GoogleAdsFailure.pb(failure).errors]


def partial_failure_errors(status: Any, rows_field: str) -> list[ApiError]:
    """Every error of a ``partial_failure_error`` (a ``google.rpc.Status``); [] when none.

    A status with a code but no decodable detail still means something failed: it is
    reported as one unattributed error rather than read as success.
    """
    if status is None or not status.code:
        return []
    errors: list[ApiError] = []
    for detail in status.details:
        if str(detail.type_url) != FAILURE_TYPE_URL:
            continue
        raw = _FAILURE_PB.FromString(detail.value)
        errors += [_decode(error, rows_field) for error in raw.errors]
    if not errors:
        errors.append(ApiError("", "PARTIAL_FAILURE", str(status.message)))
    return errors


def failure_from_trailers(metadata: Iterable[Any] | None) -> GoogleAdsFailure | None:
    """The ``GoogleAdsFailure`` in a failed call's trailing metadata, if it carries one."""
    for item in metadata or ():
        key, value = item[0], item[1]
        if key == FAILURE_TRAILER and isinstance(value, bytes):
            failure: GoogleAdsFailure = GoogleAdsFailure.deserialize(value)
            return failure
    return None


def longest_delay(errors: Sequence[ApiError]) -> float | None:
    """The longest retry delay any of the errors asks for, in seconds."""
    delays = [e.retry_delay.total_seconds() for e in errors if e.retry_delay is not None]
    return max(delays) if delays else None
