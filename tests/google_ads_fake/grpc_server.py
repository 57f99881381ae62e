"""The gRPC plumbing the fake Google APIs (this one, and ``tests/datamanager_fake``) share: a gRPC server over TLS on 127.0.0.1 (a
free port, the test certificate the real clients trust), the fake OAuth token endpoint
whose access tokens it accepts, held answers for crash tests, and a clean stop."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from concurrent import futures

import grpc

from tests.hold import Hold

from .oauth import FakeTokenEndpoint
from .tls import trusted_test_certificate


class GrpcFake:
    """Serves ``handlers`` on ``endpoint`` between ``start()`` and ``stop()``."""

    def __init__(
        self, handlers: Sequence[grpc.GenericRpcHandler], *, workers: int, name: str
    ) -> None:
        self.oauth = FakeTokenEndpoint()
        self._holds: deque[Hold] = deque()
        self._all_holds: list[Hold] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._executor = futures.ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._server = grpc.server(self._executor)
        self._server.add_generic_rpc_handlers(tuple(handlers))
        tls = trusted_test_certificate()
        credentials = grpc.ssl_server_credentials([(tls.key_pem, tls.cert_pem)])
        port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self.endpoint = f"127.0.0.1:{port}"

    @property
    def token_uri(self) -> str:
        return self.oauth.token_uri

    def start(self) -> None:
        self.oauth.start()
        self._server.start()

    def stop(self) -> None:
        self._stopping.set()
        for hold in self._all_holds:
            hold.release()
        self._server.stop(grace=None).wait()
        self._executor.shutdown(wait=True)
        self.oauth.stop()

    def hold_next(self) -> Hold:
        """Keep back the answer to the next upload that gets through (see ``Hold``)."""
        hold = Hold()
        with self._lock:
            self._holds.append(hold)
            self._all_holds.append(hold)
        return hold

    def _hold_here(self) -> None:
        """Where an upload has been stored: wait here if a test holds its answer."""
        with self._lock:
            hold = self._holds.popleft() if self._holds else None
        if hold is not None:
            hold.accepted.set()
            hold.released.wait(timeout=60)
