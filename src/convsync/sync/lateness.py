"""What is late, judged one way for the run's status and ``/healthz``: a destination
whose oldest due delivery has waited longer than ``health.max_pending_age``, and a
source that had records before and has produced none for longer than
``health.max_source_silence``. The ``source_silent`` alert rule reads the same newest
records (``newest_records``) and judges them by its own threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from convsync.config.models import AppConfig
from convsync.core.configtypes import describe_age, describe_duration
from convsync.store.ledger import Ledger

#: how far before the silence limit a source's records are looked for: a source silent
#: for longer than both is judged no more (it never had any, or it was judged long ago)
SILENT_LOOKBACK = timedelta(days=28)
#: the config keys of the health limits, as the words name them
PENDING_KEY, SILENCE_KEY = "health.max_pending_age", "health.max_source_silence"


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

    def words(self, now: datetime, limit: timedelta) -> str:
        """``deliveries have waited since … (7 h), longer than health.max_pending_age (6 h)``."""
        assert self.oldest is not None
        waited = describe_age(now - self.oldest)
        return (
            f"deliveries have waited since {_utc(self.oldest)} ({waited}), "
            f"longer than {PENDING_KEY} ({describe_duration(limit)})"
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


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class Late:
    """What a health limit finds late: a destination's backlog or a silent source."""

    kind: Literal["destination", "source"]
    name: str
    why: str

    @property
    def where(self) -> str:
        """The config path it is about: ``destinations.vk``, ``sources.shop``."""
        return f"{self.kind}s.{self.name}"


def silent_source_reasons(app: AppConfig, ledger: Ledger, now: datetime) -> dict[str, str]:
    """Sources silent for longer than ``health.max_source_silence`` → why, in words."""
    limit = app.health.max_source_silence
    return {
        name: f"no new records for {describe_age(now - newest)} (the last recorded "
        f"{_utc(newest)}), longer than {SILENCE_KEY} ({describe_duration(limit)})"
        for name, newest in silent_sources(app, ledger, now, limit).items()
    }


def late(app: AppConfig, ledger: Ledger, now: datetime) -> list[Late]:
    """What the health limits find late. A run with any of these is degraded; so is the
    service."""
    limit = app.health.max_pending_age
    out = [
        Late("destination", b.destination, b.words(now, limit))
        for b in backlogs(app, ledger, now)
        if b.too_old(now, limit)
    ]
    silent = silent_source_reasons(app, ledger, now)
    out += [Late("source", name, why) for name, why in silent.items()]
    return out
