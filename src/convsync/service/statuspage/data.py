"""What the status page shows, read from the ledger in one go: the service's health (the
same document as ``/healthz``), the funnel of today, 7 and 30 days (the same as
``convsync report``), each goal's daily volume with the days the ``volume_drop`` rule
judges too low, each destination's daily match rate, the firing alerts, the recent runs
and the recent failures.

Days are the config's ``timezone`` days. "Today" starts at local midnight, "7 days" at
the midnight six days before, "30 days" at the midnight 29 days before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from convsync.config.alerts import AlertRules, VolumeDropRule
from convsync.config.models import AppConfig
from convsync.service.alerts import rules as alert_rules
from convsync.service.alerts.facts import GoalVolume, day_start, goal_volumes
from convsync.store.alerting import AlertStateRow
from convsync.store.daily import Window
from convsync.store.funnel import Funnel
from convsync.store.ledger import Ledger
from convsync.store.reports import FailureRow
from convsync.store.runs import RunRow

#: the funnel's periods: key → days back from today, today included
PERIODS = {"today": 1, "7d": 7, "30d": 30}
#: days of the volume and match-rate charts, today included
CHART_DAYS = 30
RECENT_RUNS = 10
RECENT_FAILURES = 20
#: how far back the recent failures are looked for
FAILURES_SINCE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    since: datetime
    funnel: Funnel


@dataclass(frozen=True, slots=True)
class VolumeDay:
    day: date
    count: int
    #: what the volume_drop rule expected on this day (None: too few to judge)
    usual: float | None = None
    #: how far below the usual, in percent, when the rule finds the day too low
    drop: float | None = None

    @property
    def anomaly(self) -> bool:
        return self.drop is not None


@dataclass(frozen=True, slots=True)
class RateDay:
    day: date
    matched: int
    unmatched: int

    @property
    def rate(self) -> float | None:
        judged = self.matched + self.unmatched
        return self.matched / judged if judged else None


@dataclass(frozen=True, slots=True)
class PageData:
    now: datetime
    zone: ZoneInfo
    #: the health document of ``/healthz`` (``healthz.assess`` and the schedule)
    health: Mapping[str, Any]
    #: destination name → its platform (``type`` in the config)
    platforms: Mapping[str, str]
    periods: Sequence[Period]
    volumes: Mapping[str, Sequence[VolumeDay]]
    rates: Mapping[str, Sequence[RateDay]]
    alerts: Sequence[AlertStateRow]
    runs: Sequence[RunRow]
    failures: Sequence[FailureRow]


def gather(app: AppConfig, ledger: Ledger, health: Mapping[str, Any], now: datetime) -> PageData:
    zone = app.zone
    today = now.astimezone(zone).date()
    periods = []
    for key, days in PERIODS.items():
        since = day_start(today - timedelta(days=days - 1), zone)
        periods.append(Period(key, since, ledger.funnel(since)))
    rules = app.alerts.rules if app.alerts is not None else AlertRules()
    return PageData(
        now=now,
        zone=zone,
        health=health,
        platforms={name: cfg.type for name, cfg in app.destinations.items()},
        periods=periods,
        volumes=daily_volumes(ledger, list(app.goals), now.astimezone(zone), rules.volume_drop),
        rates=daily_rates(ledger, today, zone),
        alerts=ledger.alert_states(firing_only=True),
        runs=ledger.recent_runs(RECENT_RUNS),
        failures=ledger.failures(now - FAILURES_SINCE, RECENT_FAILURES),
    )


def _days(today: date, zone: ZoneInfo, count: int) -> list[Window]:
    """The windows of the ``count`` days up to ``today``, the oldest first."""
    days = [today - timedelta(days=n) for n in range(count - 1, -1, -1)]
    return [(day_start(d, zone), day_start(d + timedelta(days=1), zone)) for d in days]


def daily_volumes(
    ledger: Ledger, goals: Sequence[str], local_now: datetime, rule: VolumeDropRule
) -> dict[str, list[VolumeDay]]:
    """Each goal's conversions per day over ``CHART_DAYS`` days, each past day judged as
    the ``volume_drop`` alert judges today: against the median of the same weekday of
    the ``rule.weeks`` weeks before. Today is judged as the alert judges it, until now
    (so the page marks what the alert fires on)."""
    zone = local_now.tzinfo
    assert isinstance(zone, ZoneInfo)
    today = local_now.date()
    lookback = rule.weeks * 7
    windows = _days(today, zone, CHART_DAYS + lookback)
    counts = ledger.goal_volumes(goals, windows)
    now_judged = {v.goal: v for v in goal_volumes(ledger, goals, local_now, rule.weeks)}
    out: dict[str, list[VolumeDay]] = {}
    for goal in goals:
        per_day = counts.get(goal, [0] * len(windows))
        days: list[VolumeDay] = []
        for i in range(lookback, len(windows)):
            day = windows[i][0].date()
            if day == today:
                volume = now_judged[goal]
            else:
                before = tuple(per_day[i - 7 * w] for w in range(1, rule.weeks + 1))
                until = windows[i][1] - timedelta(microseconds=1)
                volume = GoalVolume(goal, until, per_day[i], before)
            days.append(_judged(rule, day, per_day[i], volume))
        out[goal] = days
    return out


def _judged(rule: VolumeDropRule, day: date, count: int, volume: GoalVolume) -> VolumeDay:
    verdict = alert_rules.volume_drop(rule, [volume])
    if not verdict:  # too few to judge
        return VolumeDay(day, count)
    judged = verdict[0]
    drop = float(judged.details["drop_percent"]) if judged.firing else None
    return VolumeDay(day, count, float(judged.details["usual"]), drop)


def daily_rates(ledger: Ledger, today: date, zone: ZoneInfo) -> dict[str, list[RateDay]]:
    """Each destination's matched and unmatched deliveries among those planned on each
    day, for the destinations whose platform reports matches."""
    windows = _days(today, zone, CHART_DAYS)
    verdicts = ledger.planned_verdicts(windows)
    return {
        name: [RateDay(w[0].date(), m, u) for w, (m, u) in zip(windows, per_day, strict=True)]
        for name, per_day in sorted(verdicts.items())
    }
