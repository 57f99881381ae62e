"""The two upload calls — UploadClickConversions and UploadConversionAdjustments — made
with the official client, and the classification of what they raise (the edge of this
transport: every exception the call can raise is mapped here, nothing broader).

Every request is sent with ``partial_failure=True`` (required since v23), the rows in the
order given, no library retry (the worker retries) and a timeout.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from google.ads.googleads.errors import GoogleAdsException  # type: ignore[import-untyped]  # no py.typed at the package root
from google.api_core import exceptions as core_exceptions

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import RowOutcome
from convsync.destinations.google_ads.api import (
    ClickConversion,
    ConversionAdjustment,
    ConversionAdjustmentUploadServiceClient,
    ConversionUploadServiceClient,
    UploadClickConversionsRequest,
    UploadConversionAdjustmentsRequest,
)
from convsync.destinations.google_ads.client import AUTH_PLUGIN_FAILED, Addresses, scrub
from convsync.destinations.google_ads.config import REQUEST_TIMEOUT
from convsync.destinations.google_ads.failures import (
    ApiError,
    failure_errors,
    failure_from_trailers,
    partial_failure_errors,
)
from convsync.destinations.google_ads.outcomes import Batch, judge

CONVERSIONS = "conversions"
ADJUSTMENTS = "conversion_adjustments"

#: gRPC failures that may pass: the request may also have arrived (a timeout), which is
#: safe because every row carries an order id (a replay answers "already there").
TRANSIENT_CALL_ERRORS = (
    core_exceptions.ResourceExhausted,
    core_exceptions.InternalServerError,
    core_exceptions.ServiceUnavailable,
    core_exceptions.DeadlineExceeded,
    core_exceptions.Aborted,
)
ACCESS_CALL_ERRORS = (core_exceptions.Unauthenticated, core_exceptions.PermissionDenied)


# Rows are made as the raw protobuf messages under the proto-plus types: proto-plus
# builds a 2,000-row request field by field in Python (~45 µs a row, more than the rest
# of the deliver step together), the protobuf runtime in C (~4 µs). ``wrap`` puts the
# proto-plus face back on without a copy.
_CLICK_PB = ClickConversion.pb()
_ADJUSTMENT_PB = ConversionAdjustment.pb()
_CLICKS_REQUEST_PB = UploadClickConversionsRequest.pb()
_ADJUSTMENTS_REQUEST_PB = UploadConversionAdjustmentsRequest.pb()


def click_conversion(payload: Mapping[str, Any]) -> ClickConversion:
    """The ClickConversion of a ``build`` payload: its keys are the API's field names, so
    the mapping is one to one (an unknown key is a bug and raises ValueError)."""
    fields = dict(payload)
    if "user_identifiers" in fields:
        fields["user_identifiers"] = [
            {**identifier, "user_identifier_source": "FIRST_PARTY"}
            for identifier in fields["user_identifiers"]
        ]
    message: ClickConversion = ClickConversion.wrap(_CLICK_PB(**fields))
    return message


def conversion_adjustment(payload: Mapping[str, Any]) -> ConversionAdjustment:
    message: ConversionAdjustment = ConversionAdjustment.wrap(_ADJUSTMENT_PB(**payload))
    return message


def click_request(
    customer_id: str, payloads: Sequence[Mapping[str, Any]], *, validate_only: bool = False
) -> UploadClickConversionsRequest:
    """One UploadClickConversions request (partial failure on) for ``payloads``."""
    request: UploadClickConversionsRequest = UploadClickConversionsRequest.wrap(
        _CLICKS_REQUEST_PB(
            customer_id=customer_id,
            conversions=[ClickConversion.pb(click_conversion(p)) for p in payloads],
            partial_failure=True,
            validate_only=validate_only,
        )
    )
    return request


def adjustments_request(
    customer_id: str, payloads: Sequence[Mapping[str, Any]], *, validate_only: bool = False
) -> UploadConversionAdjustmentsRequest:
    """One UploadConversionAdjustments request (partial failure on) for ``payloads``."""
    request: UploadConversionAdjustmentsRequest = UploadConversionAdjustmentsRequest.wrap(
        _ADJUSTMENTS_REQUEST_PB(
            customer_id=customer_id,
            conversion_adjustments=[
                ConversionAdjustment.pb(conversion_adjustment(p)) for p in payloads
            ],
            partial_failure=True,
            validate_only=validate_only,
        )
    )
    return request


class Uploader:
    """Sends batches for one customer through one ``GoogleAdsClient``."""

    def __init__(
        self,
        client: Any,
        customer_id: str,
        *,
        timeout: float = REQUEST_TIMEOUT,
        secrets: Sequence[str] = (),
        addresses: Addresses | None = None,
    ) -> None:
        self._client = client
        self.customer_id = customer_id
        self.timeout = timeout
        self._secrets = secrets
        #: where the calls go, for the words of one that failed in the network
        self.addresses = addresses
        self._lock = threading.Lock()
        self._clicks: ConversionUploadServiceClient | None = None
        self._adjustments: ConversionAdjustmentUploadServiceClient | None = None

    def upload(self, batch: Batch) -> list[RowOutcome]:
        """One request for ``batch``; one outcome per row, or a raised batch error."""
        payloads = [row.payload for row in batch.rows]
        try:
            if batch.rows_field == CONVERSIONS:
                response: Any = self._click_service().upload_click_conversions(
                    request=click_request(
                        self.customer_id, payloads, validate_only=batch.validate_only
                    ),
                    retry=None,
                    timeout=self.timeout,
                )
            else:
                response = self._adjustment_service().upload_conversion_adjustments(
                    request=adjustments_request(
                        self.customer_id, payloads, validate_only=batch.validate_only
                    ),
                    retry=None,
                    timeout=self.timeout,
                )
        except GoogleAdsException as exc:
            return _request_failed(
                dataclasses.replace(batch, request_id=exc.request_id or None),
                failure_errors(exc.failure, batch.rows_field),
                f"{exc.error.code().name}: {exc.error.details()}",
            )
        except core_exceptions.GoogleAPICallError as exc:
            return _call_failed(batch, exc, self._secrets, self._where())
        errors = partial_failure_errors(response.partial_failure_error, batch.rows_field)
        return judge(batch, errors, request_failed=False)

    def _where(self) -> Addresses | None:
        if self.addresses is None:
            return None
        # the timeout of the call (the destination may change it between batches)
        api = dataclasses.replace(self.addresses.api, timeout=self.timeout)
        return dataclasses.replace(self.addresses, api=api)

    def close(self) -> None:
        for service in (self._clicks, self._adjustments):
            if service is not None:
                service.transport.close()  # type: ignore[no-untyped-call]  # generated transport, unannotated
        self._clicks = self._adjustments = None

    def _click_service(self) -> ConversionUploadServiceClient:
        with self._lock:  # batches may be sent from two threads: one channel each service
            if self._clicks is None:
                self._clicks = self._client.get_service("ConversionUploadService")
            return self._clicks

    def _adjustment_service(self) -> ConversionAdjustmentUploadServiceClient:
        with self._lock:
            if self._adjustments is None:
                self._adjustments = self._client.get_service("ConversionAdjustmentUploadService")
            return self._adjustments


def _request_failed(batch: Batch, errors: Sequence[ApiError], status: str) -> list[RowOutcome]:
    if not errors:
        raise PermanentError("request_failed", f"Google Ads refused the request ({status}).")
    return judge(batch, errors, request_failed=True)


def _call_failed(
    batch: Batch,
    exc: core_exceptions.GoogleAPICallError,
    secrets: Sequence[str],
    addresses: Addresses | None = None,
) -> list[RowOutcome]:
    """A failed call the client did not wrap: gRPC INTERNAL / RESOURCE_EXHAUSTED (which may
    carry a GoogleAdsFailure in the cause's trailers), transport errors, timeouts — these
    last in the plain words of ``convsync.core.network`` (host, cause, the key to check)."""
    trailers = getattr(exc.__cause__, "trailing_metadata", None)
    metadata = list(trailers() or ()) if callable(trailers) else []
    failure = failure_from_trailers(metadata)
    if failure is not None and failure.errors:
        request_id = next((str(v) for k, v in metadata if k == "request-id"), None)
        return judge(
            dataclasses.replace(batch, request_id=request_id),
            failure_errors(failure, batch.rows_field),
            request_failed=True,
        )
    status = getattr(exc.grpc_status_code, "name", None) or type(exc).__name__
    # the text of a failed token refresh is in here: keep credentials out of it
    message = scrub(f"Google Ads answered {status}: {exc.message}", secrets)
    if isinstance(exc, ACCESS_CALL_ERRORS):
        raise DestinationUnavailable(
            "auth_failed",
            f"{message}; check the credentials of destinations.{batch.destination}.auth and "
            f"the access of the Google account to customer {batch.customer_id}.",
        )
    if AUTH_PLUGIN_FAILED in str(exc.message):
        # The access token expired during the run and could not be renewed.
        refused = any(e in str(exc.message) for e in ("invalid_grant", "invalid_client"))
        unreached = None if refused else _unreached(status, exc, addresses)
        if unreached is not None:
            raise DestinationUnavailable("auth_unavailable", unreached)
        raise DestinationUnavailable(
            "auth_failed" if refused else "auth_unavailable",
            f"{message}; "
            + (
                f"the credentials of destinations.{batch.destination}.auth were revoked or "
                "are wrong: re-issue the refresh token (or key) and update the secret."
                if refused
                else "deliveries stay pending until the next run."
            ),
        )
    if isinstance(exc, TRANSIENT_CALL_ERRORS):
        raise TransientError(_unreached(status, exc, addresses) or message, code=status.lower())
    raise PermanentError(status.lower(), message)


def _unreached(
    status: str, exc: core_exceptions.GoogleAPICallError, addresses: Addresses | None
) -> str | None:
    """The plain line of a call that failed in the network; None if it did not."""
    return None if addresses is None else addresses.describe(status, str(exc.message or ""))
