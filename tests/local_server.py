"""The HTTP plumbing every fake platform of the tests shares: a ``ThreadingHTTPServer``
on 127.0.0.1 (a free port) served from a daemon thread, started and stopped."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LocalServer:
    """Serves ``handler`` on ``base_url`` between ``start()`` and ``stop()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # a short poll interval: shutdown() waits for the loop to notice
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name=name, daemon=True
        )
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    broken: bool = False,
) -> None:
    """Answer with ``body``: bytes as they are, anything else as JSON. ``broken`` sends
    half the body and drops the connection (a download cut off)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    if not isinstance(body, bytes):
        handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    if broken:
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        return
    handler.wfile.write(data)
