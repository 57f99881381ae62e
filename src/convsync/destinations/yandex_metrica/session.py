"""The HTTP session factory of the Metrica destination: a timeout on every request.

``requests`` has no default timeout, so one forgotten ``timeout=`` would let a silent
server hang a run for ever; this session sets one unless the caller passes its own. It
retries nothing itself: retries belong to the worker's one retry policy.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import requests

#: (connect, read) seconds; the read part covers Metrica taking in a file of 100,000 rows
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)


def _user_agent() -> str:
    try:
        return f"convsync/{version('convsync')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "convsync"


class TimeoutSession(requests.Session):
    """A ``requests.Session`` whose requests time out after ``timeout`` unless told."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.timeout = timeout

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def new_session(
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    headers: dict[str, str] | None = None,
) -> requests.Session:
    session = TimeoutSession(timeout)
    session.headers["User-Agent"] = _user_agent()
    session.headers.update(headers or {})
    return session
