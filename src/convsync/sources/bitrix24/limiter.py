"""The portal's own leaky bucket, mirrored on our side so requests wait before Bitrix24
refuses them (``QUERY_LIMIT_EXCEEDED``).

Bitrix24 counts each request into a bucket that drains at a steady rate and refuses
requests while it is full. Mirroring it (rather than spacing requests evenly) keeps the
burst the portal allows: a small pull goes at full speed, a long one settles at the
drain rate. No library is used: the model is the platform's, and it is a few lines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LeakyBucket:
    """At most ``capacity`` requests in the bucket, draining ``per_second``."""

    def __init__(
        self,
        per_second: float,
        capacity: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0 or capacity < 1:
            raise ValueError("per_second must be positive and capacity at least 1")
        self.per_second = per_second
        # one request of headroom: the portal counts a request when it arrives, and
        # arrivals bunch up on the network, so a bucket kept exactly full is refused
        self.capacity = float(max(1, capacity - 1))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._level = 0.0
        self._at = clock()

    def acquire(self) -> float:
        """Block until one more request fits in the bucket; the seconds waited."""
        with self._lock:
            now = self._clock()
            self._level = max(0.0, self._level - (now - self._at) * self.per_second)
            self._at = now
            # room for one more: the level must be at most capacity - 1 before adding
            excess = self._level + 1.0 - self.capacity
            delay = excess / self.per_second if excess > 0 else 0.0
            # the request counts from the moment it will be sent
            self._level += 1.0
        if delay > 0:
            self._sleep(delay)
        return delay

    def fill(self) -> None:
        """The portal said the bucket is full: count it full from now."""
        with self._lock:
            self._level = self.capacity
            self._at = self._clock()
