"""amoCRM credentials: a long-lived token, or OAuth with rotating refresh tokens.

An OAuth refresh token is good for **one** refresh: each refresh answers a new access
token and a new refresh token, and the old one is dead. So the new pair is saved in the
token store (the ledger) *before* the access token is used, under
``amocrm:<source>:<client_id>``, and a run prefers the stored pair over the config's.
The config's refresh token is only the first one — unless the user puts a different
one there (a new authorization): the stored pair remembers a fingerprint of the config
token it descends from, and a changed config token wins.

Before a refresh, the pair in hand is written back to the store: a store that keeps
nothing (a dry run) refuses there, before a refresh token is spent that it could not
keep. Nothing here runs until the first request; no message holds a credential.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from convsync.core.errors import TransientError, UserError
from convsync.core.http import excerpt
from convsync.core.logging import register_secret
from convsync.core.tokens import TokenStore
from convsync.sources.amocrm.config import AmoOAuth, AmoTokenAuth

TOKEN_PATH = "/oauth2/access_token"  # noqa: S105 - an endpoint path, not a password
#: an access token this close to its end is refreshed before use
EXPIRY_MARGIN = 300.0

PostForm = Callable[[str, Mapping[str, Any]], requests.Response]


class AmoCredentials:
    """What the client asks of credentials."""

    def bind(self, post: PostForm) -> None:
        """Give the credentials the client's way to reach the token endpoint."""

    def access_token(self) -> str:
        raise NotImplementedError

    def renew(self) -> bool:
        """After a 401: get a new access token if possible (True), else False."""
        return False

    def refused_message(self) -> str:
        raise NotImplementedError


class LongLivedToken(AmoCredentials):
    def __init__(self, config: AmoTokenAuth) -> None:
        self.token = config.token.get_secret_value()
        register_secret(self.token)

    def access_token(self) -> str:
        return self.token

    def refused_message(self) -> str:
        return (
            "amoCRM refused the long-lived token (HTTP 401): it expired or was revoked; "
            "create a new one (Settings → Integrations → your private integration → "
            "Keys and scopes) and put it in auth.token"
        )


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class OAuthTokens(AmoCredentials):
    """Access token of an external integration, refreshed with single-use refresh tokens."""

    def __init__(
        self,
        source: str,
        config: AmoOAuth,
        store: TokenStore | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.config = config
        self.store = store
        self.clock = clock
        self.name = f"amocrm:{source}:{config.client_id}"
        self.origin = _fingerprint(config.refresh_token.get_secret_value())
        register_secret(config.client_secret)
        register_secret(config.refresh_token)
        self._post: PostForm | None = None
        self._pair: dict[str, Any] | None = None  # access_token, refresh_token, expires_at

    def bind(self, post: PostForm) -> None:
        self._post = post

    def access_token(self) -> str:
        if self._pair is None:
            self._pair = self._stored()
        if self._pair is None or float(self._pair.get("expires_at") or 0) - EXPIRY_MARGIN < (
            self.clock()
        ):
            self._refresh()
        assert self._pair is not None  # _refresh sets it or raises
        return str(self._pair["access_token"])

    def renew(self) -> bool:
        self._refresh()
        return True

    def refused_message(self) -> str:
        return (
            "amoCRM refused the access token just refreshed (HTTP 401): the integration "
            "may have been disconnected from the account; connect it again and put the "
            "new refresh token in auth.refresh_token"
        )

    def _stored(self) -> dict[str, Any] | None:
        if self.store is None:
            return None
        data = self.store.load(self.name)
        if not data or data.get("origin") != self.origin or not data.get("refresh_token"):
            return None  # none yet, or the user authorized anew: the config's token wins
        for key in ("access_token", "refresh_token"):
            if data.get(key):
                register_secret(str(data[key]))
        return dict(data)

    def _refresh(self) -> None:
        prefix = f"sources.{self.source}.auth"
        if self.store is None:
            raise UserError(
                f"{prefix}: an OAuth source needs the ledger to keep its rotating refresh "
                "token; it cannot refresh here (run `convsync sync --once` instead)"
            )
        if self._post is None:
            raise RuntimeError("OAuthTokens used before bind()")
        pair = self._pair or {
            "refresh_token": self.config.refresh_token.get_secret_value(),
            "origin": self.origin,
        }
        # a store that cannot keep the next token refuses here, before this one is spent
        self.store.save(self.name, pair)
        stored = self._pair is not None
        response = self._post(
            TOKEN_PATH,
            {
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret.get_secret_value(),
                "grant_type": "refresh_token",
                "refresh_token": pair["refresh_token"],
                "redirect_uri": self.config.redirect_uri,
            },
        )
        status = response.status_code
        if status in (429, 500, 502, 503, 504):
            raise TransientError(f"token refresh: HTTP {status}")
        if status != 200:
            which = "stored" if stored else "configured"
            raise UserError(
                f"{prefix}.refresh_token: amoCRM refused the {which} refresh token "
                f"(HTTP {status}: {excerpt(response)}): it was used already, expired "
                "(3 months unused) or the integration was disconnected. Connect the "
                "integration again and put the new refresh token in auth.refresh_token"
            )
        try:
            data = response.json()
            access, refresh = str(data["access_token"]), str(data["refresh_token"])
            lifetime = float(data.get("expires_in") or 86400)
        except (ValueError, KeyError, TypeError):
            raise TransientError("token refresh: the answer has no token pair") from None
        register_secret(access)
        register_secret(refresh)
        new_pair = {
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": self.clock() + lifetime,
            "origin": self.origin,
        }
        self.store.save(self.name, new_pair)  # kept before it is used
        self._pair = new_pair


def credentials_for(
    source: str, auth: AmoTokenAuth | AmoOAuth, store: TokenStore | None
) -> AmoCredentials:
    if isinstance(auth, AmoTokenAuth):
        return LongLivedToken(auth)
    return OAuthTokens(source, auth, store)
