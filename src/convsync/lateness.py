"""What is late, judged one way for the run's status, ``/healthz`` and the alert rules:
a destination whose oldest due delivery has waited too long, and a source that had
records before and has produced none for too long.

Each caller brings its own limit (``health.max_pending_age`` and
``health.max_source_silence`` for the run and the service, the rules' own thresholds
for alerts); the facts and the words are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from convsync.config import AppConfig
from convsync.configbase import describe_age, describe_duration
from convsync.store.ledger import Ledger

#: how far before the silence limit a source's records are looked for: a source silent
#: for longer than both is judged no more (it never had any, or it was judged long ago)
SILENT_LOOKBACK = timedelta(days=28)


@dataclass(frozen=True, slots=True)
class Backlog:
    """A destination's due deliveries and when the longest-waiting one was recorded."""

    destination: str
    oldest: datetime | None

    def age(self, now: datetime) -> timedelta | None:
        return now - self.oldest if self.oldest is not None else None

    def too_old(self, now: datetime, limit: timedelta) -> bool:
        age = self.age(now)
        return age is not None and age > limit

    def words(self, now: datetime, limit: timedelta, key: str) -> str:
        """``deliveries have waited since … (7 h), longer than <key> (6 h)``."""
        assert self.oldest is not None
        waited = describe_age(now - self.oldest)
        return (
            f"deliveries have waited since {_utc(self.oldest)} ({waited}), "
            f"longer than {key} ({describe_duration(limit)})"
        )


def backlogs(app: AppConfig, ledger: Ledger, now: datetime) -> list[Backlog]:
    return [
        Backlog(name, ledger.oldest_due(destination=name, now=now)) for name in app.destinations
    ]


def newest_records(
    app: AppConfig, ledger: Ledger, now: datetime, limit: timedelta
) -> dict[str, datetime]:
    """Each source's newest record (as a conversion of one of its goals), for sources
    with one in the last ``limit`` + ``SILENT_LOOKBACK``."""
    newest = ledger.newest_per_goal(list(app.goals))
    out: dict[str, datetime] = {}
    for goal, at in newest.items():
        source = app.goals[goal].source
        if at >= now - limit - SILENT_LOOKBACK and (source not in out or at > out[source]):
            out[source] = at
    return {name: out[name] for name in app.sources if name in out}


def silent_sources(
    app: AppConfig, ledger: Ledger, now: datetime, limit: timedelta
) -> dict[str, datetime]:
    """Sources whose newest record is older than ``limit`` (and within the look-back):
    source → when its newest record was recorded."""
    return {
        name: at for name, at in newest_records(app, ledger, now, limit).items() if now - at > limit
    }


def silence_words(newest: datetime, now: datetime, limit: timedelta, key: str) -> str:
    """``no new records for 3 d (the last recorded …), longer than <key> (2 d)``."""
    return (
        f"no new records for {describe_age(now - newest)} (the last recorded {_utc(newest)}), "
        f"longer than {key} ({describe_duration(limit)})"
    )


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def late(app: AppConfig, ledger: Ledger, now: datetime) -> Mapping[str, str]:
    """What the health limits find late: ``destinations.<name>`` or ``sources.<name>`` →
    why, in words. A run with any of these is degraded; so is the service."""
    health = app.health
    out: dict[str, str] = {}
    for backlog in backlogs(app, ledger, now):
        if backlog.too_old(now, health.max_pending_age):
            out[f"destinations.{backlog.destination}"] = backlog.words(
                now, health.max_pending_age, "health.max_pending_age"
            )
    for source, newest in silent_sources(app, ledger, now, health.max_source_silence).items():
        out[f"sources.{source}"] = silence_words(
            newest, now, health.max_source_silence, "health.max_source_silence"
        )
    return out
