"""A fake Google OAuth 2.0 server (``auth_uri`` and ``token_uri``) on 127.0.0.1, over
plain HTTP.

``POST /token`` answers the grants convsync uses, as ``https://oauth2.googleapis.com/token``
does: ``refresh_token`` (OAuth client + refresh token), the JWT bearer grant of a service
account (the assertion's signature and audience are checked) and ``authorization_code``
(the installed-app flow of ``convsync auth google``: client secret in the body or as HTTP
Basic auth, a single-use code bound to its redirect URI, PKCE checked). A revoked refresh
token gets ``400 {"error": "invalid_grant"}``. Access tokens it issues are what the gRPC
fake accepts in ``authorization: Bearer …``.

``GET /auth`` is the consent screen, already answered: for a known client and a loopback
``http://`` redirect URI it redirects (302) back with a one-time code, or with
``error=access_denied`` when a test set ``deny_next_consent``. oauthlib refuses these
``http://`` URLs unless ``OAUTHLIB_INSECURE_TRANSPORT=1`` is in the environment (tests only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

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
AUTHORIZATION_CODE = "authorization_code"


@dataclass(frozen=True, slots=True)
class _Code:
    """An authorization code the consent screen issued, until the token endpoint takes it."""

    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    code_challenge: str | None
    offline: bool


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
        #: scopes consented for each refresh token issued by the authorization_code grant
        #: (refresh tokens made by ``oauth_client`` grant every scope in ``SCOPES``)
        self.consented: dict[str, frozenset[str]] = {}
        self.codes: dict[str, _Code] = {}  # authorization code → what it was issued for
        self.consents: list[dict[str, str]] = []  # every GET /auth query, in order
        #: the next consent screen is refused by the user (``error=access_denied``)
        self.deny_next_consent = False
        #: the user unticks these scopes on the next consent screen (granular consent)
        self.withhold_next_consent: frozenset[str] = frozenset()
        #: the next authorization_code grant answers without a refresh token, as Google
        #: does when the user had consented before and the app did not ask prompt=consent
        self.omit_next_refresh_token = False
        super().__init__(self._handler_class(), "fake-oauth")
        self.token_uri = self.base_url + "/token"
        self.auth_uri = self.base_url + "/auth"

    # --- what tests set up ---

    def new_client(self) -> tuple[str, str]:
        """A new registered OAuth client: (client id, client secret)."""
        client_id = f"{secrets.randbelow(10**12)}-fake.apps.googleusercontent.com"
        client_secret = f"GOCSPX-{secrets.token_urlsafe(21)}"
        with self._lock:
            self.clients[client_id] = client_secret
        return client_id, client_secret

    def oauth_client(self) -> dict[str, str]:
        """A new OAuth client and refresh token, as ``auth`` of a google_ads destination."""
        client_id, client_secret = self.new_client()
        refresh_token = f"1//0{secrets.token_urlsafe(60)}"
        with self._lock:
            self.refresh_tokens[refresh_token] = client_id
        return {
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "token_uri": self.token_uri,
        }

    def client_secrets_file(
        self,
        directory: Path,
        kind: str = "installed",
        redirect_uris: tuple[str, ...] = ("http://localhost",),
    ) -> Path:
        """A new registered OAuth client as the JSON file Google Cloud offers for download
        (``kind``: ``installed`` for a Desktop app, or ``web`` with its authorized
        ``redirect_uris``), its ``auth_uri`` and ``token_uri`` this fake's."""
        client_id, client_secret = self.new_client()
        client = {
            "client_id": client_id,
            "project_id": "convsync-test",
            "auth_uri": self.auth_uri,
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_secret": client_secret,
            "redirect_uris": list(redirect_uris),
        }
        path = directory / f"client_secret_{client_id}.json"
        path.write_text(json.dumps({kind: client}), encoding="utf-8")
        return path

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

    def _consent(self, query: Mapping[str, str]) -> tuple[int, str]:
        """``GET /auth``: (302, the redirect back with a code or an error) or (400, why)."""
        with self._lock:
            self.consents.append(dict(query))
            redirect_uri = query.get("redirect_uri", "")
            where = urlsplit(redirect_uri)
            if query.get("client_id", "") not in self.clients:
                return 400, "Error 401: invalid_client. The OAuth client was not found."
            if where.scheme != "http" or where.hostname not in ("127.0.0.1", "localhost"):
                return 400, "Error 400: redirect_uri_mismatch (not a loopback http URI)."
            if query.get("response_type") != "code":
                return 400, "Error 400: unsupported_response_type."
            asked = frozenset(query.get("scope", "").split())
            if not asked or not asked <= SCOPES:
                return 400, f"Error 400: invalid_scope {sorted(asked - SCOPES)}."
            answer = {"state": query["state"]} if "state" in query else {}
            if self.deny_next_consent:
                self.deny_next_consent = False
                answer = {"error": "access_denied", **answer}
            else:
                granted = asked - self.withhold_next_consent
                self.withhold_next_consent = frozenset()
                code = f"4/0{secrets.token_urlsafe(40)}"
                self.codes[code] = _Code(
                    client_id=query["client_id"],
                    redirect_uri=redirect_uri,
                    scopes=granted,
                    code_challenge=query.get("code_challenge"),
                    offline=query.get("access_type") == "offline",
                )
                answer = {"code": code, **answer, "scope": " ".join(sorted(granted))}
        return 302, redirect_uri + ("&" if where.query else "?") + urlencode(answer)

    def _code_grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The authorization_code grant; the caller holds the lock."""
        client_id = form.get("client_id", "")
        if client_id not in self.clients or self.clients[client_id] != form.get("client_secret"):
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        code = self.codes.pop(form.get("code", ""), None)  # single use, even when refused
        if code is None or code.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
        if code.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
        if code.code_challenge is not None:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != code.code_challenge:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Invalid code verifier.",
                }
        access_token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self.access_tokens[access_token] = code.scopes
        answer: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": self.expires_in,
            "scope": " ".join(sorted(code.scopes)),
            "token_type": "Bearer",
        }
        if code.offline and not self.omit_next_refresh_token:
            refresh_token = f"1//0{secrets.token_urlsafe(60)}"
            self.refresh_tokens[refresh_token] = client_id
            self.consented[refresh_token] = code.scopes
            answer["refresh_token"] = refresh_token
        self.omit_next_refresh_token = False
        return 200, answer

    def _grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.grants.append(dict(form))
            grant_type = form.get("grant_type")
            consent: frozenset[str] = SCOPES
            if grant_type == AUTHORIZATION_CODE:
                return self._code_grant(form)
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
                consent = self.consented.get(token, SCOPES)
                if token in self.consented and not set(form.get("scope", "").split()) <= consent:
                    return 400, {
                        "error": "invalid_scope",
                        "error_description": "Some requested scopes were not granted.",
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
                # a refresh without a scope gets the scopes of the consent (both for the
                # tokens of ``oauth_client``)
                asked = set(form.get("scope", "").split()) or set(consent)
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
            def do_GET(self) -> None:
                where = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(where.query).items()}
                status, text = (
                    endpoint._consent(query) if where.path == "/auth" else (404, "Not Found")
                )
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", text)
                    text = "Moved"
                data = text.encode()
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
                if scheme.lower() == "basic":  # client_secret_basic, as requests-oauthlib sends
                    pair = base64.b64decode(credentials).decode()
                    client_id, _, client_secret = pair.partition(":")
                    form.setdefault("client_id", unquote(client_id))
                    form.setdefault("client_secret", unquote(client_secret))
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
