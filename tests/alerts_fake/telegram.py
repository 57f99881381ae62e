"""A fake Telegram Bot API: ``POST /bot<token>/sendMessage`` as the documented API
answers it (https://core.telegram.org/bots/api#making-requests): ``{"ok": true,
"result": Message}``, or ``{"ok": false, "error_code", "description"}`` — 401 for a
token it does not know, 400 for a chat it does not know or an empty or too long text,
429 with ``parameters.retry_after`` when told to (flood control)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_server import LocalServer, send

#: a token of the shape @BotFather gives
TOKEN = "123456789:AAHfake-bot-token_for-tests"

Answer = tuple[int, dict[str, Any]]


def refusal(code: int, description: str, **parameters: Any) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return code, body


def flood_control(retry_after: int) -> Answer:
    return refusal(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass
class TelegramState:
    token: str = TOKEN
    #: chats the bot may write to (ids and @usernames)
    chats: set[int | str] = field(default_factory=lambda: {-1001234567890, "@convsync_ops"})
    #: every message taken: the parsed JSON body of sendMessage
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: every request: (path, monotonic time)
    requests: list[tuple[str, float]] = field(default_factory=list)
    #: answers given instead of the usual one, first to last
    queued: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, raw: bytes, content_type: str) -> Answer:
        with self.lock:
            self.requests.append((path, time.monotonic()))
            if self.queued:
                return self.queued.pop(0)
            prefix, _, method = path.removeprefix("/bot").partition("/")
            if not path.startswith("/bot") or prefix != self.token:
                return refusal(401, "Unauthorized")
            if method != "sendMessage":
                return refusal(404, "Not Found")
            if not content_type.startswith("application/json"):
                return refusal(400, "Bad Request: message text is empty")
            try:
                body = json.loads(raw)
            except ValueError:
                return refusal(400, "Bad Request: can't parse JSON")
            chat, text = body.get("chat_id"), body.get("text")
            if chat is None:
                return refusal(400, "Bad Request: chat_id is empty")
            if chat not in self.chats:
                return refusal(400, "Bad Request: chat not found")
            if not isinstance(text, str) or not text.strip():
                return refusal(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                return refusal(400, "Bad Request: message is too long")
            self.messages.append(body)
            message = {
                "message_id": len(self.messages),
                "date": int(time.time()),
                "chat": {"id": chat, "type": "channel"},
                "text": text,
            }
            return 200, {"ok": True, "result": message}


class FakeTelegram(LocalServer):
    def __init__(self) -> None:
        self.state = TelegramState()
        super().__init__(self._handler_class(), "fake-telegram")

    def channel(self, **extra: Any) -> dict[str, Any]:
        """A ``telegram`` channel config (as validated data) for this fake."""
        return {
            "type": "telegram",
            "bot_token": self.state.token,
            "chat_id": -1001234567890,
            "api_base_url": self.base_url,
            **extra,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.headers.get("Content-Type", "")
                send(self, *state.answer(self.path.partition("?")[0], raw, kind))

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the path holds the token; ``state.requests`` keeps every request

        return Handler
