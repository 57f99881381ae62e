"""A fake Data Manager API (``google.ads.datamanager.v1.IngestionService``) over real gRPC
and TLS, for the real ``google-ads-datamanager`` client.

It serves ``IngestEvents`` and ``RetrieveRequestStatus`` with the client's own types,
checks ``authorization: Bearer …`` against the access tokens of the shared fake OAuth
endpoint (and their datamanager scope), validates each request fast-fail as Google does
(``validation``), keeps accepted requests PROCESSING until the test calls ``process()``
(or sets ``auto_process``), records every call with its metadata, and plays scripted
faults, with errors in Google's shape (``errors``).

    with fake_data_manager() as fake:
        config = fake.destination_config()   # endpoint, token_uri, fresh OAuth client
        ...
        fake.process()
        fake.state.conversion(CUSTOMER_ID, ACTION_ID, "order-1").count
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.ads.datamanager_v1 import (
    Event,
    IngestEventsRequest,
    IngestEventsResponse,
    RetrieveRequestStatusRequest,
    RetrieveRequestStatusResponse,
)
from grpc_status import rpc_status

from tests.google_ads_fake.grpc_server import GrpcFake
from tests.google_ads_fake.oauth import DATAMANAGER_SCOPE

from .errors import RequestFault, Violation, invalid_argument
from .faults import (
    EventViolations,
    Fault,
    ProcessingErrors,
    scope_insufficient,
    unauthenticated,
)
from .state import DataManagerState
from .status import new_request, process, status_response
from .validation import Rules, validate

SERVICE_NAME = "google.ads.datamanager.v1.IngestionService"
INGEST = "IngestEvents"
STATUS = "RetrieveRequestStatus"
CUSTOMER_ID = "1234567890"
ACTION_ID = "987654321"  # a conversion action id tests use (any numeric id exists by default)


@dataclass
class Call:
    """One request as the server received it, and how it was answered."""

    method: str  # IngestEvents | RetrieveRequestStatus
    request: Any  # IngestEventsRequest | RetrieveRequestStatusRequest (proto-plus)
    metadata: dict[str, str]
    status: str = "OK"  # OK, or the gRPC status code's name it was answered with
    violations: list[Violation] = field(default_factory=list)  # the BadRequest answered
    request_id: str = ""  # the response's (empty for validate_only) or the error's
    fault: RequestFault | None = None  # the error answered

    @property
    def events(self) -> list[Event]:
        return list(self.request.events) if self.method == INGEST else []


class _Abort(Exception):
    def __init__(self, fault: RequestFault) -> None:
        self.fault = fault


class FakeDataManager(GrpcFake):
    def __init__(self, *, latency: float = 0.0, workers: int = 8) -> None:
        self.latency = latency
        self.state = DataManagerState()
        #: operating account id → the manager that must be its login account (None: direct)
        self.customers: dict[str, str | None] = {CUSTOMER_ID: None}
        #: process each accepted request on receipt (else: PROCESSING until process())
        self.auto_process = False
        #: gclids that always get an INVALID_FORMAT violation on their event
        self.bad_gclids: set[str] = set()
        #: gclids that fail their request with a violation naming no event (field "events")
        self.unattributed_bad_gclids: set[str] = set()
        self.calls: list[Call] = []
        self._faults: deque[Fault] = deque()
        self._status_faults: deque[RequestFault] = deque()
        super().__init__(
            (
                grpc.method_handlers_generic_handler(
                    SERVICE_NAME,
                    {
                        INGEST: self._handler(
                            INGEST, self._ingest, IngestEventsRequest, IngestEventsResponse
                        ),
                        STATUS: self._handler(
                            STATUS,
                            self._status,
                            RetrieveRequestStatusRequest,
                            RetrieveRequestStatusResponse,
                        ),
                    },
                ),
            ),
            workers=workers,
            name="fake-datamanager",
        )

    # --- scripting ---

    def script(self, *faults: Fault) -> None:
        """Faults for the next IngestEvents requests, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def script_status(self, *faults: RequestFault) -> None:
        """Faults for the next RetrieveRequestStatus requests, one each, in order."""
        with self._lock:
            self._status_faults.extend(faults)

    def process(self, request_id: str | None = None) -> list[str]:
        """Process every pending request (or the one ``request_id``), in arrival order;
        the ids processed."""
        with self.state.lock:
            pending = (
                [self.state.requests[request_id]]
                if request_id is not None
                else self.state.pending()
            )
            for stored in pending:
                process(self.state, stored)
        return [s.request_id for s in pending]

    def destination_config(self, **overrides: Any) -> dict[str, Any]:
        """A ``google_ads`` destination config (as YAML would give it) for this fake."""
        config: dict[str, Any] = {
            "type": "google_ads",
            "api": "data_manager",
            "customer_id": CUSTOMER_ID,
            "endpoint": self.endpoint,
            "auth": self.oauth.oauth_client(),
        }
        config.update(overrides)
        return config

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # --- serving ---

    def _handler(
        self,
        method: str,
        serve: Callable[[Call], Any],
        request_type: Any,
        response_type: Any,
    ) -> grpc.RpcMethodHandler:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            call = Call(method, request, {k: str(v) for k, v in context.invocation_metadata()})
            with self._lock:
                self.calls.append(call)
            try:
                if self.latency:
                    self._stopping.wait(self.latency)
                self._check_auth(call)
                return serve(call)
            except _Abort as abort:
                call.status = abort.fault.code.name
                call.violations = list(abort.fault.violations)
                call.fault = abort.fault
                call.request_id = new_request_id()
                status = abort.fault.to_status(call.request_id)
                context.abort_with_status(rpc_status.to_status(status))
                raise AssertionError("unreachable: abort_with_status raises") from None

        return grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=request_type.deserialize,
            response_serializer=response_type.serialize,
        )

    def _check_auth(self, call: Call) -> None:
        scheme, _, token = call.metadata.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            raise _Abort(unauthenticated("CREDENTIALS_MISSING", call.method))
        if not self.oauth.is_valid(token):
            raise _Abort(unauthenticated("ACCESS_TOKEN_EXPIRED", call.method))
        if not self.oauth.is_valid(token, DATAMANAGER_SCOPE):
            raise _Abort(scope_insufficient(call.method))

    def _rules(self) -> Rules:
        with self.state.lock:
            actions = self.state.conversion_actions
            variables = self.state.custom_variables
            return Rules(
                customers=dict(self.customers),
                conversion_actions=None if actions is None else frozenset(actions),
                custom_variables=None if variables is None else frozenset(variables),
                bad_gclids=frozenset(self.bad_gclids),
                unattributed_bad_gclids=frozenset(self.unattributed_bad_gclids),
            )

    def _ingest(self, call: Call) -> IngestEventsResponse:
        request: IngestEventsRequest = call.request
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if isinstance(fault, RequestFault):
            raise _Abort(fault)
        verdict = validate(request, self._rules())
        if verdict.denied is not None:
            raise _Abort(verdict.denied)
        violations = list(verdict.violations)
        if isinstance(fault, EventViolations) and request.events:
            violations += [v.at(len(request.events)) for v in fault.violations]
        if violations:
            raise _Abort(invalid_argument(*violations))
        if request.validate_only:
            return IngestEventsResponse(request_id="")
        call.request_id = new_request_id()
        scripted = fault if isinstance(fault, ProcessingErrors) else None
        stored = new_request(call.request_id, request, scripted)
        with self.state.lock:
            self.state.requests[call.request_id] = stored
            if self.auto_process:
                process(self.state, stored)
        self._hold_here()
        return IngestEventsResponse(request_id=call.request_id)

    def _status(self, call: Call) -> RetrieveRequestStatusResponse:
        with self._lock:
            fault = self._status_faults.popleft() if self._status_faults else None
        if fault is not None:
            raise _Abort(fault)
        request_id: str = call.request.request_id
        with self.state.lock:
            stored = self.state.requests.get(request_id)
            if stored is not None:
                call.request_id = request_id
                return status_response(stored)
        raise _Abort(
            invalid_argument(
                Violation(
                    "request_id",
                    "INVALID_REQUEST_ID",
                    "Status can only be retrieved for requests that succeed and are not "
                    "validate_only.",
                ),
                reason="INVALID_REQUEST_ID",
            )
        )


def new_request_id() -> str:
    return f"t-{uuid.uuid4()}"


@contextmanager
def fake_data_manager(*, latency: float = 0.0) -> Iterator[FakeDataManager]:
    """A started fake (gRPC server and OAuth endpoint), stopped on exit."""
    fake = FakeDataManager(latency=latency)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
