"""A clock tests set by hand: ``clock.now += timedelta(hours=6)`` and the pipeline, its
destinations and sources see the new moment."""

from __future__ import annotations

from datetime import UTC, datetime

#: a day or more after the sample conversions of most tests (2026-11-20 … 24)
DEFAULT_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = DEFAULT_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
