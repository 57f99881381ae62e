"""Credentials for one Google destination and one run, and the official
``GoogleAdsClient`` of the Google Ads API (the Data Manager API's client is made in
``datamanager/transport.py`` from the same credentials).

The client is built directly (never ``GoogleAdsClient.load_from_*``, which refresh the
credentials while loading), and the credentials are refreshed once in ``connect``, so that
a revoked refresh token or a broken key file stops the destination with one clear message
before a row is claimed. Nothing here runs at import time; no message ever holds a
credential (Google's own error texts are scrubbed of them too).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import google.auth
import google.auth.transport.requests
import google.oauth2.credentials
import google.oauth2.service_account
import requests
from google.auth import exceptions as auth_exceptions
from pydantic import SecretStr

from convsync.core import network
from convsync.core.errors import DestinationUnavailable
from convsync.core.logging import REDACTED, register_secret
from convsync.destinations.google_ads.config import (
    API_SCOPES,
    DEFAULT_ENDPOINTS,
    ApplicationDefaultAuth,
    GoogleAdsConfig,
    OAuthRefreshTokenAuth,
    ServiceAccountAuth,
)

if TYPE_CHECKING:
    from google.auth.credentials import Credentials


_SHOWN_MAX = 300
#: grpc's text when the credentials could not renew the access token for a call
AUTH_PLUGIN_FAILED = "Getting metadata from plugin failed"
#: seconds a token refresh waits for Google's answer (google-auth's own default)
TOKEN_TIMEOUT = 120.0
#: where Google's OAuth 2.0 token endpoint is when the credentials do not say
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a public URL


def load_credentials(name: str, config: GoogleAdsConfig) -> Credentials:
    """The credentials of ``config.auth``, not refreshed yet (no network but for ADC)."""
    auth = config.auth
    scopes = [API_SCOPES[config.api]]
    for secret in (config.developer_token, getattr(auth, "client_secret", None)):
        if secret is not None:
            register_secret(secret)
    if isinstance(auth, OAuthRefreshTokenAuth):
        register_secret(auth.refresh_token)
        return google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]  # google-auth leaves __init__ unannotated
            token=None,
            refresh_token=auth.refresh_token.get_secret_value(),
            client_id=auth.client_id,
            client_secret=auth.client_secret.get_secret_value(),
            token_uri=auth.token_uri,
            scopes=scopes,
        )
    if isinstance(auth, ServiceAccountAuth):
        return _service_account(name, auth, scopes)
    assert isinstance(auth, ApplicationDefaultAuth)
    try:
        credentials, _project = google.auth.default(scopes=scopes)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise DestinationUnavailable(
            "auth_not_found",
            f"destinations.{name}.auth uses Application Default Credentials, but none were "
            f"found ({_shown(exc)}); set GOOGLE_APPLICATION_CREDENTIALS to a key file or run "
            "`gcloud auth application-default login`.",
        ) from None
    return credentials


def _service_account(name: str, auth: ServiceAccountAuth, scopes: list[str]) -> Credentials:
    path = auth.key_file
    load = google.oauth2.service_account.Credentials.from_service_account_file
    try:
        credentials: Credentials = load(  # type: ignore[no-untyped-call]  # google-auth leaves this classmethod unannotated
            path, scopes=scopes, subject=auth.impersonated_email
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        problem = f"cannot be read ({reason})"
    except json.JSONDecodeError:
        problem = "is not JSON"
    except (ValueError, auth_exceptions.GoogleAuthError) as exc:
        # The text of these names missing fields or an undecodable key, never key material.
        problem = f"is not a usable service account key ({_shown(exc)})"
    else:
        return credentials
    raise DestinationUnavailable(
        "auth_key_file",
        f"The service account key file {path!r} of destinations.{name}.auth {problem}; "
        "download a JSON key of the service account from Google Cloud (IAM → Service "
        "accounts → Keys) and point key_file at it.",
    )


def connected(
    name: str, config: GoogleAdsConfig, *, timeout: float = TOKEN_TIMEOUT
) -> tuple[Credentials, list[str]]:
    """The destination's credentials with a fresh access token, and every secret they
    hold (the access token too), to scrub from any message; ``DestinationUnavailable``
    for bad credentials or a token endpoint out of reach (``timeout`` seconds)."""
    credentials = load_credentials(name, config)
    refresh(name, config, credentials, timeout=timeout)
    secrets = secrets_of(config)
    token = getattr(credentials, "token", None)
    if isinstance(token, str) and token:
        secrets.append(token)
    return credentials, secrets


def refresh(
    name: str, config: GoogleAdsConfig, credentials: Credentials, *, timeout: float = TOKEN_TIMEOUT
) -> None:
    """Get an access token now, so that bad credentials stop the destination up front."""
    secrets = secrets_of(config)
    with requests.Session() as session:
        # google-auth calls its transport without a timeout of its own: give it ours
        transport = google.auth.transport.requests.Request(session)
        try:
            credentials.refresh(functools.partial(transport, timeout=timeout))  # type: ignore[no-untyped-call]  # google-auth leaves refresh unannotated
        except auth_exceptions.RefreshError as exc:
            if exc.retryable:
                raise DestinationUnavailable(
                    "auth_unavailable",
                    f"Google's token endpoint failed for destinations.{name} "
                    f"({_shown(exc, secrets)}); deliveries stay pending until the next run.",
                ) from None
            raise DestinationUnavailable(
                "auth_failed",
                f"Google refused the credentials of destinations.{name}.auth "
                f"({_shown(exc, secrets)}); {_what_to_do(config, exc)}",
            ) from None
        except auth_exceptions.TransportError as exc:
            address = token_address(name, config, credentials, timeout)
            raise DestinationUnavailable(
                "auth_unreachable", network.describe(exc, address)
            ) from None
    token = getattr(credentials, "token", None)
    if isinstance(token, str):
        register_secret(token)


def token_address(
    name: str,
    config: GoogleAdsConfig,
    credentials: Credentials | None = None,
    timeout: float | None = None,
) -> network.Address:
    """Google's token endpoint of the destination, as messages name it: the config key
    that sets it (the OAuth client's token_uri, else the key file or ADC it comes from)."""
    auth = config.auth
    uri = getattr(credentials, "_token_uri", None) or DEFAULT_TOKEN_URI
    if isinstance(auth, OAuthRefreshTokenAuth):
        uri, key = auth.token_uri, f"destinations.{name}.auth.token_uri"
    elif isinstance(auth, ServiceAccountAuth):
        key = f"destinations.{name}.auth.key_file"
    else:
        key = f"destinations.{name}.auth"
    return network.Address("Google OAuth", str(uri), key, timeout)


def api_address(name: str, config: GoogleAdsConfig, timeout: float | None) -> network.Address:
    """The API endpoint of the destination (``endpoint``), as messages name it."""
    service = "Data Manager API" if config.api == "data_manager" else "Google Ads API"
    endpoint = config.endpoint or DEFAULT_ENDPOINTS[config.api]
    return network.Address(service, endpoint, f"destinations.{name}.endpoint", timeout)


@dataclasses.dataclass(frozen=True, slots=True)
class Addresses:
    """Where a Google destination connects: its API endpoint and its token endpoint —
    for the words of a gRPC call that failed in the network."""

    api: network.Address
    token: network.Address

    @classmethod
    def of(cls, name: str, config: GoogleAdsConfig, timeout: float | None) -> Addresses:
        return cls(api_address(name, config, timeout), token_address(name, config))

    def describe(self, status: str, details: str) -> str | None:
        """One line for a call that failed in the network (None: it did not): the API
        endpoint's trouble, or the token endpoint's when gRPC could not renew the access
        token for the call (``Getting metadata from plugin failed…``)."""
        if AUTH_PLUGIN_FAILED in details:
            return network.describe_text(details, self.token)
        return network.describe_grpc(status, details, self.api)


def _what_to_do(config: GoogleAdsConfig, exc: auth_exceptions.RefreshError) -> str:
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    error = data.get("error")
    auth = config.auth
    if isinstance(auth, OAuthRefreshTokenAuth):
        if error == "invalid_client":
            return "client_id or client_secret is wrong: copy both from the OAuth client."
        return (
            "the refresh token was revoked or has expired (or belongs to another OAuth "
            "client): issue a new one for this client_id and update the secret."
        )
    if isinstance(auth, ServiceAccountAuth):
        return (
            "check that the key is not deleted or disabled in Google Cloud and, with "
            f"impersonated_email, that domain-wide delegation grants the {API_SCOPES[config.api]} "
            "scope."
        )
    return "run `gcloud auth application-default login` again or fix the credentials file."


def build_client(config: GoogleAdsConfig, credentials: Credentials) -> Any:
    """A ``GoogleAdsClient`` for the config (no network until a service is called)."""
    # Imported here: the google-ads client module is heavy and unannotated, and the Data
    # Manager API's destination shares this module without it.
    from google.ads.googleads.client import GoogleAdsClient  # type: ignore[import-untyped]  # no py.typed at the package root

    from convsync.destinations.google_ads.api import API_VERSION

    developer_token = config.developer_token
    return GoogleAdsClient(
        credentials=credentials,
        developer_token=developer_token.get_secret_value() if developer_token else None,
        endpoint=config.endpoint,
        login_customer_id=config.login_customer_id,
        use_proto_plus=True,
        version=API_VERSION,
    )


def secrets_of(config: GoogleAdsConfig) -> list[str]:
    """The configured credentials as text, to scrub them from any message."""
    values: list[SecretStr | None] = [
        config.developer_token,
        getattr(config.auth, "client_secret", None),
        getattr(config.auth, "refresh_token", None),
    ]
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _shown(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """An exception's first argument, short, without any of the secrets."""
    text = scrub(str(exc.args[0]) if exc.args else type(exc).__name__, secrets)
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 1] + "…"
    return text
