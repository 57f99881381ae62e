"""Offline events through the pixel's server-to-server tracker: one GET per event,
``{tracker_url}?id=PIXEL;e=RG%3AVALUE/GOAL;rb_clickid=…`` (or ``userid=…``), sent by a
bounded pool of threads at a paced rate.

The tracker answers a 1×1 GIF whatever it did with the event: a 2xx is the only receipt
there is, and a request that may have reached it is never repeated automatically.

    2xx                                  delivered
    429, 5xx                             retried in the batch (below), then transient
    401, 403, 404, 410                   rejected; the batch stops sending (tracker refused)
    any other status                     rejected with the status and the body's start
    no connection (refused, DNS, TLS,    retried in the batch once the tracker has answered
      connect timeout)                   in this run, then transient; before that, the
                                         batch stops sending (tracker unreachable)
    sent, no answer (read timeout,       uncertain: may have been counted; never retried
      connection dropped)

**Retries in the batch.** An event that certainly was not counted (429, 5xx, no
connection made) goes back to the pool's queue with a backoff of its own
(``Retry-After``, else 0.1 s doubling to 2 s) and is tried up to ``retries`` more
times, while the pool goes on with the other events: queued events go oldest batch
first, so a batch waits for its retries but the pool never does. Every try goes
through the same pacing and the same ``concurrency`` threads, and a 429 also holds every
start back for its wait. Retries are budgeted (half a retry per event sent, plus a
reserve), so an outage does not multiply the requests. An event still failing, asked to
wait longer than ``MAX_RETRY_AFTER``, or over the budget comes back ``transient`` (for
the worker to retry or defer); so does a retry's wait when the run is stopping.

A batch in which the tracker counted nothing because it could not be reached or refused
every request stops the destination for the run (its rows stay pending), unless requests
of its rows reached the tracker before in this run (then only per-row outcomes can be
given safely).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests
from urllib3.exceptions import NewConnectionError

from convsync.core import network
from convsync.core.errors import DestinationUnavailable
from convsync.core.http import excerpt, new_session, retry_after
from convsync.core.model import OutboundRow, OutcomeKind, RowOutcome
from convsync.core.pacing import Pacer

#: statuses that say "this tracker URL takes no events": a wrong tracker_url or a ban
REFUSED = frozenset({401, 403, 404, 410})
# Left as they are in a value: RFC 3986 unreserved characters and the sub-delimiters that
# mean nothing to the tracker's query. ';', '/', '&', '=', '?', '#', '%' never get here
# (pre-flight rejects them); anything else, e.g. a Cyrillic goal name, is percent-encoded.
_SAFE = "-._~!$'()*+,:@"

#: (connect, read) seconds; the tracker answers a 1×1 GIF, the API small JSON documents
DEFAULT_TIMEOUT = (5.0, 20.0)

#: tries after the first of an event the tracker certainly did not count, in its batch
EVENT_RETRIES = 5
#: the backoff before an event's first retry, doubled for each next one up to the max
FIRST_RETRY_WAIT = 0.1
MAX_RETRY_WAIT = 2.0
#: a longer Retry-After is not waited out in the batch: the event comes back transient
MAX_RETRY_AFTER = 5.0
#: the retry budget: each event's first try earns half a retry, a retry spends one, and
#: a reserve of one batch's worth, so a tracker that fails most requests (an outage) is
#: not sent several requests per event (the rest come back transient, for the worker)
RETRY_BUDGET_RATIO = 0.5
RETRY_BUDGET_RESERVE = 40.0


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


_NOT_SENT = _Hit(None)


@dataclass(frozen=True, slots=True)
class _Tried:
    """What one request of an event came to."""

    hit: _Hit
    retry: bool = False  # certainly not counted: it may be tried again
    asked: float | None = None  # the tracker's Retry-After, in seconds
    slow_down: bool = False  # a 429: every start waits
    halt: bool = False  # send no more of this batch
    reached: bool = True  # False: no connection was made, nothing was written


@dataclass(eq=False, slots=True)
class _Batch:
    """The events of one ``send``, settled one by one; ``done`` when all are."""

    seq: int
    hits: list[_Hit | None]
    left: int
    halted: bool = False  # the tracker refused or could not be reached: send no more
    error: BaseException | None = None  # a bug in a pool thread, raised by ``send``
    reached: set[int] = field(default_factory=set)  # events a request may have reached
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False, slots=True)
class _Event:
    batch: _Batch
    index: int
    url: str
    tries: int = 0
    #: the last try's (transient) result while the event waits to be tried again
    last: _Hit = _NOT_SENT
    settled: bool = False


class TrackerClient:
    """Sends the events of one destination for one run (``close`` when done).

    ``concurrency`` threads take events from one queue — ready events oldest batch
    first, events waiting out a retry's backoff apart until due — so two batches in
    flight share the pool and the pacing, and a retry holds back its batch only.
    """

    def __init__(
        self,
        destination: str,
        tracker_url: str,
        *,
        concurrency: int,
        per_second: float,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retries: int = EVENT_RETRIES,
        first_wait: float = FIRST_RETRY_WAIT,
        stop: threading.Event | None = None,
    ) -> None:
        self.destination = destination
        self.tracker_url = tracker_url
        self.clock = clock
        self.retries = retries
        self.first_wait = first_wait
        #: set when the run is stopping: no more waiting for retries
        self.stop = stop
        self.pacer = Pacer(per_second)
        self.address = network.Address(
            "VK pixel tracker", tracker_url, f"destinations.{destination}.tracker_url", timeout
        )
        self._session = new_session(pool_size=concurrency, timeout=timeout, cookies=False)
        self._lock = threading.Lock()  # two batches may be sent at once
        #: delivery ids whose request reached the tracker (or may have) in this run
        self._sent: set[int] = set()
        self._stopped: DestinationUnavailable | None = None
        # the queue: ready (batch seq, index, event); waiting (due, batch seq, index, event)
        self._cond = threading.Condition()
        self._ready: list[tuple[int, int, _Event]] = []
        self._waiting: list[tuple[float, int, int, _Event]] = []
        self._seq = itertools.count()
        self._closed = False
        self._answered = False  # the tracker answered a request in this run
        self._paused_until = 0.0  # a 429's wait: no start before (time.monotonic)
        self._budget = RETRY_BUDGET_RESERVE  # retries the budget allows now
        self._threads = [
            threading.Thread(target=self._work, name=f"vk-{destination}-{n}", daemon=True)
            for n in range(concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._flush(lambda event: True)
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        self._session.close()

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        """One outcome per row, in order; raises ``DestinationUnavailable`` only for a
        batch none of whose rows reached the tracker in this run (none may have been
        counted: its rows can stay pending). A batch the worker claims again after a
        stop released it is such a batch."""
        if not rows:
            return []
        with self._lock:
            fresh = self._sent.isdisjoint(r.delivery_id for r in rows)
            if self._stopped is not None and fresh:
                raise self._stopped  # nothing of this batch went out: it stays pending
        urls = [event_url(self.tracker_url, r.payload) for r in rows]
        with self._cond:
            if self._closed:
                raise RuntimeError("the tracker client is closed")
            batch = _Batch(next(self._seq), [None] * len(urls), len(urls))
            for index, url in enumerate(urls):
                heapq.heappush(self._ready, (batch.seq, index, _Event(batch, index, url)))
            self._cond.notify_all()
        batch.done.wait()
        with self._lock:
            self._sent.update(rows[index].delivery_id for index in batch.reached)
        if batch.error is not None:
            raise batch.error
        hits = [h or _NOT_SENT for h in batch.hits]
        blockers = [h.blocker for h in hits if h.blocker is not None]
        if blockers and all(h.outcome is None or h.blocker is not None for h in hits):
            stopped = DestinationUnavailable(*blockers[0])
            with self._lock:
                self._stopped = stopped
            if fresh:
                raise stopped
        return [h.outcome or _not_sent() for h in hits]

    # --- the pool's threads ---

    def _work(self) -> None:
        while (event := self._take()) is not None:
            try:
                self._try(event)
            except BaseException as exc:  # a bug: fail the batch, not hang it  # noqa: BLE001
                with self._cond:
                    event.batch.error = event.batch.error or exc
                    self._settle(event, _NOT_SENT)

    def _take(self) -> _Event | None:
        """The next event to try, oldest batch first; None once closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                stopping = self.stop is not None and self.stop.is_set()
                while self._waiting and (stopping or self._waiting[0][0] <= now):
                    _, seq, index, event = heapq.heappop(self._waiting)
                    if stopping:
                        self._settle(event, event.last)
                    else:
                        heapq.heappush(self._ready, (seq, index, event))
                while self._ready:
                    event = heapq.heappop(self._ready)[2]
                    if not event.batch.halted:
                        return event
                    self._settle(event, event.last)
                timeout = self._waiting[0][0] - now if self._waiting else None
                if self.stop is not None and self._waiting:
                    timeout = min(timeout or 0.2, 0.2)  # notice a stop while waiting
                self._cond.wait(timeout)
        return None

    def _try(self, event: _Event) -> None:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self.pacer.wait(give_up=lambda: event.batch.halted or self._closed)
        if event.batch.halted:
            with self._cond:
                self._settle(event, event.last)
            return
        event.tries += 1
        tried = self._request(event.url)
        with self._cond:
            if event.tries == 1:
                earned = self._budget + RETRY_BUDGET_RATIO
                self._budget = min(earned, RETRY_BUDGET_RESERVE)
            if tried.reached:
                event.batch.reached.add(event.index)
            if tried.halt:
                self._halt(event.batch)
            wait = None
            if tried.retry:
                wait = tried.asked if tried.asked is not None else self._backoff(event.tries)
                if tried.slow_down:  # a 429: the tracker wants fewer requests from us
                    until = time.monotonic() + min(wait, MAX_RETRY_AFTER)
                    self._paused_until = max(self._paused_until, until)
            if (
                wait is None
                or wait > MAX_RETRY_AFTER
                or event.tries > self.retries
                or self._budget < 1
                or event.batch.halted
                or self._closed
                or (self.stop is not None and self.stop.is_set())
            ):
                self._settle(event, tried.hit)
                return
            self._budget -= 1
            event.last = tried.hit
            due = time.monotonic() + wait
            heapq.heappush(self._waiting, (due, event.batch.seq, event.index, event))
            self._cond.notify()  # a thread asleep until a later due wakes for this one

    def _settle(self, event: _Event, hit: _Hit) -> None:
        """(with ``_cond`` held) ``hit`` is the event's result."""
        if event.settled:
            return
        event.settled = True
        batch = event.batch
        batch.hits[event.index] = hit
        batch.left -= 1
        if batch.left == 0:
            batch.done.set()

    def _halt(self, batch: _Batch) -> None:
        """(with ``_cond`` held) send nothing more of ``batch``: its queued events are
        settled now (not sent, or their last try's result)."""
        batch.halted = True
        self._flush(lambda event: event.batch is batch)

    def _flush(self, which: Callable[[_Event], bool]) -> None:
        """(with ``_cond`` held) settle the queued events ``which`` picks."""
        ready = [item for item in self._ready if which(item[2])]
        waiting = [item for item in self._waiting if which(item[3])]
        if not ready and not waiting:
            return
        for event in [item[2] for item in ready] + [item[3] for item in waiting]:
            self._settle(event, event.last)
        self._ready = [item for item in self._ready if not which(item[2])]
        self._waiting = [item for item in self._waiting if not which(item[3])]
        heapq.heapify(self._ready)
        heapq.heapify(self._waiting)

    def _backoff(self, tries: int) -> float:
        return float(min(self.first_wait * 2 ** (tries - 1), MAX_RETRY_WAIT))

    # --- one request ---

    def _request(self, url: str) -> _Tried:
        try:
            response = self._session.get_exact(url)
        except requests.ConnectionError as exc:
            if not _never_sent(exc):
                return _Tried(_Hit(self._no_answer(exc)))
            said = network.describe(exc, self.address)
            hit = _Hit(
                # nothing was sent: the row is tried again (in the batch, or later)
                RowOutcome.transient("tracker_unreachable", f"Not sent: {said}"),
                blocker=("tracker_unreachable", said),
            )
            with self._cond:
                answered = self._answered
            # a tracker not reached yet in this run: stop the batch at once; one that
            # answered before: a connection that failed is tried again
            return _Tried(hit, retry=answered, halt=not answered, reached=False)
        except requests.RequestException as exc:  # a read timeout, a broken answer
            return _Tried(_Hit(self._no_answer(exc)))
        with self._cond:
            self._answered = True
        with response:
            return self._classify(response)

    def _classify(self, response: requests.Response) -> _Tried:
        status = response.status_code
        if 200 <= status < 300:
            return _Tried(_Hit(RowOutcome.delivered()))
        said = f"{status} {response.reason or ''}".strip()
        body = excerpt(response)
        answer = f"{said}: {body}" if body else said
        if status == 429 or status >= 500:
            asked = retry_after(response.headers.get("Retry-After"), self.clock())
            outcome = RowOutcome.transient(
                f"http_{status}",
                f"The VK pixel tracker answered {answer}; the event is sent again later.",
                retry_after=asked,
            )
            return _Tried(_Hit(outcome), retry=True, asked=asked, slow_down=status == 429)
        message = f"The VK pixel tracker refused the event with {answer}."
        if status not in REFUSED:
            return _Tried(_Hit(RowOutcome.rejected(f"http_{status}", message)))
        stop = (
            f"The VK pixel tracker at {self.tracker_url} answered {said}, so "
            f"it takes no events there: check destinations.{self.destination}.tracker_url "
            "(the default is https://top-fwz1.mail.ru/tracker) and pixel_id. Nothing was "
            "counted; deliveries stay pending until the next run."
        )
        hit = _Hit(
            RowOutcome.rejected(
                f"http_{status}",
                f"{message} Check destinations.{self.destination}.tracker_url and pixel_id, "
                "then `convsync retry` the rejected rows.",
            ),
            blocker=("tracker_refused", stop),
        )
        return _Tried(hit, halt=True)

    def _no_answer(self, exc: requests.RequestException) -> RowOutcome:
        return RowOutcome(
            OutcomeKind.UNCERTAIN,
            "no_answer",
            "The tracker request went out but no answer came back "
            f"({network.cause(exc, self.address.timeout)}): it may or may not have reached "
            "VK Ads, so it is not re-sent automatically. Check the pixel's statistics for the "
            "goal, then run `convsync retry --state uncertain` to send it again if it is "
            "missing.",
        )


def _never_sent(exc: requests.ConnectionError) -> bool:
    """The failure came before the request was written: no connection was made."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), NewConnectionError)


def _not_sent() -> RowOutcome:
    return RowOutcome.transient(
        "not_sent",
        "Not sent: the VK pixel tracker stopped taking events earlier in this batch; it is "
        "tried again.",
    )
