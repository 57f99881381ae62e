"""The Metrica API calls of the ``metrica_logs`` source, over ``requests``.

Logs API (reference/yandex-metrica.md §9), under ``/management/v1/counter/{id}``:
``GET logrequests/evaluate``, ``POST logrequests``, ``GET logrequest/{rid}``,
``GET logrequests``, ``GET logrequest/{rid}/part/{n}/download`` (TSV, streamed),
``POST logrequest/{rid}/clean`` and ``…/cancel``; and the Management API's
``GET /management/v1/counter/{id}`` for the counter's time zone and goals.

Limits (§7): 10 requests a second per IP for the Logs API and 3 requests at once per
user. Every request waits for a pacer shared by all sources of the process that use the
same API base (per IP), and holds one of 3 slots shared by the sources that use the
same token (per user) until its answer is read — a part download until its last line.

Every failure leaves this module as a convsync error (``_error``): 429 per-second and
parallel quotas and 5xx are retried with backoff (``Retry-After`` honoured), then
become a ``UserError`` saying the next run tries again; the daily quota, a refused token
and a refused parameter are ``UserError`` at once, naming the config key. The token is
only ever in the ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from convsync.core import network
from convsync.core.errors import TransientError, UserError
from convsync.core.http import excerpt, json_object, new_session, retry_after
from convsync.core.pacing import Pacer
from convsync.core.retry import transient_retry
from convsync.sources.metrica_logs import tsv

TIMEOUT = (10.0, 120.0)
#: requests at once per user (the API's "parallel requests" quota)
PARALLEL = 3
#: seconds added to the spacing of request starts
PACE_MARGIN = 0.01
#: rows read from a part per retried step: a broken download resumes after the rows
#: already handed over
BATCH_LINES = 2000
_DOWNLOAD_CHUNK = 256 * 1024
_DAILY = ("quota_requests_by_uid", "quota_requests_by_counter_id")

_limits_lock = threading.Lock()
_pacers: dict[str, Pacer] = {}
_slots: dict[str, threading.BoundedSemaphore] = {}


def shared_limits(
    base_url: str, token: str, per_second: float
) -> tuple[Pacer, threading.Semaphore]:
    """The process-wide pacer of this API base and the request slots of this token.

    Starts are spaced ``1 / per_second`` plus a margin: evenly spaced starts arrive
    bunched by network jitter, and eleven starts 0.1 s apart fit in one second.
    """
    user = hashlib.sha256(token.encode()).hexdigest()
    rate = 1.0 / (1.0 / per_second + min(PACE_MARGIN, 0.1 / per_second))
    with _limits_lock:
        pacer = _pacers.get(base_url)
        if pacer is None or abs(pacer.interval * rate - 1) > 1e-9:
            pacer = _pacers[base_url] = Pacer(rate)
        slots = _slots.setdefault(user, threading.BoundedSemaphore(PARALLEL))
        return pacer, slots


class MetricaLogsClient:
    """The calls of one pull; ``requests`` counts every HTTP request sent, by kind."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        counter_id: int,
        key: str,
        per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 5,
        initial_wait: float = 1.0,
    ) -> None:
        self.base_url = base_url
        self.counter_path = f"/management/v1/counter/{counter_id}"
        self.counter_id = counter_id
        self.key = key  # "sources.<name>": how messages name the config
        self.address = network.Address("Metrica API", base_url, f"{key}.api_base_url", TIMEOUT)
        self.session = new_session(
            timeout=TIMEOUT, headers={"Authorization": f"OAuth {token}"}, cookies=False
        )
        self.pacer, self.slots = shared_limits(base_url, token, per_second)
        self.sleep = sleep
        self.attempts = attempts
        self.initial_wait = initial_wait
        self.requests: dict[str, int] = {}

    def close(self) -> None:
        self.session.close()

    @property
    def sent(self) -> int:
        return sum(self.requests.values())

    # --- the calls -----------------------------------------------------------------------

    def counter(self) -> dict[str, Any]:
        data = self._json("counter", "GET", self.counter_path, {"field": "goals"})
        return dict(data.get("counter") or {})

    def log_requests(self) -> list[dict[str, Any]]:
        data = self._json("list", "GET", f"{self.counter_path}/logrequests")
        return [r for r in data.get("requests") or [] if isinstance(r, dict)]

    def evaluate(self, params: Mapping[str, str]) -> dict[str, Any]:
        data = self._json("evaluate", "GET", f"{self.counter_path}/logrequests/evaluate", params)
        return dict(data.get("log_request_evaluation") or {})

    def create(self, params: Mapping[str, str]) -> dict[str, Any]:
        data = self._json("create", "POST", f"{self.counter_path}/logrequests", params)
        return self._log_request(data)

    def info(self, request_id: int) -> dict[str, Any]:
        data = self._json("info", "GET", f"{self.counter_path}/logrequest/{request_id}")
        return self._log_request(data)

    def clean(self, request_id: int) -> dict[str, Any]:
        data = self._json("clean", "POST", f"{self.counter_path}/logrequest/{request_id}/clean")
        return self._log_request(data)

    def cancel(self, request_id: int) -> dict[str, Any]:
        data = self._json("cancel", "POST", f"{self.counter_path}/logrequest/{request_id}/cancel")
        return self._log_request(data)

    def download(self, request_id: int, part: int) -> Iterator[str]:
        """The lines of one part (header first), streamed; a broken download is
        resumed after the lines already handed over."""
        path = f"{self.counter_path}/logrequest/{request_id}/part/{part}/download"
        reader = _PartReader(self, path)
        try:
            while True:
                batch = self._retried(f"GET {path}", reader.next_batch)
                if not batch:
                    return
                yield from batch
        finally:
            reader.close()

    # --- transport -----------------------------------------------------------------------

    def _json(
        self, kind: str, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        def send() -> dict[str, Any]:
            with self._slot(kind):
                try:
                    response = self.session.request(method, self.base_url + path, params=params)
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise TransientError(network.describe(exc, self.address)) from None
                return self._parse(response, f"{method} {path}")

        answer: dict[str, Any] = self._retried(f"{method} {path}", send)
        return answer

    def _slot(self, kind: str) -> _Slot:
        return _Slot(self, kind)

    def _retried(self, what: str, call: Callable[[], Any]) -> Any:
        retrying = transient_retry(
            attempts=self.attempts, initial_wait=self.initial_wait, sleep=self.sleep
        )
        try:
            for attempt in retrying:
                with attempt:
                    return call()
        except TransientError as exc:
            raise UserError(
                f"{self.key}: Metrica did not answer {what} after {self.attempts} tries "
                f"({exc}); the next run tries again from the same cursor"
            ) from None
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _parse(self, response: requests.Response, what: str) -> dict[str, Any]:
        if response.status_code == 200:
            return json_object(response, what)
        raise self._error(response, what)

    def _error(self, response: requests.Response, what: str) -> Exception:
        """The convsync error of a non-200 answer (the documented error body:
        ``{"errors": [{"error_type", "message"}], "code", "message"}``)."""
        status = response.status_code
        error_type, message = _error_body(response)
        said = f"{status} {error_type or 'error'}: {message}"
        if status == 429 and error_type in _DAILY:
            return UserError(
                f"{self.key}: the Metrica API's daily request quota is used up ({said}); it "
                "resets at 00:00 UTC and the next run after that goes on from the same cursor"
            )
        if status == 429 or status >= 500:
            wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            return TransientError(f"{what}: {said}", retry_after=wait, code="rate_limit")
        if status == 401 or error_type in ("invalid_token", "unauthorized"):
            return UserError(
                f"{self.key}.token: Metrica refused the token ({said}); issue an OAuth token "
                "with the metrika:read scope and put it in the config again"
            )
        if status == 403:
            return UserError(
                f"{self.key}.token: the token's Yandex account may not read counter "
                f"{self.counter_id} ({said}); grant it access (Metrica: Settings → Access) "
                "or check counter_id"
            )
        if status == 404 and what.endswith(self.counter_path):
            return UserError(
                f"{self.key}.counter_id: Metrica has no counter {self.counter_id} ({said})"
            )
        return UserError(f"{self.key}: Metrica refused {what} ({said})")

    @staticmethod
    def _log_request(data: Mapping[str, Any]) -> dict[str, Any]:
        found = data.get("log_request")
        if not isinstance(found, dict):
            raise TransientError("the answer has no log_request")
        return found


class _Slot:
    """One request: a pacer turn, then one of the user's parallel slots, held until
    released (a counted request)."""

    def __init__(self, client: MetricaLogsClient, kind: str) -> None:
        self.client = client
        self.kind = kind

    def __enter__(self) -> None:
        self.client.slots.acquire()
        self.client.pacer.wait()
        self.client.requests[self.kind] = self.client.requests.get(self.kind, 0) + 1

    def __exit__(self, *exc: object) -> None:
        self.client.slots.release()


class _PartReader:
    """A part's lines, ``BATCH_LINES`` at a time, over one streamed response that is
    opened again (skipping the lines already read) after a failure."""

    def __init__(self, client: MetricaLogsClient, path: str) -> None:
        self.client = client
        self.path = path
        self.done = 0  # lines handed over
        self.to_skip = 0  # lines of a re-opened download read before
        self.slot: _Slot | None = None
        self.response: requests.Response | None = None
        self.lines: Iterator[str] | None = None

    def next_batch(self) -> list[str]:
        if self.lines is None:
            self._open()
        assert self.lines is not None
        batch: list[str] = []
        try:
            for line in self.lines:
                if self.to_skip:
                    self.to_skip -= 1
                    continue
                batch.append(line)
                if len(batch) >= BATCH_LINES:
                    break
        except (requests.RequestException, OSError) as exc:
            self.close()
            raise TransientError(
                f"GET {self.path}: the download broke ({network.cause(exc, TIMEOUT)})"
            ) from None
        self.done += len(batch)
        if not batch:
            self.close()
        return batch

    def _open(self) -> None:
        client = self.client
        self.slot = client._slot("download")
        self.slot.__enter__()
        try:
            response = client.session.get(client.base_url + self.path, stream=True)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self.close()
            raise TransientError(network.describe(exc, client.address)) from None
        self.response = response
        if response.status_code != 200:
            error = client._error(response, f"GET {self.path}")
            self.close()
            raise error
        self.lines = tsv.lines(response.iter_content(_DOWNLOAD_CHUNK))
        self.to_skip = self.done  # resume after what was handed over

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None
        self.lines = None
        if self.slot is not None:
            self.slot.__exit__(None, None, None)
            self.slot = None


def _error_body(response: requests.Response) -> tuple[str | None, str]:
    try:
        data = response.json()
    except ValueError:
        return None, excerpt(response) or f"HTTP {response.status_code}"
    if not isinstance(data, dict):
        return None, excerpt(response)
    errors = data.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    error_type = str(first["error_type"]) if first.get("error_type") else None
    message = str(first.get("message") or data.get("message") or f"HTTP {response.status_code}")
    return error_type, " ".join(message.split())[:300]
