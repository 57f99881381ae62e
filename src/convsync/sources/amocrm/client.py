"""HTTP access to one amoCRM / Kommo account: pacing, retries, errors, HAL paging.

amoCRM allows 7 requests a second per account, shared by every integration, and blocks
the IP of a client that keeps exceeding it; so requests are paced *before* it complains
(one pacer per account in the process, starts spaced evenly with a small margin), and a
429 or a 5xx is retried with backoff, honouring ``Retry-After``, a bounded number of
times. What is left after the retries becomes a ``UserError`` naming what happened: the
source stops for this run and its cursor does not move.

Lists are HAL: ``_embedded.<items>``, ``_links.next`` while there may be more, ``page``
numbers, and 204 No Content for an empty page (also for the page after an exact
multiple of the page size).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
import structlog

from convsync.core import network
from convsync.core.errors import TransientError, UserError
from convsync.core.http import excerpt, json_object, new_session, retry_after
from convsync.core.pacing import Pacer
from convsync.core.retry import transient_retry
from convsync.sources.amocrm.auth import AmoCredentials

log = structlog.get_logger("convsync.sources.amocrm")

#: tries of one request (429/5xx/timeouts) before the source stops for the run
ATTEMPTS = 5
#: (connect, read) seconds of each request
TIMEOUT = (10.0, 60.0)
#: added to amoCRM's 1/7 s between requests: jitter on the way must not make 8 of one second
PACING_MARGIN = 0.005
#: a list longer than this many pages is a loop, not data
MAX_PAGES = 100_000
_RETRYABLE = frozenset({429, 500, 502, 503, 504})


class AmoNotFound(UserError):
    """HTTP 404: the thing asked for is not in the account (a pipeline id, a path)."""


_pacers: dict[str, Pacer] = {}
_pacers_lock = threading.Lock()


def account_pacer(base_url: str, per_second: float) -> Pacer:
    """The one pacer of an account in this process (two sources of one account share
    it, at the slower of their rates)."""
    interval = 1.0 / per_second + PACING_MARGIN
    with _pacers_lock:
        pacer = _pacers.get(base_url)
        if pacer is None:
            pacer = _pacers[base_url] = Pacer(1.0 / interval)
        elif pacer.interval < interval:
            pacer.interval = interval
        return pacer


def encode_query(query: Sequence[tuple[str, str | int]]) -> str:
    """``filter[id][]=1&…`` with the brackets as amoCRM writes them (shorter URLs)."""
    return "&".join(f"{quote(k, safe='[]')}={quote(str(v), safe='')}" for k, v in query)


class AmoClient:
    """GET requests to one account's API v4, with its credentials."""

    def __init__(
        self,
        source: str,
        base_url: str,
        credentials: AmoCredentials,
        *,
        per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        address_key: str | None = None,
    ) -> None:
        self.source = source
        self.base_url = base_url
        self.credentials = credentials
        self.pacer = account_pacer(base_url, per_second)
        self.sleep = sleep
        self.session = new_session(timeout=TIMEOUT, headers={"Accept": "application/json"})
        #: the account's address, for the words of a request that failed in the network;
        #: ``address_key`` the config key that sets it
        self.address = network.Address(
            "amoCRM", base_url, address_key or f"sources.{source}.api_base_url", TIMEOUT
        )
        self.requests = 0  # sent, for the run's log line and the bench
        credentials.bind(self._post_form)

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, query: Sequence[tuple[str, str | int]] = ()) -> dict[str, Any] | None:
        """The JSON object at ``path``, or None for 204 No Content."""
        retrying = transient_retry(
            attempts=ATTEMPTS, initial_wait=1.0, max_wait=60.0, sleep=self.sleep
        )
        try:
            result: dict[str, Any] | None = retrying(self._get_authorized, path, query)
        except TransientError as exc:
            raise UserError(
                f"sources.{self.source}: amoCRM ({self.base_url}) failed {ATTEMPTS} times "
                f"on {path}: {exc}. The next run tries again from the same place."
            ) from None
        return result

    def pages(
        self, path: str, query: Sequence[tuple[str, str | int]], items: str
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page's ``_embedded.<items>``, page 1 on, until no ``_links.next``."""
        for page in range(1, MAX_PAGES + 1):
            body = self.get(path, [*query, ("page", page)])
            if body is None:
                return
            found = (body.get("_embedded") or {}).get(items) or []
            if not isinstance(found, list):
                raise UserError(f"sources.{self.source}: amoCRM answered {path} with no list")
            if found:
                yield found
            if not found or not (body.get("_links") or {}).get("next"):
                return
        raise UserError(f"sources.{self.source}: amoCRM kept paging {path} past {MAX_PAGES} pages")

    def _get_authorized(
        self, path: str, query: Sequence[tuple[str, str | int]]
    ) -> dict[str, Any] | None:
        url = f"{self.base_url}{path}"
        if query:
            url += "?" + encode_query(query)
        response = self._send("GET", url, self.credentials.access_token())
        if response.status_code == 401 and self.credentials.renew():
            # an access token revoked or expired early: one refresh, one more try
            response = self._send("GET", url, self.credentials.access_token())
        return self._classify(response, path)

    def _send(
        self, method: str, url: str, token: str | None, body: Mapping[str, Any] | None = None
    ) -> requests.Response:
        self.pacer.wait()
        self.requests += 1
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return self.session.request(method, url, headers=headers, json=body)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(network.describe(exc, self.address)) from None

    def _post_form(self, path: str, body: Mapping[str, Any]) -> requests.Response:
        """The OAuth token endpoint (JSON body, no bearer), paced like the rest."""
        return self._send("POST", f"{self.base_url}{path}", None, body)

    def _classify(self, response: requests.Response, path: str) -> dict[str, Any] | None:
        status = response.status_code
        if status == 204:
            return None
        if status == 200:
            return json_object(response, path)
        if status in _RETRYABLE or status >= 500:
            wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            raise TransientError(f"HTTP {status} {excerpt(response)}".strip(), retry_after=wait)
        prefix = f"sources.{self.source}"
        said = excerpt(response)
        if status == 401:
            raise UserError(f"{prefix}.auth: {self.credentials.refused_message()} ({said})")
        if status == 402:
            raise UserError(f"{prefix}: the amoCRM account is not paid up (HTTP 402): {said}")
        if status == 403:
            raise UserError(
                f"{prefix}.auth: amoCRM forbids {path} (HTTP 403): the user behind the token "
                f"lacks access, or amoCRM blocked this IP for exceeding its limits: {said}"
            )
        if status == 404:
            raise AmoNotFound(f"{prefix}: amoCRM has no {path} (HTTP 404): {said}")
        raise UserError(f"{prefix}: amoCRM answered {path} with HTTP {status}: {said}")
