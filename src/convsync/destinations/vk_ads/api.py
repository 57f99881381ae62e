"""Authorised requests to the VK Ads API, paced by the rate-limit headers VK sends.

VK answers every API call with ``X-RateLimit-RPS-Limit``, ``X-RateLimit-Hourly-Limit``,
``X-RateLimit-Daily-Limit`` and the matching ``…-Remaining`` headers. ``RateGovernor``
reads them and slows down before a limit is reached: a pause to the next second when
the second's allowance is used up, requests spread over the hour when less than a tenth
of the hourly allowance is left, and a stop for the run (rows pending) when the hourly or
daily allowance is gone.

Errors: 429 and 5xx are ``TransientError`` (``Retry-After`` honoured); a 401 renews the
token once and repeats the call; a second 401 or a 403 stops the destination
(``DestinationUnavailable``); other 4xx are ``PermanentError`` with VK's error text.

Used by nothing in ``send`` yet: the offline conversion lists it is for are left out
until VK documents that they take hashed e-mails and phones (see the README).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from convsync.core import network
from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.http import excerpt, retry_after
from convsync.destinations.vk_ads.auth import VkAdsAuth

#: a tenth of the hourly allowance left: spread what is left over the hour
_HOURLY_RESERVE = 0.1


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


class RateGovernor:
    """Reads the rate-limit headers of each answer; ``before`` waits or stops."""

    def __init__(
        self,
        destination: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.destination = destination
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._stop: DestinationUnavailable | None = None

    def before(self) -> None:
        with self._lock:
            if self._stop is not None:
                raise self._stop
            wait = self._not_before - self._clock()
        if wait > 0:
            self._sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        now = self._clock()
        with self._lock:
            for period in ("Daily", "Hourly"):
                left = _header_int(headers, f"X-RateLimit-{period}-Remaining")
                if left is not None and left <= 0:
                    self._stop = DestinationUnavailable(
                        f"api_{period.lower()}_limit",
                        f"The {period.lower()} allowance of VK Ads API requests is used up "
                        f"(X-RateLimit-{period}-Remaining: 0) for destinations."
                        f"{self.destination}; deliveries stay pending until a later run.",
                    )
                    return
            pause = 0.0
            rps_left = _header_int(headers, "X-RateLimit-RPS-Remaining")
            if rps_left is not None and rps_left <= 1:
                pause = 1.0  # this second's allowance is (nearly) gone
            hourly = _header_int(headers, "X-RateLimit-Hourly-Limit")
            hourly_left = _header_int(headers, "X-RateLimit-Hourly-Remaining")
            if hourly and hourly_left is not None and hourly_left < hourly * _HOURLY_RESERVE:
                pause = max(pause, 3600.0 / hourly)
            self._not_before = max(self._not_before, now + pause)


class VkAdsApi:
    """Calls ``{api_base_url}{path}`` with the destination's token."""

    def __init__(
        self,
        base_url: str,
        auth: VkAdsAuth,
        session: requests.Session,
        governor: RateGovernor,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base_url = base_url
        self.auth = auth
        self.session = session
        self.governor = governor
        self.clock = clock
        self.address = network.Address(
            "VK Ads API",
            base_url,
            f"destinations.{auth.destination}.api_base_url",
            getattr(session, "timeout", None),
        )
        auth.on_response = lambda response: governor.observe(response.headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer (None for an empty one); raises as the module says."""
        extra = dict(kwargs.pop("headers", None) or {})
        for attempt in (1, 2):
            token = self.auth.access_token()
            self.governor.before()
            headers = {**extra, "Authorization": f"Bearer {token}"}
            try:
                response = self.session.request(
                    method, self.base_url + path, headers=headers, **kwargs
                )
            except requests.RequestException as exc:
                raise TransientError(
                    network.describe(exc, self.address), code="api_unreachable"
                ) from None
            with response:
                self.governor.observe(response.headers)
                if response.status_code == 401 and attempt == 1:
                    self.auth.invalidate(token)  # deleted or expired early: renew, once
                    continue
                return self._result(response)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _result(self, response: requests.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            return response.json() if response.content else None
        code, text = _error_of(response)
        said = f"{status} {code}: {text}" if code else f"{status}: {text}"
        if status == 429 or status >= 500:
            raise TransientError(
                f"The VK Ads API answered {said}.",
                retry_after=retry_after(response.headers.get("Retry-After"), self.clock()),
                code=f"http_{status}",
            )
        if status in (401, 403):
            raise DestinationUnavailable(
                "permission_denied" if status == 403 else "auth_failed",
                f"The VK Ads API refused destinations.{self.auth.destination} ({said}); "
                "check that the API client of client_id has access to this account "
                "and the permission named, if any. Deliveries stay pending.",
            )
        raise PermanentError(f"http_{status}", f"The VK Ads API refused the request ({said}).")


def _error_of(response: requests.Response) -> tuple[str, str]:
    """(code, message) of VK's two error shapes: ``{"error": {"code", "message"}}`` and
    OAuth's ``{"error", "error_description"}``."""
    try:
        data = response.json()
    except ValueError:
        return "", excerpt(response)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        if error.get("required_permission"):
            message += f" (permission {error['required_permission']})"
        return str(error.get("code") or ""), message
    if isinstance(error, str):
        return error, str(data.get("error_description") or "")
    return "", excerpt(response)
