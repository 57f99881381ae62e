"""The fake BigQuery REST API and its OAuth token endpoint on 127.0.0.1 (random ports),
each in a thread: ``with fake_bigquery(tmp_path) as fake: …``."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from tests.google_ads_fake.oauth import JWT_AUDIENCE, JWT_BEARER, FakeTokenEndpoint
from tests.local_server import LocalServer, send

from .state import Answer, BigQueryState

BIGQUERY_SCOPE = "https://www.googleapis.com/auth/bigquery"


class BigQueryTokenEndpoint(FakeTokenEndpoint):
    """The Google Ads tests' token endpoint, granting the BigQuery scope instead.

    ``secrets`` grows with every key made (a line of its private key) and every access
    token issued: what a test must never find in logs, records or cursors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[str] = []
        self.secrets: list[str] = []

    def service_account_key(self, directory: Path, email: str = "convsync") -> Path:
        path = super().service_account_key(directory, email)
        self.secrets.append(json.loads(path.read_text())["private_key"].splitlines()[5])
        return path

    def _grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            self.grants.append(dict(form))
            certs = {k: v.decode() for k, v in self.service_accounts.items()}
        try:
            claims = jwt.decode(form.get("assertion", ""), certs=certs, audience=JWT_AUDIENCE)
        except (auth_exceptions.GoogleAuthError, ValueError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if BIGQUERY_SCOPE not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope", "error_description": "No BigQuery scope."}
        token = f"ya29.fake-bq-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.access_tokens[token] = frozenset({BIGQUERY_SCOPE})
            self.issued.append(token)
            self.secrets.append(token)
        return 200, {"access_token": token, "expires_in": self.expires_in,
                     "token_type": "Bearer"}  # fmt: skip


class FakeBigQuery(LocalServer):
    def __init__(self, keys_dir: Path) -> None:
        self.oauth = BigQueryTokenEndpoint()
        self.state = BigQueryState(token_valid=self.oauth.is_valid)
        super().__init__(self._handler_class(), "fake-bigquery")
        self.key_file = self.oauth.service_account_key(keys_dir)

    def start(self) -> None:
        self.oauth.start()
        super().start()

    def stop(self) -> None:
        super().stop()
        self.oauth.stop()

    def source_config(self, **extra: Any) -> dict[str, Any]:
        """A ``ga4_bigquery`` source config (as validated data) for this fake."""
        return {
            "type": "ga4_bigquery",
            "project": self.state.project,
            "dataset": f"{self.state.project}.{self.state.dataset}",
            "events": ["purchase", "generate_lead"],
            "credentials_file": str(self.key_file),
            "api_endpoint": self.base_url,
            **extra,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._serve(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    self._reply((400, {"error": {"code": 400, "message": "Invalid JSON"}}))
                    return
                self._serve(body)

            def _serve(self, body: Any) -> None:
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query))
                headers = dict(self.headers.items())
                self._reply(state.answer(self.command, url.path, query, headers, body))

            def _reply(self, answer: Answer) -> None:
                send(self, *answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet; ``state.seen`` keeps every request

        return Handler


@contextmanager
def fake_bigquery(keys_dir: Path) -> Iterator[FakeBigQuery]:
    with FakeBigQuery(keys_dir) as fake:
        yield fake
