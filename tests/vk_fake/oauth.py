"""The fake VK Ads API: ``/api/v2/oauth2/token.json`` (client credentials and refresh
grants, as documented: ``expires_in`` as a string, a new refresh token per refresh, at
most ``max_live`` live tokens per client, then ``403 token_limit_exceeded``),
``/api/v2/oauth2/token/delete.json`` and one authorised resource, ``/api/v2/user.json``.
Every answer carries the ``X-RateLimit-*`` headers, with the remaining counts tests set."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TOKEN_PATH = "/api/v2/oauth2/token.json"
DELETE_PATH = "/api/v2/oauth2/token/delete.json"
USER_PATH = "/api/v2/user.json"

Answer = tuple[int, dict[str, Any] | None]


@dataclass(slots=True)
class LiveToken:
    client_id: str
    refresh_token: str
    expires_at: float  # time.time()


class FakeVkApi:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clients: dict[str, str] = {}  # client_id → client_secret
        self.tokens: dict[str, LiveToken] = {}  # access token → its grant
        self.grants: list[dict[str, str]] = []  # every form posted to token.json, in order
        self.calls: list[tuple[str, str]] = []  # (path, Authorization) of API calls
        self.max_live = 5
        self.expires_in = 86400
        #: X-RateLimit-<period>-Limit / -Remaining sent with every answer
        self.limits: dict[str, tuple[int, int]] = {
            "RPS": (10, 9),
            "Hourly": (2000, 1999),
            "Daily": (20000, 19999),
        }

    # --- what tests set up and read ---

    def new_client(self) -> tuple[str, str]:
        client_id = f"vkc-{secrets.token_hex(6)}"
        secret = f"vks-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.clients[client_id] = secret
        return client_id, secret

    def live(self, client_id: str) -> list[str]:
        with self._lock:
            return [a for a, t in self.tokens.items() if t.client_id == client_id]

    def expire_all(self) -> None:
        """Every access token stops working (deleted on VK's side), refresh tokens stay."""
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = 0.0

    def grant_types(self) -> list[str]:
        with self._lock:
            return [g.get("grant_type", "") for g in self.grants]

    def rate_headers(self) -> dict[str, str]:
        with self._lock:
            headers = {}
            for period, (limit, remaining) in self.limits.items():
                headers[f"X-RateLimit-{period}-Limit"] = str(limit)
                headers[f"X-RateLimit-{period}-Remaining"] = str(remaining)
            return headers

    # --- the endpoints ---

    def token(self, form: Mapping[str, str]) -> Answer:
        with self._lock:
            self.grants.append(dict(form))
            client_id = form.get("client_id", "")
            if not client_id or self.clients.get(client_id) != form.get("client_secret"):
                return 401, {"error": "invalid_client", "error_description": "Unknown client."}
            grant_type = form.get("grant_type")
            if grant_type == "client_credentials":
                live = sum(1 for t in self.tokens.values() if t.client_id == client_id)
                if live >= self.max_live:
                    return 403, {
                        "error": "token_limit_exceeded",
                        "error_description": "Active access token limit reached. Delete "
                        "some tokens before requesting new ones.",
                    }
                return 200, self._issue(client_id, left=self.max_live - live - 1)
            if grant_type == "refresh_token":
                refresh = form.get("refresh_token", "")
                old = next((a for a, t in self.tokens.items() if t.refresh_token == refresh), None)
                if old is None or self.tokens[old].client_id != client_id:
                    return 400, {"error": "invalid_grant", "error_description": "Bad token."}
                del self.tokens[old]  # a refresh changes the key; it adds no token
                return 200, self._issue(client_id, left=None)
            return 400, {"error": "unsupported_grant_type"}

    def _issue(self, client_id: str, left: int | None) -> dict[str, Any]:
        access = secrets.token_urlsafe(30)
        refresh = secrets.token_urlsafe(30)
        self.tokens[access] = LiveToken(client_id, refresh, time.time() + self.expires_in)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "scope": "read_ads,create_ads",
            "expires_in": str(self.expires_in),
            "refresh_token": refresh,
        }
        if left is not None:
            answer["tokens_left"] = left
        return answer

    def delete(self, form: Mapping[str, str]) -> Answer:
        with self._lock:
            client_id = form.get("client_id", "")
            if self.clients.get(client_id) != form.get("client_secret"):
                return 401, {"error": "invalid_client"}
            for access in [a for a, t in self.tokens.items() if t.client_id == client_id]:
                del self.tokens[access]
            return 204, None

    def user(self, authorization: str) -> Answer:
        with self._lock:
            self.calls.append((USER_PATH, authorization))
            scheme, _, access = authorization.partition(" ")
            token = self.tokens.get(access) if scheme == "Bearer" else None
            if token is None or token.expires_at <= time.time():
                return 401, {"error": {"code": "invalid_token", "message": "Invalid token."}}
            return 200, {"id": 42, "username": "convsync-test", "types": ["ads"]}
