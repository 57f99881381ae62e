"""Offline events through the pixel's server-to-server tracker: one GET per event,
``{tracker_url}?id=PIXEL;e=RG%3AVALUE/GOAL;rb_clickid=…`` (or ``userid=…``), sent by a
bounded pool of threads at a paced rate.

The tracker answers a 1×1 GIF whatever it did with the event: a 2xx is the only receipt
there is, and a request that may have reached it is never repeated automatically.

    2xx                                  delivered
    429, 5xx                             transient (Retry-After honoured)
    401, 403, 404, 410                   rejected; the batch stops sending (tracker refused)
    any other status                     rejected with the status and the body's start
    no connection (refused, DNS, TLS,    transient; the batch stops sending
      connect timeout)
    sent, no answer (read timeout,       uncertain: may have been counted
      connection dropped)

A batch in which the tracker counted nothing because it could not be reached or refused
every request stops the destination for the run (its rows stay pending), unless rows of
it were sent before in this run (then only per-row outcomes can be given safely).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests
from urllib3.exceptions import NewConnectionError

from convsync.errors import DestinationUnavailable
from convsync.http import excerpt, new_session, retry_after
from convsync.model import OutboundRow, OutcomeKind, RowOutcome
from convsync.pacing import Pacer

#: statuses that say "this tracker URL takes no events": a wrong tracker_url or a ban
REFUSED = frozenset({401, 403, 404, 410})
# Left as they are in a value: RFC 3986 unreserved characters and the sub-delimiters that
# mean nothing to the tracker's query. ';', '/', '&', '=', '?', '#', '%' never get here
# (pre-flight rejects them); anything else, e.g. a Cyrillic goal name, is percent-encoded.
_SAFE = "-._~!$'()*+,:@"

#: (connect, read) seconds; the tracker answers a 1×1 GIF, the API small JSON documents
DEFAULT_TIMEOUT = (5.0, 20.0)


def event_url(tracker_url: str, payload: Mapping[str, Any]) -> str:
    """The tracker request of one event (a ``vk_ads`` payload), exactly as sent."""
    if "rb_clickid" in payload:
        parameter, identifier = "rb_clickid", str(payload["rb_clickid"])
    else:
        parameter, identifier = "userid", str(payload["userid"])
    value = _number(payload["value"])
    goal = quote(str(payload["goal"]), safe=_SAFE)
    return (
        f"{tracker_url}?id={int(payload['pixel_id'])};e=RG%3A{value}/{goal};"
        f"{parameter}={quote(identifier, safe=_SAFE)}"
    )


def _number(value: Any) -> str:
    """``1500``, ``99.9`` — never an exponent (``1e+16``) nor a trailing ``.0``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"the event value must be a number, got {value!r}")
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class _Hit:
    """One event's result; ``outcome`` None: not sent (its batch stopped first)."""

    outcome: RowOutcome | None
    #: the tracker cannot take events now: (code, message) of the destination's stop
    blocker: tuple[str, str] | None = None


class TrackerClient:
    """Sends the events of one destination for one run (``close`` when done)."""

    def __init__(
        self,
        destination: str,
        tracker_url: str,
        *,
        concurrency: int,
        per_second: float,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.destination = destination
        self.tracker_url = tracker_url
        self.clock = clock
        self.pacer = Pacer(per_second)
        self._session = new_session(pool_size=concurrency, timeout=timeout, cookies=False)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"vk-{destination}")
        self._lock = threading.Lock()  # two batches may be sent at once
        self._sent: set[int] = set()  # delivery ids sent (or tried) in this run
        self._stopped: DestinationUnavailable | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        """One outcome per row, in order; raises ``DestinationUnavailable`` only for a
        batch none of whose rows was sent before in this run and none counted now."""
        with self._lock:
            fresh = self._sent.isdisjoint(r.delivery_id for r in rows)
            if self._stopped is not None and fresh:
                raise self._stopped  # nothing of this batch went out: it stays pending
            self._sent.update(r.delivery_id for r in rows)
        halt = threading.Event()
        urls = [event_url(self.tracker_url, r.payload) for r in rows]
        futures = [self._pool.submit(self._hit, url, halt) for url in urls]
        hits = [f.result() for f in futures]
        blockers = [h.blocker for h in hits if h.blocker is not None]
        if blockers and all(h.outcome is None or h.blocker is not None for h in hits):
            stopped = DestinationUnavailable(*blockers[0])
            with self._lock:
                self._stopped = stopped
            if fresh:
                raise stopped
        return [h.outcome or _not_sent() for h in hits]

    def _hit(self, url: str, halt: threading.Event) -> _Hit:
        if halt.is_set():
            return _Hit(None)
        self.pacer.wait()
        if halt.is_set():
            return _Hit(None)
        try:
            response = self._session.get_exact(url)
        except requests.ConnectionError as exc:
            if not _never_sent(exc):
                return _Hit(_no_answer(exc))
            halt.set()
            reason = _reason(exc)
            return _Hit(
                RowOutcome.transient(
                    "tracker_unreachable",
                    f"The VK pixel tracker could not be reached ({reason}); nothing was sent "
                    "for this conversion, so it is tried again.",
                ),
                blocker=("tracker_unreachable", self._unreachable(reason)),
            )
        except requests.RequestException as exc:  # a read timeout, a broken answer
            return _Hit(_no_answer(exc))
        with response:
            return self._classify(response, halt)

    def _classify(self, response: requests.Response, halt: threading.Event) -> _Hit:
        status = response.status_code
        if 200 <= status < 300:
            return _Hit(RowOutcome.delivered())
        said = f"{status} {response.reason or ''}".strip()
        body = excerpt(response)
        answer = f"{said}: {body}" if body else said
        if status == 429 or status >= 500:
            return _Hit(
                RowOutcome.transient(
                    f"http_{status}",
                    f"The VK pixel tracker answered {answer}; the event is sent again later.",
                    retry_after=retry_after(response.headers.get("Retry-After"), self.clock()),
                )
            )
        message = f"The VK pixel tracker refused the event with {answer}."
        if status not in REFUSED:
            return _Hit(RowOutcome.rejected(f"http_{status}", message))
        halt.set()
        stop = (
            f"The VK pixel tracker at {self.tracker_url} answered {said}, so "
            f"it takes no events there: check destinations.{self.destination}.tracker_url "
            "(the default is https://top-fwz1.mail.ru/tracker) and pixel_id. Nothing was "
            "counted; deliveries stay pending until the next run."
        )
        return _Hit(
            RowOutcome.rejected(
                f"http_{status}",
                f"{message} Check destinations.{self.destination}.tracker_url and pixel_id, "
                "then `convsync retry` the rejected rows.",
            ),
            blocker=("tracker_refused", stop),
        )

    def _unreachable(self, reason: str) -> str:
        return (
            f"The VK pixel tracker at {self.tracker_url} could not be reached ({reason}); "
            "nothing was sent. Deliveries stay pending and go out in a later run; if this "
            f"lasts, check this server's network access and destinations.{self.destination}"
            ".tracker_url."
        )


def _never_sent(exc: requests.ConnectionError) -> bool:
    """The failure came before the request was written: no connection was made."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), NewConnectionError)


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer within the read timeout"
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    if isinstance(inner, NewConnectionError):
        text = str(inner).lower()
        if "resolve" in text or "name or service" in text:
            return "the host name does not resolve"
        if "refused" in text:
            return "connection refused"
        return "no connection"
    return type(exc).__name__


def _no_answer(exc: requests.RequestException) -> RowOutcome:
    return RowOutcome(
        OutcomeKind.UNCERTAIN,
        "no_answer",
        f"The tracker request went out but no answer came back ({_reason(exc)}): it may or "
        "may not have reached VK Ads, so it is not re-sent automatically. Check the "
        "pixel's statistics for the goal, then run `convsync retry --state uncertain` to "
        "send it again if it is missing.",
    )


def _not_sent() -> RowOutcome:
    return RowOutcome.transient(
        "not_sent",
        "Not sent: the VK pixel tracker stopped taking events earlier in this batch; it is "
        "tried again.",
    )
