"""The fake pixel tracker: records each hit's raw request line, parses the tracker's
``id=…;e=RG%3AVALUE/GOAL;rb_clickid=…`` query the way it is documented, counts requests
in flight and answers after a configurable latency, with scripted failures and a rate of
seeded, deterministic faults (``inject_faults``)."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

#: what the real tracker answers: a transparent 1×1 GIF
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
#: the visitor cookie the tracker sets; a server-to-server client must not send it back
COOKIE = "tmr_lvid=4b5d6e7f8a9b0c1d2e3f; Path=/; Max-Age=31536000"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = GIF
    #: seconds to wait before answering, on top of the tracker's latency
    delay: float = 0.0
    #: close the connection instead of answering (the request was read: it may count)
    drop: bool = False


@dataclass(slots=True)
class Hit:
    """One request the tracker received."""

    request_line: str  # as received: "GET /tracker?id=…;e=… HTTP/1.1"
    path: str
    query: str
    headers: dict[str, str]
    started: float  # time.monotonic()
    finished: float | None = None
    status: int | None = None

    @property
    def params(self) -> dict[str, str]:
        """The ``;``-separated parameters, raw (still percent-encoded)."""
        return dict(part.split("=", 1) for part in self.query.split(";") if "=" in part)

    @property
    def event(self) -> tuple[str, str]:
        """``(value, goal)`` of ``e=RG%3AVALUE/GOAL``, decoded as the tracker does."""
        kind, _, rest = unquote(self.params["e"]).partition(":")
        assert kind == "RG", self.params["e"]
        value, _, goal = rest.partition("/")
        return value, goal


class Hold:
    """Requests block until ``release``; ``wait_for(n)`` waits until ``n`` are held."""

    def __init__(self) -> None:
        self._released = threading.Event()
        self._held = 0
        self._cond = threading.Condition()

    def enter(self) -> None:
        with self._cond:
            self._held += 1
            self._cond.notify_all()
        self._released.wait(60)

    def wait_for(self, n: int, timeout: float = 60) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._held >= n, timeout)

    def release(self) -> None:
        self._released.set()


class FakeTracker:
    def __init__(self, path: str = "/tracker") -> None:
        self.path = path
        self.latency = 0.0  # seconds per request
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._rules: list[tuple[Callable[[Hit], bool], Reply]] = []
        self._hold: Hold | None = None
        # injected faults: (rate, seed, reply); how often each query was received
        self._faults: tuple[float, int, Reply] | None = None
        self._received: dict[str, int] = {}
        self.faults = 0  # requests answered with an injected fault

    # --- what tests set up ---

    def script(self, *replies: Reply) -> None:
        """The next requests get these replies, in order (then the rules, then 200)."""
        with self._lock:
            self._script.extend(replies)

    def reply_when(self, match: Callable[[Hit], bool], reply: Reply) -> None:
        with self._lock:
            self._rules.append((match, reply))

    def inject_faults(self, rate: float, seed: int = 0, reply: Reply | None = None) -> None:
        """From now on a share ``rate`` of the requests get ``reply`` (default: a 503, the
        failure the tracker certainly did not count) instead of the GIF (after the script
        and the rules). Seeded and deterministic whatever order threads send in: the n-th
        request of an event fails when ``Random(f"{seed}:{query}:{n}")`` draws below
        ``rate``. A rate of 0 stops them."""
        with self._lock:
            self._faults = (rate, seed, reply or Reply(503)) if rate > 0 else None

    def hold(self) -> Hold:
        """From now on requests wait (they are recorded first) until released."""
        hold = Hold()
        with self._lock:
            self._hold = hold
        return hold

    # --- what tests read ---

    @property
    def request_lines(self) -> list[str]:
        with self._lock:
            return [h.request_line for h in self.hits]

    def starts(self) -> list[float]:
        with self._lock:
            return sorted(h.started for h in self.hits)

    def counted(self) -> dict[str, int]:
        """How many times each event (query) was answered 2xx: counted by VK."""
        with self._lock:
            out: dict[str, int] = {}
            for h in self.hits:
                if h.status is not None and 200 <= h.status < 300:
                    out[h.query] = out.get(h.query, 0) + 1
            return out

    def reset(self) -> None:
        """Forget the hits and the counts (a bench's next phase); faults stay as set."""
        with self._lock:
            self.hits.clear()
            self.max_in_flight = 0
            self.faults = 0
            self._received.clear()

    # --- the endpoint (called by the server's handler threads) ---

    def receive(self, request_line: str, target: str, headers: dict[str, str]) -> Reply:
        path, _, query = target.partition("?")
        hit = Hit(request_line, path, query, headers, time.monotonic())
        with self._lock:
            self.hits.append(hit)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            nth = self._received.get(query, 0) + 1
            self._received[query] = nth
            reply = self._script.popleft() if self._script else None
            if reply is None:
                reply = next((r for match, r in self._rules if match(hit)), None)
            if reply is None and self._faults is not None:
                rate, seed, fault = self._faults
                if random.Random(f"{seed}:{query}:{nth}").random() < rate:
                    reply = fault
                    self.faults += 1
            if reply is None:
                reply = Reply()
            hold = self._hold
            latency = self.latency
        try:
            if hold is not None:
                hold.enter()
            if latency + reply.delay > 0:
                time.sleep(latency + reply.delay)
        finally:
            with self._lock:
                self.in_flight -= 1
                hit.finished = time.monotonic()
                hit.status = None if reply.drop else reply.status
        return reply
