"""When to ask a platform again about an upload it processes after answering (Metrica's
offline conversion files, the Data Manager API's requests): a schedule of waits that
grow, and a point after which convsync stops asking."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckSchedule:
    """Wait ``delays[0]`` before the first check, ``delays[n]`` after the n-th (the last
    one repeats); give up ``give_up_after`` the upload."""

    delays: tuple[timedelta, ...]
    give_up_after: timedelta

    def first_check(self, uploaded_at: datetime) -> datetime:
        return uploaded_at + self.delays[0]

    def deadline(self, details: Mapping[str, Any], now: datetime) -> datetime:
        return uploaded_at(details, now) + self.give_up_after

    def next_check(self, checks: int, details: Mapping[str, Any], now: datetime) -> datetime | None:
        """After ``checks`` checks, the next one; None when it is time to give up."""
        deadline = self.deadline(details, now)
        if now >= deadline:
            return None
        return min(now + self.delays[min(checks, len(self.delays) - 1)], deadline)


def uploaded_at(details: Mapping[str, Any], now: datetime) -> datetime:
    """When the upload was made (``details["uploaded_at"]``); ``now`` for a record that
    has none (written by hand)."""
    text = details.get("uploaded_at")
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return now
