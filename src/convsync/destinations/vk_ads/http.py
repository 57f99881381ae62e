"""The HTTP session of the VK Ads destination: a default timeout on every request, a
connection pool as large as the tracker concurrency, no cookies, and a way to send a
URL exactly as built.

Cookies are refused on purpose: the tracker answers with the visitor cookies a browser
would keep, and sending them back with the next server-to-server event would tie every
conversion of a run to one "visitor".
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

#: (connect, read) seconds; the tracker answers a 1×1 GIF, the API small JSON documents
DEFAULT_TIMEOUT = (5.0, 20.0)
USER_AGENT = "convsync (offline conversions)"


class TimeoutSession(requests.Session):
    """A ``requests.Session`` whose requests all have a timeout unless one is given."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)

    def get_exact(self, url: str, headers: Mapping[str, str] | None = None) -> requests.Response:
        """GET ``url`` byte for byte: ``requests`` re-quotes a URL while preparing it,
        and the tracker's ``;``-separated query is only understood as documented."""
        prepared = self.prepare_request(requests.Request("GET", url, headers=dict(headers or {})))
        prepared.url = url
        return self.send(prepared, allow_redirects=True)


def new_session(
    *, pool_size: int = 1, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT
) -> TimeoutSession:
    """A session for one run of one destination; the caller closes it."""
    session = TimeoutSession(timeout)
    session.headers["User-Agent"] = USER_AGENT
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    # No retries here: a request that may have reached VK must not be repeated silently
    # (the tracker has no receipt and no idempotency key); the delivery worker decides.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, pool_block=True)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retry_after(response: requests.Response, now: datetime) -> float | None:
    """Seconds the server asked to wait (``Retry-After``: seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
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
    such as the tracker's GIF)."""
    kind = response.headers.get("Content-Type", "").lower()
    if kind and not kind.startswith("text/") and "json" not in kind and "xml" not in kind:
        return ""
    text = " ".join(response.text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
