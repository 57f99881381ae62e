"""The alert rules: each a pure function from the ledger's facts (``facts.py``) to
conditions — per subject (a destination, a goal, a source, the runs), whether it fires,
in words with the numbers.

A rule says nothing of a subject it cannot judge (too few rows today, no history yet):
the subject's alert then stays as it was. Messages name config names and counts only,
never a record's personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from convsync.config.alerts import (
    AlertRules,
    BacklogAgeRule,
    DestinationFailingRule,
    MatchRateDropRule,
    RejectedShareRule,
    SourceSilentRule,
    VolumeDropRule,
)
from convsync.config.models import AppConfig
from convsync.core.configtypes import describe_age, describe_duration
from convsync.service.alerts.facts import Backlog, Facts, GoalVolume, MatchVerdicts, RunFacts

DESTINATION_FAILING = "destination_failing"
REJECTED_SHARE = "rejected_share"
VOLUME_DROP = "volume_drop"
MATCH_RATE_DROP = "match_rate_drop"
BACKLOG_AGE = "backlog_age"
SOURCE_SILENT = "source_silent"

#: the subject of the rules about a run as a whole
RUNS = "runs"

#: the outcomes of a run's deliveries that count as handled (a row released untouched
#: when its destination stopped, ``pending``, does not)
HANDLED_STATES = ("delivered", "deferred", "rejected", "uncertain", "unclear")

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's verdict on one subject: fires or not, and why, in words."""

    rule: str
    subject: str
    firing: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


def evaluate(rules: AlertRules, facts: Facts) -> list[Condition]:
    """The conditions of every enabled rule."""
    out: list[Condition] = []
    if rules.destination_failing.enabled:
        out += destination_failing(rules.destination_failing, facts.runs)
    if rules.rejected_share.enabled:
        out += rejected_share(rules.rejected_share, facts.runs)
    if rules.volume_drop.enabled:
        out += volume_drop(rules.volume_drop, facts.volumes)
    if rules.match_rate_drop.enabled:
        out += match_rate_drop(rules.match_rate_drop, facts.verdicts)
    if rules.backlog_age.enabled:
        out += backlog_age(rules.backlog_age, facts.backlogs, facts.now, facts.zone)
    if rules.source_silent.enabled:
        out += source_silent(rules.source_silent, facts.last_records, facts.now, facts.zone)
    return out


def subjects(rules: AlertRules, app: AppConfig) -> dict[str, frozenset[str]]:
    """Enabled rule → the subjects it watches in this config (an alert of any other
    rule or subject is no longer checked)."""
    destinations, goals, sources = (
        frozenset(app.destinations),
        frozenset(app.goals),
        frozenset(app.sources),
    )
    watched = {
        DESTINATION_FAILING: (rules.destination_failing.enabled, destinations),
        REJECTED_SHARE: (rules.rejected_share.enabled, frozenset({RUNS})),
        VOLUME_DROP: (rules.volume_drop.enabled, goals),
        MATCH_RATE_DROP: (rules.match_rate_drop.enabled, destinations),
        BACKLOG_AGE: (rules.backlog_age.enabled, destinations),
        SOURCE_SILENT: (rules.source_silent.enabled, sources),
    }
    return {rule: names for rule, (enabled, names) in watched.items() if enabled}


# --- the rules ---------------------------------------------------------------------------


def destination_failing(rule: DestinationFailingRule, runs: Sequence[RunFacts]) -> list[Condition]:
    """A destination that stopped (or failed) in each of its last ``rule.runs`` runs.
    Runs that did not reach it (``--validate``, a stop before delivering) are passed over."""
    histories: dict[str, list[tuple[RunFacts, Mapping[str, Any]]]] = {}
    for run in runs:  # newest first
        for name, stats in run.destinations.items():
            histories.setdefault(name, []).append((run, stats))
    out = []
    for name, history in sorted(histories.items()):
        streak = 0
        for _, stats in history:
            if not _failure(stats):
                break
            streak += 1
        latest_run, latest = history[0]
        reason = _failure(latest)
        if streak >= rule.runs:
            verb = "stopped" if latest.get("stopped") else "failed"
            message = f"{name} {verb} for {_runs(streak)} in a row: {reason}"
        elif reason:
            message = f"{name} stopped for {_runs(streak)} in a row, fewer than {rule.runs}"
        else:
            delivered = _count(latest.get("delivered"))
            message = (
                f"{name} works again: its last run delivered {delivered:,} rows without stopping"
            )
        details = {"runs": streak, "reason": reason, "run_id": latest_run.run_id}
        out.append(Condition(DESTINATION_FAILING, name, streak >= rule.runs, message, details))
    return out


def _failure(stats: Mapping[str, Any]) -> str | None:
    reason = stats.get("stopped") or stats.get("error")
    return str(reason) if reason else None


def rejected_share(rule: RejectedShareRule, runs: Sequence[RunFacts]) -> list[Condition]:
    """The share of the last run's rows refused: deliveries a platform (or pre-flight)
    rejected and source records that could not become conversions, over the rows the run
    handled (records pulled and deliveries with an outcome)."""
    if not runs:
        return []
    run = runs[0]
    rejected_deliveries = sum(_count(d.get("rejected")) for d in run.destinations.values())
    rejected_records = sum(_count(s.get("rejected")) for s in run.sources.values())
    handled = sum(_count(s.get("pulled")) for s in run.sources.values()) + sum(
        _count(d.get(state)) for d in run.destinations.values() for state in HANDLED_STATES
    )
    if handled < rule.min_rows:
        return []
    rejected = rejected_deliveries + rejected_records
    share = 100.0 * rejected / handled
    firing = share > rule.percent
    counts = f"{rejected:,} of {handled:,}"
    if firing:
        parts = [f"{rejected_deliveries:,} deliveries", f"{rejected_records:,} source records"]
        codes = _rejection_codes(run.destinations)
        message = (
            f"the last run rejected {share:.0f} % of its rows: {counts} "
            f"({', '.join(parts)}){codes}; the limit is {rule.percent:g} % "
            "(convsync failures lists them)"
        )
    else:
        message = (
            f"the last run rejected {share:.0f} % of its rows ({counts}), "
            f"within the {rule.percent:g} % limit"
        )
    details = {
        "run_id": run.run_id,
        "rejected_deliveries": rejected_deliveries,
        "rejected_records": rejected_records,
        "handled": handled,
        "percent": round(share, 1),
    }
    return [Condition(REJECTED_SHARE, RUNS, firing, message, details)]


def _rejection_codes(destinations: Mapping[str, Mapping[str, Any]]) -> str:
    """``; google: bad_click_id 12, expired 3`` — the reasons of rejected deliveries."""
    said = []
    for name, stats in sorted(destinations.items()):
        codes = stats.get("rejected_by_code")
        if isinstance(codes, Mapping) and codes:
            ranked = sorted(codes.items(), key=lambda item: (-_count(item[1]), str(item[0])))
            said.append(f"{name}: " + ", ".join(f"{code} {_count(n):,}" for code, n in ranked[:3]))
    return "; " + "; ".join(said) if said else ""


def volume_drop(rule: VolumeDropRule, volumes: Sequence[GoalVolume]) -> list[Condition]:
    """A goal's conversions today so far, against the median of the same weekday of the
    weeks before until the same time of day; goals usually below ``min_usual`` by now
    are not judged."""
    out = []
    for volume in volumes:
        usual = median(volume.before) if volume.before else 0
        if usual < rule.min_usual:
            continue
        drop = 100.0 * (usual - volume.today) / usual
        firing = drop > rule.percent
        weekday = WEEKDAYS[volume.until.weekday()]
        message = (
            f"{volume.goal}: {volume.today:,} conversions today by {volume.until:%H:%M}, "
            f"usually {_number(usual)} on a {weekday}"
        )
        if firing:
            message += f" (−{drop:.0f} %)"
        details = {
            "today": volume.today,
            "usual": usual,
            "weeks": list(volume.before),
            "drop_percent": round(drop, 1),
            "until": volume.until.isoformat(),
        }
        out.append(Condition(VOLUME_DROP, volume.goal, firing, message, details))
    return out


def match_rate_drop(rule: MatchRateDropRule, verdicts: Sequence[MatchVerdicts]) -> list[Condition]:
    """A destination's share of matched rows among those settled today, against the
    median of its daily shares on the days before (days with ``min_rows`` settled)."""
    out = []
    for dest in verdicts:
        matched, unmatched = dest.today
        settled = matched + unmatched
        before = [100.0 * m / (m + u) for m, u in dest.before if m + u >= rule.min_rows]
        if settled < rule.min_rows or not before:
            continue
        rate, usual = 100.0 * matched / settled, median(before)
        firing = usual - rate > rule.points
        message = (
            f"{dest.destination}: {rate:.0f} % of the deliveries settled today matched "
            f"({matched:,} of {settled:,}), usually {usual:.0f} %"
        )
        if firing:
            message += f" (−{usual - rate:.0f} points)"
        details = {
            "matched": matched,
            "settled": settled,
            "rate": round(rate, 1),
            "usual": round(usual, 1),
        }
        out.append(Condition(MATCH_RATE_DROP, dest.destination, firing, message, details))
    return out


def backlog_age(
    rule: BacklogAgeRule, backlogs: Sequence[Backlog], now: datetime, zone: ZoneInfo
) -> list[Condition]:
    """A destination whose longest-waiting due delivery was recorded longer than
    ``max_age`` ago."""
    out = []
    limit = describe_duration(rule.max_age)
    for backlog in backlogs:
        age = now - backlog.oldest if backlog.oldest is not None else timedelta(0)
        firing = backlog.oldest is not None and age > rule.max_age
        if firing:
            message = (
                f"{backlog.destination}: {backlog.due:,} deliveries waiting, the oldest for "
                f"{describe_age(age)} (since {_local(backlog.oldest, zone)}); the limit is {limit}"
            )
        else:
            message = (
                f"{backlog.destination}: no delivery has waited longer than {limit} "
                f"({backlog.due:,} due)"
            )
        details = {"due": backlog.due, "age_s": round(age.total_seconds())}
        out.append(Condition(BACKLOG_AGE, backlog.destination, firing, message, details))
    return out


def source_silent(
    rule: SourceSilentRule, last_records: Mapping[str, datetime], now: datetime, zone: ZoneInfo
) -> list[Condition]:
    """A source whose newest record was recorded longer than ``after`` ago (sources
    without a record in the look-back window are not judged: never had any, or judged
    silent long ago)."""
    out = []
    for source, last in sorted(last_records.items()):
        silence = now - last
        firing = silence > rule.after
        if firing:
            message = (
                f"{source}: no new records for {describe_age(silence)} (the last recorded "
                f"{_local(last, zone)}); the limit is {describe_duration(rule.after)}"
            )
        else:
            message = f"{source}: new records again (the last recorded {_local(last, zone)})"
        details = {"last_recorded": last.isoformat(), "silence_s": round(silence.total_seconds())}
        out.append(Condition(SOURCE_SILENT, source, firing, message, details))
    return out


# --- words ------------------------------------------------------------------------------


def _count(value: Any) -> int:
    """A count from a run summary (JSON): anything else reads as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


def _number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:,.1f}"


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return "never"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"
