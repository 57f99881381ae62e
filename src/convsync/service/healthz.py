"""How healthy a ``convsync run`` is, in the run's status words: what ``/healthz``
answers, and what ``convsync health`` and the image's HEALTHCHECK (``probe.py``) go by.

The latest finished run of the ledger decides — any replica's, not only this
process's — together with the backlog: a destination whose oldest due delivery has
waited longer than ``health.max_pending_age`` makes the service ``degraded`` even
between runs. ``failed`` (and, with ``health.fail_on_degraded``, ``degraded``) answers
503.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from convsync.config.models import AppConfig
from convsync.core.model import DEGRADED, FAILED, INTERRUPTED, OK, RUNNING
from convsync.store.ledger import Ledger
from convsync.store.runs import RunRow
from convsync.sync import lateness

#: a service status beyond the run's words: before its first run, and while it stops
STARTING, STOPPING = "starting", "stopping"
_RANK = {OK: 0, STARTING: 0, DEGRADED: 1, INTERRUPTED: 1, FAILED: 2, STOPPING: 2}


def assess(app: AppConfig, ledger: Ledger, now: datetime, *, running: bool) -> dict[str, Any]:
    """The health document: ``status`` (ok, degraded, failed, starting, stopping),
    ``healthy`` (what the HTTP status says), ``last_run``; per destination, its
    ``status`` and ``reason`` in the last run and its ``oldest_due_age_s``; and the
    ``sources`` silent for longer than ``health.max_source_silence``, with why."""
    last = _last_finished(ledger)
    summary: Mapping[str, Any] = (last.summary or {}) if last is not None else {}
    health = app.health
    destinations = {
        b.destination: _destination(b, summary, health.max_pending_age, now)
        for b in lateness.backlogs(app, ledger, now)
    }
    sources = {
        name: {"status": DEGRADED, "reason": why}
        for name, why in lateness.silent_source_reasons(app, ledger, now).items()
    }
    status = STARTING if last is None else (DEGRADED if last.status == INTERRUPTED else last.status)
    if sources or any(d["status"] == DEGRADED for d in destinations.values()):
        status = max(status, DEGRADED, key=_RANK.__getitem__)
    if not running:
        status = STOPPING
    healthy = _RANK[status] == 0 or (status == DEGRADED and not health.fail_on_degraded)
    return {
        "status": status,
        "healthy": healthy,
        "last_run": None if last is None else _run(last),
        "destinations": destinations,
        "sources": sources,
    }


def _last_finished(ledger: Ledger) -> RunRow | None:
    return next((r for r in ledger.recent_runs(20) if r.status != RUNNING), None)


def _run(row: RunRow) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "status": row.status,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "warnings": list((row.summary or {}).get("warnings", [])),
    }


def _destination(
    backlog: lateness.Backlog, summary: Mapping[str, Any], limit: timedelta, now: datetime
) -> dict[str, Any]:
    """Its state in the last run (``stopped`` with the reason: auth, unreachable, quota),
    and how long its oldest due delivery has waited."""
    last = summary.get("destinations", {}).get(backlog.destination, {})
    reason = last.get("stopped") or last.get("error")
    age = backlog.age(now)
    status = OK
    if reason:
        status = FAILED
    elif backlog.too_old(now, limit):
        status = DEGRADED
        reason = backlog.words(now, limit)
    return {
        "status": status,
        "reason": reason,
        "delivered": last.get("delivered", 0),
        "oldest_due_age_s": round(age.total_seconds()) if age is not None else None,
    }
