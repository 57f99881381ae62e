"""The HubSpot CRM API calls this source makes, over ``requests``.

- ``POST /crm/v3/objects/deals/search`` — deals changed in a window, oldest first;
- ``POST /crm/v4/associations/deals/contacts/batch/read`` — their contacts (≤ 1,000 ids);
- ``POST /crm/v3/objects/contacts/batch/read`` — the contacts' properties (≤ 100 ids);
- ``GET /crm/v3/pipelines/deals`` — pipelines and stages, to resolve the config's names.

Every failure leaves this module as a convsync error (``_classify``): 429 and 5xx are
retried here with backoff (``Retry-After`` honoured), then become a ``UserError`` that
says what happened; 401/403 become a ``UserError`` naming the token and the scopes.
The token is only ever in the ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from convsync.core import network
from convsync.core.errors import TransientError, UserError
from convsync.core.http import error_body, excerpt, json_object, new_session, retry_after
from convsync.core.retry import transient_retry

#: HubSpot's documented maxima
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
ASSOCIATIONS_BATCH = 1_000
CONTACTS_BATCH = 100
SCOPES = "crm.objects.deals.read, crm.objects.contacts.read"
TIMEOUT = (10.0, 60.0)


class Pacer:
    """At most ``per_second`` request starts in any window of a second, plus a margin.

    A sliding window rather than even spacing: HubSpot counts requests per second as
    they arrive, and evenly spaced starts arrive bunched by network jitter (six in a
    second at 5/s). The margin absorbs that jitter; a burst of up to ``per_second`` is
    allowed, so a small pull is not slowed down at all. (Sources do not import the
    destinations' pacer, which spaces evenly for VK's tracker.)
    """

    MARGIN = 0.1  # seconds added to each window

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self.size = max(1, math.floor(per_second))
        self.window = self.size / per_second + self.MARGIN
        self._lock = threading.Lock()
        self._starts: deque[float] = deque(maxlen=self.size)

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Block until this caller may start (reserve a slot; sleep outside the lock)."""
        with self._lock:
            now = time.monotonic()
            slot = now
            if len(self._starts) == self.size:
                slot = max(now, self._starts[0] + self.window)
            self._starts.append(slot)
        if slot > now:
            sleep(slot - now)


_pacers: dict[tuple[str, str, str], Pacer] = {}
_pacers_lock = threading.Lock()


def account_pacer(base_url: str, token: str, kind: str, per_second: float) -> Pacer:
    """One pacer per account (base URL + token) and kind, shared by every source of the
    process that uses the account: HubSpot's limits are per account, not per source."""
    key = (base_url, hashlib.sha256(token.encode()).hexdigest(), kind)
    with _pacers_lock:
        pacer = _pacers.get(key)
        if pacer is None or pacer.per_second != per_second:
            pacer = _pacers[key] = Pacer(per_second)
        return pacer


class HubSpotClient:
    """The calls of one source's pull; ``requests`` counts every HTTP request sent."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        key: str,
        search_per_second: float,
        per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 5,
        initial_wait: float = 1.0,
    ) -> None:
        self.base_url = base_url
        self.key = key  # "sources.<name>": how messages name the config
        self.session = new_session(
            timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"}, cookies=False
        )
        self.address = network.Address("HubSpot API", base_url, f"{key}.api_base_url", TIMEOUT)
        self.search_pacer = account_pacer(base_url, token, "search", search_per_second)
        self.pacer = account_pacer(base_url, token, "other", per_second)
        self.sleep = sleep
        #: how the pacers wait: real time even when retries' waits are faked in tests
        self.pace_sleep: Callable[[float], None] = time.sleep
        self.attempts = attempts
        self.initial_wait = initial_wait
        self.requests = 0

    def close(self) -> None:
        self.session.close()

    # --- the calls -----------------------------------------------------------------------

    def search_deals(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/crm/v3/objects/deals/search", body, search=True)

    def deal_contacts(self, deal_ids: Sequence[str]) -> dict[str, list[str]]:
        """Deal id → its contacts' ids, in HubSpot's order (deals without any: absent)."""
        found: dict[str, list[str]] = {}
        for start in range(0, len(deal_ids), ASSOCIATIONS_BATCH):
            inputs = [{"id": i} for i in deal_ids[start : start + ASSOCIATIONS_BATCH]]
            data = self._call(
                "POST", "/crm/v4/associations/deals/contacts/batch/read", {"inputs": inputs}
            )
            for result in data.get("results") or []:
                deal = str((result.get("from") or {}).get("id", ""))
                ids = [str(to["toObjectId"]) for to in result.get("to") or [] if "toObjectId" in to]
                if deal and ids:
                    found.setdefault(deal, []).extend(ids)
        return found

    def contacts(self, ids: Sequence[str], properties: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Contact id → its properties (contacts HubSpot no longer has: absent)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), CONTACTS_BATCH):
            body = {
                "properties": list(properties),
                "inputs": [{"id": i} for i in ids[start : start + CONTACTS_BATCH]],
            }
            data = self._call("POST", "/crm/v3/objects/contacts/batch/read", body)
            for result in data.get("results") or []:
                found[str(result.get("id"))] = result.get("properties") or {}
        return found

    def pipelines(self) -> list[dict[str, Any]]:
        data = self._call("GET", "/crm/v3/pipelines/deals", None)
        return list(data.get("results") or [])

    # --- transport -----------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None, *, search: bool = False
    ) -> dict[str, Any]:
        pacer = self.search_pacer if search else self.pacer
        retrying = transient_retry(
            attempts=self.attempts, initial_wait=self.initial_wait, sleep=self.sleep
        )
        try:
            for attempt in retrying:
                with attempt:
                    pacer.wait(self.pace_sleep)
                    return self._send(method, path, body)
        except TransientError as exc:
            raise UserError(
                f"{self.key}: HubSpot did not answer {method} {path} after "
                f"{self.attempts} tries ({exc}); the next run tries again from the same "
                "cursor"
            ) from None
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        self.requests += 1
        try:
            response = self.session.request(method, self.base_url + path, json=body)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(network.describe(exc, self.address)) from None
        return self._classify(response, f"{method} {path}")

    def _classify(self, response: requests.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        if status in (200, 207):  # 207: a batch with some ids not found
            return json_object(response, what)
        error = error_body(response)
        message = str(error.get("message") or excerpt(response))
        if status == 429:
            if error.get("policyName") == "DAILY":
                raise UserError(
                    f"{self.key}: the HubSpot account's daily API limit is used up "
                    f"({message}); the next run after midnight (the account's time zone) "
                    "goes on"
                )
            wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            raise TransientError(f"{what}: 429 {message}", retry_after=wait, code="rate_limit")
        if status >= 500:
            raise TransientError(f"{what}: {status} {message}")
        if status == 401:
            raise UserError(
                f"{self.key}.token: HubSpot refused the token (401: {message}); use a "
                f"private app's access token (Settings → Integrations → Private apps) "
                f"with the scopes {SCOPES}"
            )
        if status == 403:
            scopes = _required_scopes(error) or SCOPES
            raise UserError(
                f"{self.key}.token: the private app lacks a scope (403: {message}); give "
                f"it {scopes} and put the token in the config again"
            )
        raise UserError(f"{self.key}: HubSpot refused {what} ({status}: {message})")


def _required_scopes(error: Mapping[str, Any]) -> str:
    scopes: list[str] = []
    for item in error.get("errors") or []:
        context = item.get("context") if isinstance(item, dict) else None
        for key in ("requiredGranularScopes", "requiredScopes"):
            for scope in (context or {}).get(key) or []:
                if scope not in scopes:
                    scopes.append(str(scope))
    return ", ".join(scopes)
