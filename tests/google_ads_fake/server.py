"""A fake Google Ads API (v26) over real gRPC and TLS, for the real ``google-ads`` client.

It serves ``ConversionUploadService/UploadClickConversions`` and
``ConversionAdjustmentUploadService/UploadConversionAdjustments`` with the library's own
request and response types (and ``GoogleAdsService/Search`` for the upload summaries,
``search.py``: calls in ``searches``, faults from ``script_search``), checks ``authorization: Bearer …`` against the access tokens
its fake OAuth endpoint issued, checks access (``login-customer-id`` for a client reached
through a manager), requires ``partial_failure``, keeps the account's state
(``state.AccountState``), records every call with its metadata, and plays scripted faults.

    with fake_google_ads(latency=0.2) as fake:
        config = fake.destination_config()   # endpoint, token_uri, fresh OAuth client
        ...
        fake.calls[-1].request, fake.calls[-1].metadata["login-customer-id"]
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.ads.googleads.v26.services.types import conversion_adjustment_upload_service as adj
from google.ads.googleads.v26.services.types import conversion_upload_service as up
from google.ads.googleads.v26.services.types import google_ads_service as gas

from . import search
from .faults import (
    FAILURE_TRAILER,
    Err,
    Fault,
    RequestFault,
    RowFaults,
    default_message,
    failure,
    partial_failure_status,
)
from .grpc_server import GrpcFake
from .oauth import SCOPE
from .state import AccountState

SERVICES = "google.ads.googleads.v26.services"
CLICKS = "UploadClickConversions"
ADJUSTMENTS = "UploadConversionAdjustments"
SEARCH = "Search"
MAX_ROWS = 2000
TOO_MANY = {
    CLICKS: ("conversion_upload_error", "TOO_MANY_CONVERSIONS_IN_REQUEST"),
    ADJUSTMENTS: ("conversion_adjustment_upload_error", "TOO_MANY_ADJUSTMENTS_IN_REQUEST"),
}
CUSTOMER_ID = "1234567890"


@dataclass
class Call:
    """One request as the server received it."""

    method: str  # UploadClickConversions | UploadConversionAdjustments | Search
    request: Any  # UploadClickConversionsRequest | UploadConversionAdjustmentsRequest | …
    metadata: dict[str, str]
    status: str = "OK"  # OK, or the gRPC status it was answered with
    errors: list[Err] = field(default_factory=list)  # the errors answered, all rows
    query: search.ParsedQuery | None = None  # Search: the query as parsed

    @property
    def rows(self) -> list[Any]:
        if self.method == CLICKS:
            return list(self.request.conversions)
        return list(self.request.conversion_adjustments)


class _Abort(Exception):
    def __init__(self, fault: RequestFault) -> None:
        self.fault = fault


class FakeGoogleAds(GrpcFake):
    def __init__(self, *, latency: float = 0.0, workers: int = 8) -> None:
        self.latency = latency
        self.state = AccountState()
        #: customer id → the manager that must be the login-customer-id (None: direct access)
        self.customers: dict[str, str | None] = {CUSTOMER_ID: None}
        self.calls: list[Call] = []
        self._faults: deque[Fault] = deque()
        #: GoogleAdsService.Search calls (kept apart: ``calls`` are the uploads)
        self.searches: list[Call] = []
        self._search_faults: deque[RequestFault] = deque()
        #: the account's upload summaries at conversion action level (``add_summary``)
        self.summaries: list[Any] = []
        super().__init__(
            (
                grpc.method_handlers_generic_handler(
                    f"{SERVICES}.ConversionUploadService",
                    {
                        CLICKS: self._handler(
                            CLICKS,
                            up.UploadClickConversionsRequest,
                            up.UploadClickConversionsResponse,
                        )
                    },
                ),
                grpc.method_handlers_generic_handler(
                    f"{SERVICES}.GoogleAdsService",
                    {
                        SEARCH: grpc.unary_unary_rpc_method_handler(
                            self._search,
                            request_deserializer=gas.SearchGoogleAdsRequest.deserialize,
                            response_serializer=gas.SearchGoogleAdsResponse.serialize,
                        )
                    },
                ),
                grpc.method_handlers_generic_handler(
                    f"{SERVICES}.ConversionAdjustmentUploadService",
                    {
                        ADJUSTMENTS: self._handler(
                            ADJUSTMENTS,
                            adj.UploadConversionAdjustmentsRequest,
                            adj.UploadConversionAdjustmentsResponse,
                        )
                    },
                ),
            ),
            workers=workers,
            name="fake-ads",
        )

    # --- scripting ---

    def script(self, *faults: Fault) -> None:
        """Faults for the next requests, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def destination_config(self, **overrides: Any) -> dict[str, Any]:
        """A ``google_ads`` destination config (as YAML would give it) for this fake."""
        config: dict[str, Any] = {
            "type": "google_ads",
            "api": "google_ads_api",
            "customer_id": CUSTOMER_ID,
            "endpoint": self.endpoint,
            "developer_token": f"devtoken-{secrets.token_urlsafe(12)}",
            "auth": self.oauth.oauth_client(),
        }
        config.update(overrides)
        return config

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def add_summary(self, action_id: int, **kwargs: Any) -> None:
        """An upload summary of conversion action ``action_id`` (see ``search.summary``)."""
        with self._lock:
            self.summaries.append(search.summary(CUSTOMER_ID, action_id, **kwargs))

    def script_search(self, *faults: RequestFault) -> None:
        """Faults for the next Search calls, one each, in order."""
        with self._lock:
            self._search_faults.extend(faults)

    # --- serving ---

    def _handler(self, method: str, request_type: Any, response_type: Any) -> Any:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            call = Call(method, request, {k: str(v) for k, v in context.invocation_metadata()})
            with self._lock:
                self.calls.append(call)
            try:
                return self._serve(call, context)
            except _Abort as abort:
                return self._abort(call, context, abort.fault)

        return grpc.unary_unary_rpc_method_handler(
            serve,
            request_deserializer=request_type.deserialize,
            response_serializer=response_type.serialize,
        )

    def _search(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = Call(SEARCH, request, {k: str(v) for k, v in context.invocation_metadata()})
        with self._lock:
            self.searches.append(call)
        try:
            if self.latency:
                self._stopping.wait(self.latency)
            self._check_auth(call)
            with self._lock:
                fault = self._search_faults.popleft() if self._search_faults else None
            if fault is not None:
                raise _Abort(fault)
            self._check_access(request.customer_id, call.metadata.get("login-customer-id"))
            try:
                call.query = search.parse(request.query)
            except search.QueryRefused as refused:
                raise _Abort(
                    RequestFault(grpc.StatusCode.INVALID_ARGUMENT, [refused.error])
                ) from None
            with self._lock:
                summaries = list(self.summaries)
            return search.answer(call.query, summaries)
        except _Abort as abort:
            return self._abort(call, context, abort.fault)

    def _serve(self, call: Call, context: grpc.ServicerContext) -> Any:
        if self.latency:
            self._stopping.wait(self.latency)
        self._check_auth(call)
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if isinstance(fault, RequestFault):
            raise _Abort(fault)
        request = call.request
        self._check_access(request.customer_id, call.metadata.get("login-customer-id"))
        if not request.partial_failure:
            raise _Abort(
                RequestFault(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    [Err("partial_failure_error", "PARTIAL_FAILURE_MODE_REQUIRED")],
                )
            )
        rows = call.rows
        if len(rows) > MAX_ROWS:
            field_name, name = TOO_MANY[call.method]
            raise _Abort(RequestFault(grpc.StatusCode.INVALID_ARGUMENT, [Err(field_name, name)]))
        scripted = fault if isinstance(fault, RowFaults) else RowFaults()
        by_row = {i % len(rows): list(e) for i, e in scripted.errors.items()} if rows else {}
        with self.state.lock:
            if call.method == CLICKS:
                # scripted rows fail instead of being processed; the rest go through
                natural = self.state.upload_clicks(
                    [r for i, r in enumerate(rows) if i not in by_row], request.validate_only
                )
            else:
                natural = self.state.upload_adjustments(
                    [r for i, r in enumerate(rows) if i not in by_row], request.validate_only
                )
        it = iter(natural)
        row_errors = [by_row[i] if i in by_row else next(it) for i in range(len(rows))]
        self._hold_here()
        return self._respond(call, row_errors, scripted)

    def _respond(self, call: Call, row_errors: list[list[Err]], scripted: RowFaults) -> Any:
        rows_field = "conversions" if call.method == CLICKS else "conversion_adjustments"
        protos = [e.to_proto(rows_field, i) for i, errs in enumerate(row_errors) for e in errs]
        protos += [e.to_proto(rows_field) for e in scripted.unattributed]
        call.errors = [e for errs in row_errors for e in errs] + list(scripted.unattributed)
        request_id = secrets.token_hex(11)
        status = (
            partial_failure_status(protos, request_id, split=scripted.split_details)
            if protos
            else None
        )
        if call.method == CLICKS:
            results = (
                []
                if call.request.validate_only
                else [
                    up.ClickConversionResult(
                        gclid=r.gclid,
                        gbraid=r.gbraid,
                        wbraid=r.wbraid,
                        conversion_action=r.conversion_action,
                        conversion_date_time=r.conversion_date_time,
                        user_identifiers=r.user_identifiers,
                    )
                    if not errs
                    # failed rows come back empty but for the identifiers (a real quirk)
                    else up.ClickConversionResult(user_identifiers=r.user_identifiers)
                    for r, errs in zip(call.rows, row_errors, strict=True)
                ]
            )
            return up.UploadClickConversionsResponse(
                partial_failure_error=status, results=results, job_id=2**31 + len(self.calls)
            )
        results = (
            []
            if call.request.validate_only
            else [
                adj.ConversionAdjustmentResult(
                    order_id=r.order_id,
                    conversion_action=r.conversion_action,
                    adjustment_date_time=r.adjustment_date_time,
                    adjustment_type=r.adjustment_type,
                )
                if not errs
                else adj.ConversionAdjustmentResult()
                for r, errs in zip(call.rows, row_errors, strict=True)
            ]
        )
        return adj.UploadConversionAdjustmentsResponse(
            partial_failure_error=status, results=results, job_id=2**31 + len(self.calls)
        )

    def _check_auth(self, call: Call) -> None:
        scheme, _, token = call.metadata.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not self.oauth.is_valid(token, SCOPE):
            raise _Abort(
                RequestFault(
                    grpc.StatusCode.UNAUTHENTICATED,
                    [Err("authentication_error", "OAUTH_TOKEN_INVALID")],
                    "Request had invalid authentication credentials.",
                )
            )

    def _check_access(self, customer_id: str, login: str | None) -> None:
        denied = RequestFault(
            grpc.StatusCode.PERMISSION_DENIED,
            [Err("authorization_error", "USER_PERMISSION_DENIED")],
            "The caller does not have permission",
        )
        if customer_id not in self.customers:
            raise _Abort(denied)
        manager = self.customers[customer_id]
        if login not in {None, customer_id, manager} or (manager and login != manager):
            raise _Abort(denied)

    def _abort(self, call: Call, context: grpc.ServicerContext, fault: RequestFault) -> Any:
        call.status = fault.status.name
        call.errors = list(fault.errors)
        request_id = secrets.token_hex(11)
        rows_field = "conversions" if call.method == CLICKS else "conversion_adjustments"
        trailers: list[tuple[str, str | bytes]] = [("request-id", request_id)]
        if fault.errors:
            protos = [e.to_proto(rows_field) for e in fault.errors]
            trailers.append((FAILURE_TRAILER, failure(protos, request_id)))
        context.set_trailing_metadata(tuple(trailers))
        message = fault.message or (default_message(fault.errors[0].name) if fault.errors else "")
        context.abort(fault.status, message)


@contextmanager
def fake_google_ads(*, latency: float = 0.0) -> Iterator[FakeGoogleAds]:
    """A started fake (gRPC server and OAuth endpoint), stopped on exit."""
    fake = FakeGoogleAds(latency=latency)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
