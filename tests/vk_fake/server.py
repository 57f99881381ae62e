"""One HTTP server on 127.0.0.1 (a random port) for the fake tracker and the fake VK Ads
API, in a thread: ``with fake_vk() as fake: …`` (pytest or not).

HTTP/1.1 with keep-alive, as the real hosts speak, so a client's connection pool is
exercised; every handler thread is a daemon and idle connections time out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.local_server import LocalServer

from .oauth import DELETE_PATH, TOKEN_PATH, USER_PATH, Answer, FakeVkApi
from .tracker import COOKIE, FakeTracker, Reply


class FakeVk(LocalServer):
    def __init__(self) -> None:
        self.tracker = FakeTracker()
        self.api = FakeVkApi()
        super().__init__(self._handler_class(), "fake-vk")
        self.tracker_url = self.base_url + self.tracker.path
        self.api_base_url = self.base_url

    def destination_config(self, **extra: Any) -> dict[str, Any]:
        """A ``vk_ads`` destination config for this fake (pixel only unless extra keys)."""
        return {
            "type": "vk_ads",
            "pixel_id": 3456789,
            "tracker_url": self.tracker_url,
            "api_base_url": self.api_base_url,
            **extra,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # an idle keep-alive connection is closed after this
            # headers and body go in two writes: without TCP_NODELAY, Nagle's algorithm
            # and the client's delayed ACK would add ~40 ms to every answer
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                headers = dict(self.headers.items())
                path = self.path.partition("?")[0]
                if path == fake.tracker.path:
                    reply = fake.tracker.receive(self.requestline, self.path, headers)
                    self._reply(reply)
                elif path == USER_PATH:
                    self._json(fake.api.user(self.headers.get("Authorization", "")))
                else:
                    self._json((404, {"error": "not_found"}))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                if self.path == TOKEN_PATH:
                    self._json(fake.api.token(form))
                elif self.path == DELETE_PATH:
                    self._json(fake.api.delete(form))
                else:
                    self._json((404, {"error": "not_found"}))

            def _reply(self, reply: Reply) -> None:
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                if "Content-Type" not in reply.headers:
                    self.send_header("Content-Type", "image/gif")
                self.send_header("Set-Cookie", COOKIE)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def _json(self, answer: Answer) -> None:
                status, data = answer
                body = b"" if data is None else json.dumps(data).encode()
                self.send_response(status)
                for name, value in fake.api.rate_headers().items():
                    self.send_header(name, value)
                if data is not None:
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    self.close_connection = True  # the client went away (a killed run)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest would show every request

        return Handler


@contextmanager
def fake_vk() -> Iterator[FakeVk]:
    with FakeVk() as fake:
        yield fake
