"""The HTTP session every HTTP connector uses (``requests``), written once.

* A timeout on every request: ``requests`` has none by default, and one forgotten
  ``timeout=`` would let a silent server hang a run for ever.
* No retries of its own: retries belong to the worker's one retry policy — and a
  request that may have arrived must not be repeated silently (VK's tracker has no
  receipt).
* ``get_exact`` sends a URL byte for byte (``requests`` re-quotes URLs while preparing
  them; VK's ``;``-separated tracker query is only understood as documented).
* Optionally no cookies: VK's tracker answers with a browser's visitor cookies, and
  sending them back would tie every server-to-server event of a run to one "visitor".

A request that fails in the network (refused, DNS, TLS, a timeout, a broken proxy from
``HTTPS_PROXY``: the session trusts the environment) is worded by ``convsync.core.network``
at the transport's edge: one line with the host, the cause and the config key, never
urllib3's text.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from convsync.core.errors import TransientError

Timeout = float | tuple[float, float]


def _user_agent() -> str:
    try:
        return f"convsync/{version('convsync')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "convsync"


class TimeoutSession(requests.Session):
    """A ``requests.Session`` whose requests all time out after ``timeout`` unless told."""

    def __init__(self, timeout: Timeout) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)

    def get_exact(self, url: str, headers: Mapping[str, str] | None = None) -> requests.Response:
        """GET ``url`` exactly as given, not re-quoted."""
        prepared = self.prepare_request(requests.Request("GET", url, headers=dict(headers or {})))
        prepared.url = url
        return self.send(prepared, allow_redirects=True)


def new_session(
    *,
    timeout: Timeout,
    pool_size: int = 1,
    headers: Mapping[str, str] | None = None,
    cookies: bool = True,
) -> TimeoutSession:
    """A session for one run of one destination (``pool_size`` connections, blocking
    when all are busy); the caller closes it."""
    session = TimeoutSession(timeout)
    session.headers["User-Agent"] = _user_agent()
    session.headers.update(headers or {})
    if not cookies:
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, pool_block=True)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP date."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


def excerpt(response: requests.Response, limit: int = 200) -> str:
    """The start of a response body on one line, for a message ("" for a binary one,
    such as a tracker's GIF)."""
    kind = response.headers.get("Content-Type", "").lower()
    if kind and not kind.startswith("text/") and "json" not in kind and "xml" not in kind:
        return ""
    text = " ".join(response.text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_object(response: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object of a successful answer; anything else in its place (an HTML
    error page from a proxy, a truncated body) is transient: worth asking again."""
    try:
        data = response.json()
    except ValueError:
        raise TransientError(f"{what}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise TransientError(f"{what}: unexpected answer {excerpt(response)}")
    return data


def error_body(response: requests.Response) -> dict[str, Any]:
    """The JSON object of an error answer, or ``{}`` when it has none (a proxy's page)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
