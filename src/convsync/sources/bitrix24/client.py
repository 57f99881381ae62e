"""Calls to one Bitrix24 portal through its inbound webhook: pacing, retries and the
classification of every answer (one function, ``_classify``).

    answer                                          becomes
    2xx with ``result``                             the result
    503 / ``QUERY_LIMIT_EXCEEDED``, 429, 5xx,       TransientError (retried with backoff,
    timeouts, dropped connections                   ``Retry-After`` honoured)
    401, ``expired_token``, ``INVALID_CREDENTIALS``,UserError naming ``webhook_url``
    ``NO_AUTH_FOUND``, ``invalid_token``
    403 (scope, plan, rights)                       UserError naming ``webhook_url``
    any other error                                 UserError with Bitrix24's code and text

Requests are POSTs with a JSON body (``<webhook>/<method>.json``). ``batch`` runs up to
50 commands in one request, which the portal counts as one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from convsync.core import network
from convsync.core.errors import TransientError, UserError
from convsync.core.http import excerpt, new_session, retry_after
from convsync.core.logging import register_secret
from convsync.core.retry import transient_retry
from convsync.sources.bitrix24.limiter import LeakyBucket

#: commands in one ``batch`` (the platform's limit) and rows in one list page
MAX_BATCH = 50
PAGE = 50

_AUTH_ERRORS = frozenset(
    {"expired_token", "invalid_token", "INVALID_CREDENTIALS", "NO_AUTH_FOUND", "WRONG_AUTH_TYPE"}
)
_ACCESS_ERRORS = frozenset(
    {"insufficient_scope", "ACCESS_DENIED", "PAYMENT_REQUIRED", "user_access_error"}
)
_RATE_ERRORS = frozenset({"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT"})
_RATE_PAUSE = 1.0  # seconds after QUERY_LIMIT_EXCEEDED without Retry-After: 2 drain slots


def php_query(params: Mapping[str, Any]) -> str:
    """``params`` as PHP's ``http_build_query`` writes them (``filter[@ID][0]=1``): the
    form a ``batch`` command's parameters must take."""
    pairs: list[str] = []

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                add(f"{prefix}[{key}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                add(f"{prefix}[{index}]", item)
        else:
            text = "" if value is None else str(value)
            pairs.append(f"{quote(prefix, safe='')}={quote(text, safe='')}")

    for key, value in params.items():
        add(str(key), value)
    return "&".join(pairs)


class Bitrix24Client:
    """One portal, one webhook; ``requests`` counts the HTTP requests made."""

    def __init__(
        self,
        webhook_url: str,
        *,
        config_key: str,
        per_second: float,
        burst: int,
        retries: int,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        register_secret(webhook_url)
        # the code alone too: a portal may echo it in an error text
        register_secret(webhook_url.rstrip("/").rsplit("/", 1)[-1])
        self.base = webhook_url
        self.config_key = config_key
        self.retries = retries
        self.sleep = sleep
        self.bucket = LeakyBucket(per_second, burst, sleep=sleep)
        self.session = new_session(timeout=timeout)
        #: the portal (its host alone is ever shown: the path holds the webhook's code)
        self.address = network.Address("Bitrix24", webhook_url, config_key, timeout)
        self.requests = 0

    def close(self) -> None:
        self.session.close()

    def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """The ``result`` of one method, retried while the failure is transient."""
        retrying = transient_retry(
            attempts=self.retries + 1, initial_wait=1.0, max_wait=30.0, sleep=self.sleep
        )
        try:
            body = retrying(self._post, method, params)
        except TransientError as exc:
            raise UserError(
                f"Bitrix24 ({method}) still failing after {self.retries + 1} attempts: "
                f"{exc}; the next run tries again from the same point"
            ) from None
        return body.get("result")

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
        """Up to 50 ``name → (method, params)`` in one request: ``name → result``.

        A command's own error fails the whole batch (a rate refusal inside it is
        transient, as for a single call), so nothing is half-read."""
        if len(commands) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} commands")
        cmd = {name: f"{method}?{php_query(params)}" for name, (method, params) in commands.items()}
        retrying = transient_retry(
            attempts=self.retries + 1, initial_wait=1.0, max_wait=30.0, sleep=self.sleep
        )
        try:
            result = retrying(self._batch_once, cmd)
        except TransientError as exc:
            raise UserError(
                f"Bitrix24 (batch) still failing after {self.retries + 1} attempts: "
                f"{exc}; the next run tries again from the same point"
            ) from None
        return result

    def _batch_once(self, cmd: Mapping[str, str]) -> dict[str, Any]:
        body = self._post("batch", {"halt": 1, "cmd": cmd})
        result = body.get("result") or {}
        errors = result.get("result_error") or {}
        if isinstance(errors, list):  # PHP's empty array
            errors = dict(enumerate(errors))
        for name, error in errors.items():
            code = str(error.get("error", "")) if isinstance(error, Mapping) else str(error)
            text = str(error.get("error_description", "")) if isinstance(error, Mapping) else ""
            self._raise_for(code, text, 400, f"batch command {name}", None)
        results = result.get("result") or {}
        if isinstance(results, list):
            results = {str(i): r for i, r in enumerate(results)}
        return {str(k): v for k, v in results.items()}

    def _post(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.bucket.acquire()
        self.requests += 1
        try:
            response = self.session.post(f"{self.base}{method}.json", json=params)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(network.describe(exc, self.address)) from None
        return self._classify(method, response)

    def _classify(self, method: str, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok and isinstance(body, dict) and "error" not in body:
            return body
        code = str(body.get("error", "")) if isinstance(body, dict) else ""
        text = str(body.get("error_description", "")) if isinstance(body, dict) else ""
        if not code and not text:
            text = excerpt(response)
        wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        self._raise_for(code, text, response.status_code, method, wait)
        raise AssertionError("unreachable")  # _raise_for always raises

    def _raise_for(self, code: str, text: str, status: int, where: str, wait: float | None) -> None:
        said = f"{code}: {text}" if code and text else code or text or f"HTTP {status}"
        if code in _RATE_ERRORS or status in (429, 503):
            self.bucket.fill()
            raise TransientError(
                f"{where}: HTTP {status} {said}", retry_after=wait or _RATE_PAUSE, code="rate"
            )
        if status >= 500:
            raise TransientError(f"{where}: HTTP {status} {said}", retry_after=wait)
        if code in _AUTH_ERRORS or status == 401:
            raise UserError(
                f"{self.config_key}: Bitrix24 refused the webhook ({said}); check that the "
                "webhook still exists (Developer resources → Integrations) and that the URL "
                "is copied whole"
            )
        if code in _ACCESS_ERRORS or status == 403:
            raise UserError(
                f"{self.config_key}: the webhook may not read deals ({said}); give it the "
                "crm scope and a user who can see the deals"
            )
        if code in ("ERROR_METHOD_NOT_FOUND", "ERROR_NOT_FOUND") or status == 404:
            raise UserError(
                f"{self.config_key}: Bitrix24 does not know {where} ({said}); is the URL the "
                "inbound webhook's, https://<portal>/rest/<user>/<code>/?"
            )
        raise UserError(f"Bitrix24 refused {where}: HTTP {status} {said}")


def chunks_of(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
