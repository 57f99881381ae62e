"""The fake portal over real HTTP on 127.0.0.1 (a random port), in a thread:
``with fake_bitrix24() as fake: …`` (pytest or not). HTTP/1.1 with keep-alive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.local_server import LocalServer

from .portal import FakePortal, php_parse


class FakeBitrix24(LocalServer):
    def __init__(self, portal: FakePortal | None = None) -> None:
        self.portal = portal or FakePortal()
        super().__init__(self._handler_class(), "fake-bitrix24")

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/rest/1/{self.portal.code}/"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                url = urlsplit(self.path)
                params: dict[str, Any]
                if "json" in self.headers.get("Content-Type", ""):
                    params = json.loads(raw or "{}")
                else:
                    params = php_parse(raw or url.query)
                self._answer(url.path, params)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                self._answer(url.path, php_parse(url.query))

            def _answer(self, path: str, params: dict[str, Any]) -> None:
                status, body, headers = fake.portal.handle(path, params)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def fake_bitrix24(portal: FakePortal | None = None) -> Iterator[FakeBitrix24]:
    with FakeBitrix24(portal) as fake:
        yield fake
