"""A fake incoming webhook (Slack's, Mattermost's): ``POST /hooks/<key>`` with a JSON
body that has ``text``; 200 ``ok`` as Slack answers, 404 ``no_service`` for a key it does
not know, 400 ``invalid_payload`` for a body without text, and any answer it is told to
give next (a 500)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_server import LocalServer, send

KEY = "T0001/B0002/fakeWebhookKey123"

Answer = tuple[int, bytes]


@dataclass
class WebhookState:
    key: str = KEY
    #: every body taken, parsed
    bodies: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    queued: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, raw: bytes, content_type: str) -> Answer:
        with self.lock:
            if self.queued:
                return self.queued.pop(0)
            if path != f"/hooks/{self.key}":
                return 404, b"no_service"
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, b"invalid_payload"
            if not isinstance(body, dict) or not isinstance(body.get("text"), str):
                return 400, b"invalid_payload"
            self.bodies.append(body)
            self.content_types.append(content_type)
            return 200, b"ok"


class FakeWebhook(LocalServer):
    def __init__(self) -> None:
        self.state = WebhookState()
        super().__init__(self._handler_class(), "fake-webhook")

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/{self.state.key}"

    def channel(self, **extra: Any) -> dict[str, Any]:
        return {"type": "webhook", "url": self.url, **extra}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = state.answer(self.path, raw, self.headers.get("Content-Type", ""))
                send(self, status, body, {"Content-Type": "text/plain; charset=utf-8"})

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the path is the hook's key

        return Handler
