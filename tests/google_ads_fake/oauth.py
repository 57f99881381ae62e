"""A fake Google OAuth 2.0 token endpoint (``token_uri``) on 127.0.0.1, over plain HTTP.

It answers the two grants convsync uses, as ``https://oauth2.googleapis.com/token`` does:
``refresh_token`` (OAuth client + refresh token) and the JWT bearer grant of a service
account (the assertion's signature and audience are checked). A revoked refresh token gets
``400 {"error": "invalid_grant"}``. Access tokens it issues are what the gRPC fake accepts
in ``authorization: Bearer …``.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from tests.local_server import LocalServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: the audience google-auth signs service account assertions for, whatever token_uri is
JWT_AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/adwords"
DATAMANAGER_SCOPE = "https://www.googleapis.com/auth/datamanager"
#: the scopes this endpoint grants: the Google Ads API's and the Data Manager API's
SCOPES = frozenset({SCOPE, DATAMANAGER_SCOPE})


class FakeTokenEndpoint(LocalServer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clients: dict[str, str] = {}  # client_id → client_secret
        self.refresh_tokens: dict[str, str] = {}  # refresh token → client_id
        self.revoked: set[str] = set()
        self.service_accounts: dict[str, bytes] = {}  # key id → public key PEM
        #: valid access tokens, as issued, with the scopes each grants
        self.access_tokens: dict[str, frozenset[str]] = {}
        self.grants: list[dict[str, str]] = []  # every form posted, in order
        #: lifetime of issued access tokens; under ~4 minutes google-auth refreshes the
        #: token again before each call
        self.expires_in = 3599
        super().__init__(self._handler_class(), "fake-oauth")
        self.token_uri = self.base_url + "/token"

    # --- what tests set up ---

    def oauth_client(self) -> dict[str, str]:
        """A new OAuth client and refresh token, as ``auth`` of a google_ads destination."""
        client_id = f"{secrets.randbelow(10**12)}-fake.apps.googleusercontent.com"
        client_secret = f"GOCSPX-{secrets.token_urlsafe(21)}"
        refresh_token = f"1//0{secrets.token_urlsafe(60)}"
        with self._lock:
            self.clients[client_id] = client_secret
            self.refresh_tokens[refresh_token] = client_id
        return {
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "token_uri": self.token_uri,
        }

    def service_account_key(self, directory: Path, email: str = "convsync") -> Path:
        """A new service account's JSON key file in ``directory`` (token_uri: this fake)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with self._lock:
            self.service_accounts[key_id] = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        path = directory / f"{email}-{key_id[:8]}.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "convsync-test",
                    "private_key_id": key_id,
                    "private_key": pem,
                    "client_email": f"{email}@convsync-test.iam.gserviceaccount.com",
                    "client_id": str(secrets.randbelow(10**20)),
                    "token_uri": self.token_uri,
                }
            ),
            encoding="utf-8",
        )
        return path

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self.revoked.add(refresh_token)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (as after an hour)."""
        with self._lock:
            self.access_tokens.clear()

    def is_valid(self, access_token: str, scope: str | None = None) -> bool:
        """The token was issued by this endpoint, has not expired, and grants ``scope``
        (any scope when None)."""
        with self._lock:
            granted = self.access_tokens.get(access_token)
        return granted is not None and (scope is None or scope in granted)

    # --- the endpoint ---

    def _grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.grants.append(dict(form))
            grant_type = form.get("grant_type")
            if grant_type == "refresh_token":
                client_id = form.get("client_id", "")
                if self.clients.get(client_id) != form.get("client_secret"):
                    return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
                token = form.get("refresh_token", "")
                if self.refresh_tokens.get(token) != client_id or token in self.revoked:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    }
            elif grant_type == JWT_BEARER:
                try:
                    claims = jwt.decode(
                        form.get("assertion", ""),
                        certs={k: v.decode() for k, v in self.service_accounts.items()},
                        audience=JWT_AUDIENCE,
                    )
                except (auth_exceptions.GoogleAuthError, ValueError):
                    return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
                asked = set(str(claims.get("scope", "")).split())
                if not asked & SCOPES:
                    return 400, {"error": "invalid_scope", "error_description": "No scope."}
                granted = " ".join(sorted(asked & SCOPES))
            else:
                return 400, {"error": "unsupported_grant_type"}
            if grant_type == "refresh_token":
                # a refresh without a scope gets the scopes of the consent: both, here
                asked = set(form.get("scope", "").split()) or set(SCOPES)
                granted = " ".join(sorted(asked & SCOPES))
            access_token = f"ya29.fake-{secrets.token_urlsafe(24)}"
            self.access_tokens[access_token] = frozenset(granted.split())
        return 200, {
            "access_token": access_token,
            "expires_in": self.expires_in,
            "scope": granted,
            "token_type": "Bearer",
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                status, answer = (
                    endpoint._grant(form) if self.path == "/token" else (404, {"error": "nf"})
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest would show every request

        return Handler
