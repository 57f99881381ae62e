"""Request pacing shared by the threads of one connector: starts spaced evenly
(``Pacer``), or at most so many in any window of time (``WindowLimit``).

No library is used: tenacity paces retries, not a steady flow, and the few lines here
are simpler than a token-bucket dependency with a burst these connectors do not want.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

#: how often a waiting ``Pacer.wait`` asks whether to give up
GIVE_UP_POLL = 0.02


class Pacer:
    """At most ``per_second`` starts per second, spaced ``1 / per_second`` apart, with no
    burst after a pause: ``wait`` returns when the caller's slot has come."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: float | None = None

    def wait(self, give_up: Callable[[], bool] | None = None) -> float:
        """Block until this caller may start; the seconds it waited.

        ``give_up`` ends the wait early (the slot goes unused) once it answers true,
        asked every ``GIVE_UP_POLL`` seconds: a caller whose work was called off (its
        batch halted) does not sit out a slot it will not use."""
        with self._lock:  # reserve a slot; sleep outside the lock
            now = self._clock()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay <= 0:
            return 0.0
        if give_up is None:
            self._sleep(delay)
            return delay
        while (left := slot - self._clock()) > 0 and not give_up():
            self._sleep(min(left, GIVE_UP_POLL))
        return delay


class WindowLimit:
    """At most ``calls`` starts in any ``seconds``-long window: a burst is free, the
    ``calls + 1``-th start waits until the oldest one leaves the window. For quotas
    counted per minute (Google's 300 requests a minute), where even spacing would slow a
    small run for nothing."""

    def __init__(
        self,
        calls: int,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls <= 0 or seconds <= 0:
            raise ValueError("calls and seconds must be positive")
        self.calls = calls
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: deque[float] = deque()

    def wait(self) -> float:
        """Block until this caller may start; the seconds it waited."""
        with self._lock:  # reserve a start time; sleep outside the lock
            now = self._clock()
            while self._starts and self._starts[0] <= now - self.seconds:
                self._starts.popleft()
            start = now
            if len(self._starts) >= self.calls:
                start = max(now, self._starts[-self.calls] + self.seconds)
            self._starts.append(start)
        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return max(delay, 0.0)
