"""The fake HubSpot over HTTP/1.1 on 127.0.0.1 (a random port), in a thread:
``with fake_hubspot() as fake: …`` (pytest or not)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_server import LocalServer, send

from .state import Answer, HubSpotState


class FakeHubSpot(LocalServer):
    def __init__(self) -> None:
        self.state = HubSpotState()
        super().__init__(self._handler_class(), "fake-hubspot")

    def source_config(self, **extra: Any) -> dict[str, Any]:
        """A ``hubspot`` source config (as validated data) for this fake."""
        return {
            "type": "hubspot",
            "token": self.state.token,
            "api_base_url": self.base_url,
            # tests do not wait for the real limits unless they measure them
            "search_requests_per_second": 100,
            "requests_per_second": 100,
            **extra,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._reply(state.answer("GET", self._path(), dict(self.headers.items()), None))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    self._reply((400, {"status": "error", "message": "Invalid input JSON"}, {}))
                    return
                self._reply(state.answer("POST", self._path(), dict(self.headers.items()), body))

            def _path(self) -> str:
                return self.path.partition("?")[0]

            def _reply(self, answer: Answer) -> None:
                send(self, *answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output stays clean; ``state.seen`` keeps every request

        return Handler


@contextmanager
def fake_hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake
