"""The fake Metrica Logs API over HTTP/1.1 on 127.0.0.1 (a random port), in a thread:
``with fake_metrica_logs() as fake: …`` (pytest or not)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.local_server import LocalServer, send

from .state import Answer, Call, LogsState

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/management/v1/counter/(?P<c>\d+)"), "counter"),
    ("GET", re.compile(r"/management/v1/counter/(?P<c>\d+)/logrequests"), "list"),
    ("GET", re.compile(r"/management/v1/counter/(?P<c>\d+)/logrequests/evaluate"), "evaluate"),
    ("POST", re.compile(r"/management/v1/counter/(?P<c>\d+)/logrequests"), "create"),
    ("GET", re.compile(r"/management/v1/counter/(?P<c>\d+)/logrequest/(?P<r>\d+)"), "info"),
    (
        "GET",
        re.compile(
            r"/management/v1/counter/(?P<c>\d+)/logrequest/(?P<r>\d+)/part/"
            r"(?P<p>\d+)/download"
        ),
        "download",
    ),
    ("POST", re.compile(r"/management/v1/counter/(?P<c>\d+)/logrequest/(?P<r>\d+)/clean"), "clean"),
    (
        "POST",
        re.compile(r"/management/v1/counter/(?P<c>\d+)/logrequest/(?P<r>\d+)/cancel"),
        "cancel",
    ),
]


class FakeMetricaLogs(LocalServer):
    def __init__(self) -> None:
        self.state = LogsState()
        super().__init__(self._handler_class(), "fake-metrica-logs")

    def source_config(self, **extra: Any) -> dict[str, Any]:
        """A ``metrica_logs`` source config (as validated data) for this fake."""
        return {
            "type": "metrica_logs",
            "counter_id": self.state.counter_id,
            "token": self.state.token,
            "api_base_url": self.base_url,
            "goal_ids": [111],
            **extra,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)  # the API takes its parameters in the query
                self._serve("POST")

            def _serve(self, method: str) -> None:
                with state.lock:
                    state.in_flight += 1
                    state.max_in_flight = max(state.max_in_flight, state.in_flight)
                try:
                    self._route(method)
                finally:
                    with state.lock:
                        state.in_flight -= 1

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query, keep_blank_values=True))
                found = [
                    (kind, match)
                    for route_method, pattern, kind in _ROUTES
                    if route_method == method and (match := pattern.fullmatch(url.path))
                ]
                if not found:
                    call = Call("unknown", method, url.path, query)
                    self._reply(state.answer(call, dict(self.headers.items())))
                    return
                kind, match = found[0]
                groups = match.groupdict()
                if groups.get("p") is not None:
                    query["part"] = groups["p"]
                request_id = int(groups["r"]) if groups.get("r") else None
                call = Call(kind, method, url.path, query, request_id=request_id)
                if int(groups["c"]) != state.counter_id:
                    state.calls.append(call)
                    call.status = 403
                    body = {"errors": [{"error_type": "access_denied", "message": "Access is "
                            "denied"}], "code": 403, "message": "Access is denied"}  # fmt: skip
                    self._reply((403, body, {}))
                    return
                if kind == "download" and state.download_delay:
                    time.sleep(state.download_delay)
                answer = state.answer(call, dict(self.headers.items()))
                broken = False
                if kind == "download" and answer[0] == 200:
                    with state.lock:
                        broken = state.break_downloads > 0
                        state.break_downloads -= 1 if broken else 0
                self._reply(answer, broken=broken)

            def _reply(self, answer: Answer, broken: bool = False) -> None:
                status, body, headers = answer
                send(self, status, body, headers, broken=broken)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output stays clean; ``state.calls`` keeps every request

        return Handler


@contextmanager
def fake_metrica_logs() -> Iterator[FakeMetricaLogs]:
    with FakeMetricaLogs() as fake:
        yield fake
