"""``convsync auth google``: Google's installed-app OAuth flow on a loopback port, for the
refresh token of a google_ads destination's ``auth: {client_id, client_secret,
refresh_token}``.

The flow is google-auth-oauthlib's ``InstalledAppFlow.run_local_server`` (PKCE, state,
the one-request redirect server); only announcing the URL, opening the browser and the
errors are ours. The refresh token goes to stdout and nowhere else; it and the client
secret are registered with the log redaction, and the libraries that log them at DEBUG
are kept quiet. Heavy imports happen when the command runs, not when ``cli`` loads.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from convsync.core.errors import UserError
from convsync.core.logging import register_secret
from convsync.destinations.google_ads.config import API_SCOPES

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
SECRET_ENV = "GOOGLE_ADS_CLIENT_SECRET"  # noqa: S105 - the variable's name
LOOPBACK = "127.0.0.1"
#: they log the code, the token and the client's Basic auth header at INFO/DEBUG
_CHATTY_LOGGERS = ("google_auth_oauthlib", "requests_oauthlib", "oauthlib")
_WHERE = "Google Cloud → APIs & Services → Credentials"


class Api(StrEnum):
    """Which API the token is for: it decides the scopes asked for."""

    DATA_MANAGER = "data_manager"
    GOOGLE_ADS_API = "google_ads_api"
    BOTH = "both"


def run_google(
    client_secrets: Path | None,
    client_id: str | None,
    api: Api,
    port: int,
    open_browser: bool,
    timeout: int,
) -> None:
    """Run the flow and print ``refresh_token: …`` (stdout) and what to do with it (stderr)."""
    kind, client = _client(client_secrets, client_id)
    register_secret(client["client_secret"])
    port, slash = _redirect_port(kind, client, port)
    scopes = _scopes(api)
    token = _flow({kind: client}, scopes, port, slash, open_browser, timeout)
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise UserError(
            "Google answered without a refresh token (it leaves it out when the user had "
            "authorized the app before): remove the app's access at "
            "https://myaccount.google.com/permissions and run this again"
        )
    register_secret(str(refresh_token))
    register_secret(str(token.get("access_token", "")))
    typer.echo(f"refresh_token: {refresh_token}")
    typer.echo(_guidance(client, api), err=True)


def _client(client_secrets: Path | None, client_id: str | None) -> tuple[str, dict[str, Any]]:
    if client_secrets is not None and client_id is not None:
        raise UserError("give --client-secrets FILE or --client-id ID, not both")
    if client_secrets is not None:
        return _client_secrets_file(client_secrets)
    if client_id is None or not client_id.strip():
        raise UserError(
            "give --client-secrets FILE (the OAuth client's JSON, type Desktop app, from "
            f"{_WHERE}) or --client-id ID with the secret in {SECRET_ENV}"
        )
    client = {"client_id": client_id.strip(), "client_secret": _secret_from_environment()}
    return "installed", {**client, "auth_uri": GOOGLE_AUTH_URI, "token_uri": GOOGLE_TOKEN_URI}


def _client_secrets_file(path: Path) -> tuple[str, dict[str, Any]]:
    where = f"--client-secrets {path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{where}: no such file") from None
    except OSError as exc:
        raise UserError(f"{where}: cannot read it ({exc.strerror})") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise UserError(
            f"{where}: not JSON; download the OAuth client's JSON from {_WHERE}"
        ) from None
    data = data if isinstance(data, dict) else {}
    kind = next((k for k in ("installed", "web") if isinstance(data.get(k), dict)), None)
    if kind is None:
        what = 'no "installed" (Desktop app) or "web" key'
        if data.get("type") == "service_account":
            what = "a service account key (use it as auth: {key_file: …} instead)"
        raise UserError(f"{where}: not an OAuth client secrets file: {what}")
    client = dict(data[kind])
    for key in ("client_id", "client_secret"):
        if not isinstance(client.get(key), str) or not client[key].strip():
            raise UserError(f'{where}: "{kind}" has no "{key}"; download the file again')
    client.setdefault("auth_uri", GOOGLE_AUTH_URI)
    client.setdefault("token_uri", GOOGLE_TOKEN_URI)
    return kind, client


def _secret_from_environment() -> str:
    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret and sys.stdin.isatty():
        import getpass

        secret = getpass.getpass("OAuth client secret (not shown): ").strip()
    if not secret:
        raise UserError(
            f"--client-id needs the client's secret in the environment variable {SECRET_ENV} "
            "(or typed at the prompt on a terminal); it is never an option, which `ps` shows"
        )
    return secret


def _redirect_port(kind: str, client: Mapping[str, Any], port: int) -> tuple[int, bool]:
    """(port, trailing slash) of the redirect URI. A Desktop app client takes any loopback
    port; a web client only an authorized redirect URI, so use one it lists."""
    if kind == "installed":
        return port, True
    for uri in client.get("redirect_uris") or ():
        try:
            where = urlsplit(str(uri))
            found = where.port
        except ValueError:
            continue
        loopback = where.scheme == "http" and where.hostname == LOOPBACK
        if loopback and found and port in (0, found) and where.path in ("", "/"):
            return found, where.path == "/"
    if port:
        return port, True
    raise UserError(
        f"a web OAuth client redirects only to its authorized redirect URIs: add "
        f"http://{LOOPBACK}:8080/ to them ({_WHERE}) and pass --port 8080, or use a Desktop "
        "app client (any port)"
    )


def _scopes(api: Api) -> list[str]:
    """The scopes asked for: the destination's, as it asks when it refreshes the token."""
    if api is Api.BOTH:
        return [API_SCOPES[Api.DATA_MANAGER], API_SCOPES[Api.GOOGLE_ADS_API]]
    return [API_SCOPES[api]]


def _flow(
    config: dict[str, Any],
    scopes: list[str],
    port: int,
    slash: bool,
    open_browser: bool,
    timeout: int,
) -> Mapping[str, Any]:
    import requests
    from google_auth_oauthlib.flow import (  # type: ignore[import-untyped]
        InstalledAppFlow,
        WSGITimeoutError,
    )
    from oauthlib.oauth2.rfc6749 import errors  # type: ignore[import-untyped]

    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))

    class Flow(InstalledAppFlow):  # type: ignore[misc]  # untyped base
        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            # called by run_local_server once the port is bound, before it waits
            url, state = super().authorization_url(**kwargs)
            _announce(url, str(self.redirect_uri), open_browser, timeout)
            return url, state

    flow = Flow.from_client_config(config, scopes=scopes)
    token_uri = next(iter(config.values()))["token_uri"]
    try:
        flow.run_local_server(
            host=LOOPBACK,
            bind_addr=LOOPBACK,
            port=port,
            authorization_prompt_message=None,
            success_message="convsync has Google's answer: close this tab, see the terminal.",
            open_browser=False,  # _announce does, keeping the browser's chatter off stdout
            redirect_uri_trailing_slash=slash,
            timeout_seconds=timeout,
            access_type="offline",
            prompt="consent",
        )
    except WSGITimeoutError:
        raise UserError(
            f"timed out after {timeout} s: nobody completed the sign-in at the URL above "
            "(run again; --timeout waits longer)"
        ) from None
    except errors.AccessDeniedError:
        raise UserError(
            "access denied: the consent was refused on Google's page (error=access_denied); "
            "run again and allow access, signed in as a user of the Google Ads account"
        ) from None
    except errors.MismatchingStateError:
        raise UserError(
            "the redirect to this command did not carry its state (an old or forged "
            "browser tab?): run again and use the new URL"
        ) from None
    except errors.InvalidGrantError as exc:
        raise UserError(
            f"{token_uri} refused the authorization code (invalid_grant: {exc.description}): "
            "it expired or was used already; run again"
        ) from None
    except errors.InvalidClientError as exc:
        raise UserError(
            f"{token_uri} refused the OAuth client (invalid_client: {exc.description}): check "
            f"the client id and secret, or download the client secrets again from {_WHERE}"
        ) from None
    except errors.InsecureTransportError:
        raise UserError("the client's auth_uri and token_uri must be https:// URLs") from None
    except errors.OAuth2Error as exc:
        raise UserError(
            f"Google refused the authorization: {exc.error}: {exc.description}"
        ) from None
    except Warning as exc:  # oauthlib: the scopes granted differ from the scopes asked
        token = getattr(exc, "token", None)
        if not isinstance(token, Mapping):
            raise  # some other warning, raised as an error (python -W error)
        missing = sorted(set(scopes) - set(getattr(exc, "new_scope", None) or ()))
        if missing:
            raise UserError(
                f"the consent did not grant {', '.join(missing)}: run again and tick every "
                "box on Google's page"
            ) from None
        return dict(token)
    except requests.RequestException as exc:
        from convsync.core import network

        address = network.Address("Google OAuth", token_uri, "the client's token_uri")
        raise UserError(network.describe(exc, address)) from None
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise UserError(
                f"cannot listen on {LOOPBACK}:{port} for Google's redirect ({exc.strerror}): "
                "choose another --port, or 0 for any free one"
            ) from None
        raise
    return dict(flow.oauth2session.token)


def _announce(url: str, redirect_uri: str, open_browser: bool, timeout: int) -> None:
    typer.echo(
        "Open this URL in a browser, signed in as a Google user with access to the Google\n"
        f"Ads account, and allow access:\n\n    {url}\n\n"
        f"Waiting up to {timeout} s for Google to send the browser back to {redirect_uri}:\n"
        "this machine. The browser must run here too or, over SSH, pick --port N and\n"
        "forward it (ssh -L N:127.0.0.1:N …).",
        err=True,
    )
    if open_browser and not _open_browser(url):
        typer.echo("No browser could be opened here: open the URL yourself.", err=True)


def _open_browser(url: str) -> bool:
    """``webbrowser.open`` with file descriptor 1 pointing at stderr meanwhile: a browser
    started here inherits it, and some print to it where only the token belongs."""
    import webbrowser

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        return webbrowser.open(url, new=1)
    except webbrowser.Error:
        return False
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _guidance(client: Mapping[str, Any], api: Api) -> str:
    auth = f'client_id: "{client["client_id"]}", client_secret: "${{{SECRET_ENV}}}", '
    auth += 'refresh_token: "${GOOGLE_ADS_REFRESH_TOKEN}"'
    if client["token_uri"] != GOOGLE_TOKEN_URI:
        auth += f', token_uri: "{client["token_uri"]}"'
    apis = "api: data_manager or google_ads_api" if api is Api.BOTH else f"api: {api}"
    return (
        "\nKeep the refresh token secret, like the client secret: in the environment variable\n"
        "GOOGLE_ADS_REFRESH_TOKEN or a Docker secret, never in the config file itself.\n"
        f"The google_ads destination ({apis}) then has:\n\n    auth: {{{auth}}}\n\n"
        'With a Docker secret: refresh_token: "${file:/run/secrets/google_ads_refresh_token}".\n'
        "Google revokes the token when the user removes the app's access, after 6 months\n"
        "unused, or after 7 days while the app's OAuth consent screen is in Testing."
    )
