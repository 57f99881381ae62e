"""Who may read the status page.

With ``ui.auth`` configured, every request must carry it: the token as
``Authorization: Bearer …``, as ``?token=…`` (answered with a redirect that drops it from
the address and a cookie that holds its digest, so links and reloads work and the token
stays out of the browser's history), or the cookie; or a user name and password (HTTP
basic auth, the browser asks for them). Without ``ui.auth`` the page is open only while
the endpoint listens on a loopback address; beyond it the page is refused with a
message that says what to configure. ``/healthz`` and ``/metrics`` are not the page:
probes and Prometheus read them without credentials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from convsync.config.ui import UiAuth

COOKIE = "convsync_ui"
#: how long the cookie keeps a browser signed in
COOKIE_MAX_AGE = 30 * 86400
LOCKED = (
    "The status page listens beyond localhost (CONVSYNC_HEALTH_HOST) and no ui.auth is "
    "configured, so it is not shown. Set ui.auth.token, or ui.auth.username and "
    "ui.auth.password, in the config; /healthz and /metrics stay open.\n"
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PageAccess:
    """The check of every request for the page: None when it may be answered, else the
    answer (a redirect that sets the cookie, 401 asking for credentials, or 403)."""

    def __init__(self, auth: UiAuth | None, host: str) -> None:
        self.locked = auth is None and not is_loopback(host)
        self._token = _digest(auth.token.get_secret_value()) if auth and auth.token else None
        self._basic = None
        if auth is not None and auth.username is not None and auth.password is not None:
            self._basic = _digest(f"{auth.username}:{auth.password.get_secret_value()}")
        self._open = auth is None and not self.locked

    def check(self, request: Request) -> Response | None:
        if self._open:
            return None
        if self.locked:
            return Response(LOCKED, status=403, mimetype="text/plain")
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if self._token is not None:
            if scheme.lower() == "bearer" and self._same(credentials.strip(), self._token):
                return None
            if self._same_digest(request.cookies.get(COOKIE, ""), self._token):
                return None
            presented = request.args.get("token")
            if presented and self._same(presented, self._token):
                return self._signed_in(request)
        if self._basic is not None and scheme.lower() == "basic":
            try:
                pair = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pair = ""
            if pair and self._same(pair, self._basic):
                return None
        return self._refused()

    @staticmethod
    def _same(presented: str, expected_digest: str) -> bool:
        # digests of equal length: not even the secret's length shows in the timing
        return hmac.compare_digest(_digest(presented), expected_digest)

    @staticmethod
    def _same_digest(presented: str, expected_digest: str) -> bool:
        return hmac.compare_digest(presented.encode(), expected_digest.encode())

    def _signed_in(self, request: Request) -> Response:
        """A redirect to the same page without the token, with the cookie."""
        kept = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
        query = urlencode(kept)
        response = Response(status=303)
        response.headers["Location"] = request.path + (f"?{query}" if query else "")
        assert self._token is not None
        response.set_cookie(
            COOKIE,
            self._token,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Strict",
            secure=request.scheme == "https",
        )
        return response

    def _refused(self) -> Response:
        if self._basic is not None:
            response = Response("Sign in to see the status page.\n", status=401)
            response.headers["WWW-Authenticate"] = 'Basic realm="convsync", charset="UTF-8"'
            return response
        return Response(
            "Open the page with ?token=… (ui.auth.token) or send Authorization: Bearer.\n",
            status=401,
            mimetype="text/plain",
        )
