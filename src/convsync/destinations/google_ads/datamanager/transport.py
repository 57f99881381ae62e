"""The official ``IngestionServiceClient`` for one destination and one run: gRPC to the
configured endpoint with the destination's credentials, no library retry (the worker
retries, and a blind re-send is what the API's own default would do), a timeout on every
call, and each call paced below the Cloud project's 300 requests a minute.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from convsync.core.pacing import WindowLimit
from convsync.destinations.google_ads.datamanager.api import (
    IngestEventsRequest,
    IngestEventsResponse,
    IngestionServiceClient,
    RetrieveRequestStatusRequest,
    RetrieveRequestStatusResponse,
)

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

#: below IngestionService's 300 requests a minute per Cloud project (mutate and read
#: quotas are separate), leaving room for other tools of the same project
REQUESTS_PER_MINUTE = 280


class IngestionClient:
    """Calls of one destination; safe to use from the worker's sending threads."""

    def __init__(
        self,
        credentials: Credentials,
        endpoint: str,
        *,
        timeout: float,
        secrets: Sequence[str] = (),
    ) -> None:
        self.timeout = timeout
        self.secrets = secrets
        self._client = IngestionServiceClient(
            credentials=credentials, client_options={"api_endpoint": endpoint}
        )
        self._ingest_limit = WindowLimit(REQUESTS_PER_MINUTE, 60.0)
        self._read_limit = WindowLimit(REQUESTS_PER_MINUTE, 60.0)
        self._lock = threading.Lock()
        #: calls made, and IngestEvents calls among them (for the run summary and figures)
        self.calls = 0
        self.ingest_calls = 0

    def ingest(self, request: IngestEventsRequest) -> IngestEventsResponse:
        self._ingest_limit.wait()
        self._count(ingest=True)
        return self._client.ingest_events(request=request, retry=None, timeout=self.timeout)

    def retrieve(self, request_id: str) -> RetrieveRequestStatusResponse:
        self._read_limit.wait()
        self._count()
        return self._client.retrieve_request_status(
            request=RetrieveRequestStatusRequest(request_id=request_id),
            retry=None,
            timeout=self.timeout,
        )

    def close(self) -> None:
        self._client.transport.close()  # type: ignore[no-untyped-call]  # generated transport, unannotated

    def _count(self, *, ingest: bool = False) -> None:
        with self._lock:
            self.calls += 1
            self.ingest_calls += ingest
