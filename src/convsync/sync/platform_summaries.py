"""Once a day per ``google_ads_api`` destination: Google's upload summaries into the ledger
(the run's step that joins the config, the destination and the ledger).

The Google Ads API judges no row after an upload, so the funnel's match figures for
these destinations come from its upload summaries (``summaries.py``), kept in the
ledger per goal and upload day (``store/platform_reports.py``).

The pipeline calls ``read_due_summaries`` after the deliver step of a real run (a dry run
and a ``--validate`` run read nothing). A destination is read at most once per calendar
day in the config's timezone: the day of the last read is written with its counts, in
one transaction, so later runs that day — on any replica — ask nothing. Google reports
the last 7 days on every read, so each day's counts are replaced for a week while its
pending events are processed.

A read that fails (credentials, access, the network, a refused query) is a warning in
the run's log and summary, never a failed run or a lost delivery; nothing is noted, so
the next run tries again. A destination that stopped in this run (its credentials, the
day's quota) is not read: the same trouble would be reported twice.

Conversion action ids map back to goals through the config: every goal whose
``send.<destination>`` names the action gets the action's counts (two goals on one
action each get all of them: Google counts per action).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.destinations.google_ads.config import (
    GOOGLE_ADS_API,
    GoogleAdsConfig,
    GoogleAdsTarget,
)
from convsync.store.platform_reports import PlatformDay

if TYPE_CHECKING:
    from convsync.config.models import LoadedConfig
    from convsync.destinations.base import Destination
    from convsync.destinations.google_ads.summaries import ActionSummary
    from convsync.store.ledger import Ledger

log = structlog.get_logger("convsync.google_ads.summaries")

#: seconds the read may take at most (the destination's request timeout if shorter)
READ_TIMEOUT = 60.0


def read_due_summaries(
    loaded: LoadedConfig,
    ledger: Ledger,
    destinations: Mapping[str, Destination[BaseModel, BaseModel]],
    run_stats: Mapping[str, Mapping[str, Any]],
    clock: Callable[[], datetime],
) -> list[str]:
    """Read and store the summaries of each ``google_ads_api`` destination not read
    today; the warnings of those that could not be read. ``run_stats``: the deliver
    step's statistics per destination (``stopped`` for one that stopped)."""
    readers = _readers(destinations)
    if not readers:
        return []
    # here: the google-ads client loads only when a destination uses it
    from convsync.destinations.google_ads.summaries import read_summaries

    today = clock().astimezone(loaded.app.zone).date()
    warnings: list[str] = []
    for name, (config, timeout) in readers.items():
        if run_stats.get(name, {}).get("stopped"):
            log.info("upload summaries not read", destination=name, reason="it stopped in this run")
            continue
        goals = goals_by_action(loaded.targets, name)
        if not goals or ledger.summaries_read_on(name) == today:
            continue
        try:
            found = read_summaries(name, config, goals, timeout=timeout)
        except (DestinationUnavailable, PermanentError, TransientError) as exc:
            reason = str(exc) if isinstance(exc, TransientError) else exc.message
            warnings.append(
                f"destinations.{name}: the Google Ads upload summaries were not read "
                f"({exc.code}: {reason}); the next run tries again"
            )
            log.warning("upload summaries not read", destination=name, code=exc.code, reason=reason)
            continue
        days = platform_days(found, goals)
        ledger.save_platform_summaries(name, days, read_on=today, now=clock())
        _log_read(name, found, len(days))
    return warnings


def _readers(
    destinations: Mapping[str, Destination[BaseModel, BaseModel]],
) -> dict[str, tuple[GoogleAdsConfig, float]]:
    """The destinations to read, with their config and read timeout: the Google Ads
    API's, as the real destination class (a test's stand-in is left alone)."""
    chosen = {
        name: dest
        for name, dest in destinations.items()
        if isinstance(dest.config, GoogleAdsConfig) and dest.config.api == GOOGLE_ADS_API
    }
    if not chosen:
        return {}
    from convsync.destinations.google_ads.destination import GoogleAdsDestination

    return {
        name: (dest.config, min(dest.request_timeout, READ_TIMEOUT))
        for name, dest in chosen.items()
        if isinstance(dest, GoogleAdsDestination)
    }


def goals_by_action(
    targets: Mapping[str, Mapping[str, BaseModel]], destination: str
) -> dict[int, list[str]]:
    """Conversion action id → the goals that send to it through ``destination``."""
    out: dict[int, list[str]] = {}
    for goal in sorted(targets):
        target = targets[goal].get(destination)
        if isinstance(target, GoogleAdsTarget):
            out.setdefault(target.conversion_action, []).append(goal)
    return out


def platform_days(
    found: Sequence[ActionSummary], goals: Mapping[int, Sequence[str]]
) -> list[PlatformDay]:
    """The ledger's rows of one read: a row per goal and upload day; the alerts on the
    row of the day they are of (left out when Google reported no counts for that day)."""
    out: list[PlatformDay] = []
    for summary in found:
        for goal in goals.get(summary.conversion_action_id, ()):
            for d in summary.days:
                alerts = summary.alerts if d.day == summary.alerts_day else None
                out.append(
                    PlatformDay(
                        goal,
                        summary.conversion_action_id,
                        d.day,
                        d.successful,
                        d.failed,
                        d.pending,
                        alerts,
                    )
                )
    return out


def _log_read(name: str, found: Sequence[ActionSummary], days: int) -> None:
    log.info("upload summaries read", destination=name, conversion_actions=len(found), days=days)
    for summary in found:
        # Google's own rating of the latest day with uploads: NEEDS_ATTENTION is worth a look
        say = log.warning if summary.status == "NEEDS_ATTENTION" else log.info
        say(
            "upload summary",
            destination=name,
            conversion_action=summary.conversion_action_id,
            status=summary.status,
            alerts=dict(summary.alerts),
            alerts_day=summary.alerts_day.isoformat() if summary.alerts_day else None,
        )
