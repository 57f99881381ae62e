"""What the alert rules judge, read from the ledger: the finished runs, each goal's
volume today and on the same weekday before, each destination's daily match verdicts,
its backlog, and each source's newest record.

Only the facts of enabled rules are read. Days are the config's ``timezone`` days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from convsync.config.alerts import AlertRules
from convsync.config.models import AppConfig
from convsync.store.daily import Window
from convsync.store.ledger import Ledger
from convsync.sync.lateness import newest_records

#: runs read beyond the rule's count: runs that did not reach a destination (validation,
#: a stop before the deliver step) are passed over, and a long streak is counted whole
RUN_MARGIN = 50
#: days of match verdicts before today that make a destination's usual rate
MATCH_DAYS = 14
#: windows end "until now" inclusive: a row written at the moment of judging counts
_UP_TO_AND_INCLUDING = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a finished run did, from its summary (``RunSummary.as_dict``)."""

    run_id: str
    finished_at: datetime
    destinations: Mapping[str, Mapping[str, Any]]
    sources: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class GoalVolume:
    """Conversions of a goal today until ``until`` (local time), and on the same weekday
    of each week before until the same time of day (the latest week first)."""

    goal: str
    until: datetime
    today: int
    before: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MatchVerdicts:
    """``(matched, unmatched)`` of a destination's deliveries settled today, and on each
    of the days before (the latest first)."""

    destination: str
    today: tuple[int, int]
    before: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Backlog:
    """A destination's due deliveries (pending, or deferred and due) and when the
    longest-waiting one was recorded."""

    destination: str
    due: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class Facts:
    now: datetime
    zone: ZoneInfo
    runs: Sequence[RunFacts] = ()
    volumes: Sequence[GoalVolume] = ()
    verdicts: Sequence[MatchVerdicts] = ()
    backlogs: Sequence[Backlog] = ()
    #: sources with a record in the look-back window → when the newest was recorded
    last_records: Mapping[str, datetime] = field(default_factory=dict)


def gather(app: AppConfig, rules: AlertRules, ledger: Ledger, now: datetime) -> Facts:
    """The facts the enabled ``rules`` need, as of ``now``."""
    zone = app.zone
    local_now = now.astimezone(zone)
    runs: list[RunFacts] = []
    if rules.destination_failing.enabled or rules.rejected_share.enabled:
        runs = run_facts(ledger, rules.destination_failing.runs + RUN_MARGIN)
    volumes: list[GoalVolume] = []
    if rules.volume_drop.enabled:
        volumes = goal_volumes(ledger, list(app.goals), local_now, rules.volume_drop.weeks)
    verdicts: list[MatchVerdicts] = []
    if rules.match_rate_drop.enabled:
        verdicts = match_verdicts(ledger, list(app.destinations), local_now)
    backlogs: list[Backlog] = []
    if rules.backlog_age.enabled:
        backlogs = [
            Backlog(
                name,
                ledger.count_due(destination=name, now=now),
                ledger.oldest_due(destination=name, now=now),
            )
            for name in app.destinations
        ]
    last_records: dict[str, datetime] = {}
    if rules.source_silent.enabled:
        last_records = newest_records(app, ledger, now, rules.source_silent.after)
    return Facts(now, zone, runs, volumes, verdicts, backlogs, last_records)


def run_facts(ledger: Ledger, limit: int) -> list[RunFacts]:
    """The newest finished runs, newest first."""
    out: list[RunFacts] = []
    for row in ledger.finished_runs(limit):
        summary = row.summary or {}
        assert row.finished_at is not None  # finished_runs reads finished runs only
        out.append(
            RunFacts(
                row.run_id,
                row.finished_at,
                _mappings(summary.get("destinations")),
                _mappings(summary.get("sources")),
            )
        )
    return out


def _mappings(value: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, Mapping)}


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def goal_volumes(
    ledger: Ledger, goals: Sequence[str], local_now: datetime, weeks: int
) -> list[GoalVolume]:
    """Each goal's conversions today so far and on the same weekday of the ``weeks``
    weeks before, until the same time of day (wall-clock: a DST change moves nothing)."""
    zone = local_now.tzinfo
    assert isinstance(zone, ZoneInfo)
    today = local_now.date()
    clock = local_now.time().replace(tzinfo=None)
    windows: list[Window] = []
    for week in range(weeks + 1):
        day = today - timedelta(weeks=week)
        until = datetime.combine(day, clock, tzinfo=zone) + _UP_TO_AND_INCLUDING
        windows.append((day_start(day, zone), until))
    counts = ledger.goal_volumes(goals, windows)
    out = []
    for goal in goals:
        per_window = counts.get(goal, [0] * len(windows))
        out.append(GoalVolume(goal, local_now, per_window[0], tuple(per_window[1:])))
    return out


def match_verdicts(
    ledger: Ledger, destinations: Sequence[str], local_now: datetime
) -> list[MatchVerdicts]:
    """Each destination's matched and unmatched deliveries settled today so far and on
    each of the ``MATCH_DAYS`` days before."""
    zone = local_now.tzinfo
    assert isinstance(zone, ZoneInfo)
    today = local_now.date()
    days = [today - timedelta(days=n) for n in range(MATCH_DAYS + 1)]  # today first
    windows = [(day_start(day, zone), day_start(day + timedelta(days=1), zone)) for day in days]
    counts = ledger.daily_verdicts(destinations, windows)
    out = []
    for name in destinations:
        per_window = counts.get(name, [(0, 0)] * len(windows))
        out.append(MatchVerdicts(name, per_window[0], tuple(per_window[1:])))
    return out
