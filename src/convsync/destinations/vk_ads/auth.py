"""VK Ads API access tokens (client credentials), kept between runs and refreshed.

VK limits the live tokens of a client (about five per client and user; over the limit
``token_limit_exceeded``) and calls minting a new token instead of refreshing "incorrect
API usage" that may lead to a ban. So one token per (destination, client_id) is kept in
the ledger (``Destination.tokens``), refreshed with its refresh token shortly before it
expires (a refresh changes the key, it does not add a token), and a new one is requested
only when there is none or its refresh token no longer works (VK deletes tokens unused
for a month). Runs never overlap (the sync lease), so two refreshes never race.

Nothing here runs until something needs the API; no message holds a credential.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import structlog

from convsync.core import network
from convsync.core.errors import DestinationUnavailable
from convsync.core.http import error_body, excerpt
from convsync.core.logging import REDACTED, register_secret
from convsync.core.tokens import TokenStore
from convsync.destinations.vk_ads.config import VkAdsConfig

log = structlog.get_logger("convsync.destinations.vk_ads")

TOKEN_PATH = "/api/v2/oauth2/token.json"  # noqa: S105 - an endpoint path, not a password
DELETE_PATH = "/api/v2/oauth2/token/delete.json"
#: refresh this long before the token expires (VK's tokens live 24 hours)
REFRESH_MARGIN = timedelta(minutes=10)
_DEFAULT_LIFETIME = 86400
_EXPIRED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ApiToken:
    access_token: str
    refresh_token: str | None
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiToken | None:
        """The stored token, or None if what is stored is not one (then a new one is got)."""
        try:
            expires_at = datetime.fromisoformat(str(data["expires_at"]))
            access = str(data["access_token"])
        except (KeyError, ValueError):
            return None
        if expires_at.tzinfo is None or not access:
            return None
        refresh = data.get("refresh_token")
        return cls(access, str(refresh) if refresh else None, expires_at)


class VkAdsAuth:
    """The access token of one destination's API client: cached, refreshed, kept."""

    def __init__(
        self,
        destination: str,
        config: VkAdsConfig,
        session: requests.Session,
        store: TokenStore,
        clock: Callable[[], datetime],
    ) -> None:
        if config.client_id is None or config.client_secret is None:
            raise ValueError("VkAdsAuth needs client_id and client_secret")
        self.destination = destination
        self.client_id = config.client_id
        self._secret = config.client_secret.get_secret_value()
        register_secret(self._secret)
        self.token_url = config.api_base_url + TOKEN_PATH
        self.delete_url = config.api_base_url + DELETE_PATH
        self.session = session
        self.store = store
        self.clock = clock
        #: token-endpoint responses, for the API's rate-limit reading
        self.on_response: Callable[[requests.Response], None] = lambda response: None
        self.key = f"vk_ads:{destination}:{self.client_id}"
        self._token: ApiToken | None = None
        self._lock = threading.Lock()

    def access_token(self) -> str:
        """A token valid for a while yet: the kept one, refreshed, or (only if there is
        none usable) a new one. Raises ``DestinationUnavailable``."""
        with self._lock:
            now = self.clock()
            token = self._token or self._load()
            if token is None or token.expires_at - REFRESH_MARGIN <= now:
                token = self._renew(token, now)
                self.store.save(self.key, token.as_dict())
            self._token = token
            return token.access_token

    def invalidate(self, access_token: str) -> None:
        """The API refused ``access_token`` (deleted early): renew it on the next call."""
        with self._lock:
            if self._token is not None and self._token.access_token == access_token:
                self._token = replace(self._token, expires_at=_EXPIRED)

    def _load(self) -> ApiToken | None:
        data = self.store.load(self.key)
        token = ApiToken.from_dict(data) if data else None
        if token is not None:
            register_secret(token.access_token)
            if token.refresh_token:
                register_secret(token.refresh_token)
        return token

    def _renew(self, token: ApiToken | None, now: datetime) -> ApiToken:
        if token is not None and token.refresh_token:
            refreshed = self._grant(
                {"grant_type": "refresh_token", "refresh_token": token.refresh_token}, now
            )
            if refreshed is not None:
                # a refresh may leave out the refresh token: the old one stays valid
                return (
                    refreshed
                    if refreshed.refresh_token
                    else replace(refreshed, refresh_token=token.refresh_token)
                )
            log.info(
                "VK Ads refresh token no longer valid; requesting a new access token",
                destination=self.destination,
            )
        minted = self._grant({"grant_type": "client_credentials"}, now)
        assert minted is not None  # only a refresh grant answers None
        return minted

    def _grant(self, form: dict[str, str], now: datetime) -> ApiToken | None:
        """POST to token.json; None: the refresh token was refused (get a new token)."""
        body = {**form, "client_id": self.client_id, "client_secret": self._secret}
        try:
            response = self.session.post(self.token_url, data=body)
        except requests.RequestException as exc:
            address = network.Address(
                "VK Ads token endpoint",
                self.token_url,
                f"destinations.{self.destination}.api_base_url",
                getattr(self.session, "timeout", None),
            )
            raise DestinationUnavailable(
                "auth_unreachable", network.describe(exc, address)
            ) from None
        with response:
            self.on_response(response)
            data = error_body(response)
            status = response.status_code
            if 200 <= status < 300 and data.get("access_token"):
                return self._token_of(
                    data, now, refreshing=form["grant_type"] != "client_credentials"
                )
            error = str(data.get("error") or "")
            said = self._scrub(
                f"{status} {error}: {data.get('error_description') or excerpt(response)}"
            )
        if error == "token_limit_exceeded":
            raise DestinationUnavailable("token_limit_exceeded", self._limit_message(said))
        refreshing = form["grant_type"] == "refresh_token"
        if refreshing and error != "invalid_client" and status in (400, 401, 403):
            return None
        if status == 429 or status >= 500:
            raise DestinationUnavailable(
                "auth_unavailable",
                f"The VK Ads token endpoint failed for destinations.{self.destination} "
                f"({said}); deliveries stay pending until the next run.",
            )
        raise DestinationUnavailable(
            "auth_failed",
            f"VK Ads refused the API client of destinations.{self.destination} ({said}); "
            "check client_id and client_secret: both come from the VK Ads cabinet's API "
            "access settings of the account.",
        )

    def _token_of(self, data: Mapping[str, Any], now: datetime, *, refreshing: bool) -> ApiToken:
        access = str(data["access_token"])
        refresh = str(data["refresh_token"]) if data.get("refresh_token") else None
        for secret in (access, refresh):
            if secret:
                register_secret(secret)
        try:
            lifetime = int(str(data.get("expires_in", _DEFAULT_LIFETIME)))
        except ValueError:
            lifetime = _DEFAULT_LIFETIME
        left = data.get("tokens_left")
        log.info(
            "VK Ads API token refreshed" if refreshing else "VK Ads API token issued",
            destination=self.destination,
            expires_in=lifetime,
            **({"tokens_left": left} if left is not None else {}),
        )
        return ApiToken(access, refresh, now + timedelta(seconds=lifetime))

    def _limit_message(self, said: str) -> str:
        return (
            f"VK Ads refused a new API token for client_id {self.client_id} of "
            f"destinations.{self.destination}: the client already has as many live tokens "
            f"as VK allows ({said}). convsync keeps one token in its ledger and refreshes "
            "it, so the others were made elsewhere (another tool, a script, or an earlier "
            "ledger). Delete the client's tokens, then the next run gets a new one: in the "
            "VK Ads cabinet, in the API access settings where the client is, or with "
            f"`curl -X POST {self.delete_url} -d client_id={self.client_id} -d "
            "client_secret=<the secret>` (add -d username=<login> for an agency client); "
            "this deletes every token of that client, so tools using them must get new "
            "ones. Deliveries stay pending."
        )

    def _scrub(self, text: str) -> str:
        return _scrub(text, [self._secret, *_token_texts(self._token)])


def _token_texts(token: ApiToken | None) -> Iterable[str]:
    if token is None:
        return []
    return [t for t in (token.access_token, token.refresh_token) if t]


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text
