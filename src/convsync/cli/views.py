"""What the CLI prints on stdout: plan summaries and ledger tables (rich)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convsync.config.models import LoadedConfig
from convsync.core.model import DEGRADED, FAILED, INTERRUPTED, OK, UploadRecord
from convsync.store.funnel import CONVERSION, Funnel, FunnelRow
from convsync.store.reports import FailureRow
from convsync.store.runs import (
    LOST_LEASE_EXPIRED,
    LOST_LEASE_NOT_HELD,
    LOST_PROCESS_GONE,
    LOST_TAKEN_OVER,
    RunRow,
)
from convsync.sync.summary import RunSummary, Tally

_SOURCE_COLUMNS = ("pulled", "rejected", "new", "planned", "skipped")
_STATUS_STYLE = {OK: "green", DEGRADED: "yellow", FAILED: "red", INTERRUPTED: "red"}


def status_text(status: str) -> str:
    """A status word in its colour."""
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def print_run_summary(out: Console, summary: RunSummary, plan_file: Path | None) -> None:
    title = "Dry run (nothing recorded, nothing sent)" if summary.dry_run else "Sync run"
    out.print(f"[bold]{title}[/bold] {summary.run_id}: {status_text(summary.status)}")
    if summary.ledger:
        _say(out, "Ledger:", summary.ledger)
    sources = Table("source", *_SOURCE_COLUMNS, title="Sources")
    for name, c in summary.sources.items():
        sources.add_row(name, *(str(c.get(k, 0)) for k in _SOURCE_COLUMNS))
    if summary.sources:
        out.print(sources)
    if summary.dry_run:
        _print_plan(out, summary)
    elif summary.validation:
        _print_validation(out, summary.validation)
    else:
        _print_destinations(out, summary.destinations)
    _print_held(out, summary)
    for warning in summary.warnings:
        _say(out, "[yellow]warning:[/yellow]", warning)
    for notice in summary.risky_defaults:
        _say(out, "[yellow]warning (risky default):[/yellow]", notice)
    if plan_file is not None and str(plan_file) != "-":
        what = "Plan" if summary.dry_run else "Results"
        out.print(f"{what} written to {plan_file} (one JSON object per delivery).")


def _print_validation(out: Console, validation: Mapping[str, Mapping[str, Any]]) -> None:
    cols = ("valid", "rejected", "deferred", "skipped", "transient")
    table = Table("destination", *cols, title="Validation (nothing delivered)")
    notes = []
    for name, counts in validation.items():
        table.add_row(name, *(str(counts.get(c, 0)) for c in cols))
        if note := counts.get("stopped") or counts.get("not_checked"):
            notes.append(f"{name}: {note}")
    out.print(table)
    _print_notes(out, notes)


_PLAN_COLUMNS = ("send", "deferred", "rejected", "skipped")


def _print_plan(out: Console, summary: RunSummary) -> None:
    table = Table(
        "destination", "goal", "would send", "deferred", "rejected", "skipped", title="Plan"
    )
    for (dest, goal), c in sorted(summary.plan.items()):
        table.add_row(dest, goal, *(str(c.get(k, 0)) for k in _PLAN_COLUMNS))
    out.print(table)


def _print_held(out: Console, summary: RunSummary) -> None:
    """Rows not sent, by reason, with the first few of them: which order and why."""
    lines = [
        f"{source}: {_count(t.count, 'record')} rejected, {code}: {_examples(t)}\n    {t.message}"
        for (source, code), t in summary.rejected_records.items()
    ]
    lines += [
        f"{goal} → {dest}: {t.count} {kind}, {code}: {_examples(t)}\n    {t.message}"
        for (dest, goal, kind, code), t in sorted(summary.held.items())
    ]
    if lines:
        out.print("[bold]Not sent, by reason[/bold] (the first few of each):")
        for line in lines:
            _say(out, " ", line)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _examples(t: Tally) -> str:
    more = f" and {t.count - len(t.examples)} more" if t.count > len(t.examples) else ""
    return ", ".join(t.examples) + more


def _print_destinations(out: Console, destinations: Mapping[str, Mapping[str, Any]]) -> None:
    cols = ("requests", "delivered", "deferred", "rejected", "uncertain", "pending")
    table = Table("destination", *cols, title="Deliveries this run")
    notes = []
    for name, d in destinations.items():
        table.add_row(name, *(str(d.get(k, 0)) for k in cols))
        if note := d.get("stopped") or d.get("error"):
            notes.append(f"{name}: {note}")
        if d.get("unclear"):  # rows waiting for a look-up of an upload whose answer was lost
            notes.append(f"{name}: {d['unclear']} rows wait for a look-up of their upload")
        if d.get("rejected_by_code"):
            by_code = ", ".join(f"{k} {v}" for k, v in d["rejected_by_code"].items())
            notes.append(f"{name}: rejected {by_code} (convsync failures lists them)")
    if destinations:
        out.print(table)
    _print_notes(out, notes)


def _compact_table(*headers: str, title: str) -> Table:
    """A table with one space between its columns and no side borders: many columns in
    100."""
    return Table(*headers, title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=0)


def _say(out: Console, label: str, text: str) -> None:
    """``label`` (markup) and ``text`` as written — no markup read into it, no line
    breaks added (a terminal wraps it; a pipe or ``grep`` gets it whole)."""
    out.print(f"{label} {escape(text)}", highlight=False, soft_wrap=True)


def _print_notes(out: Console, notes: Sequence[str]) -> None:
    """Long texts (a platform's message) under the table, whole, not squeezed in a cell."""
    for note in notes:
        _say(out, " ", note)


def print_validation(
    out: Console, loaded: LoadedConfig, problems: Sequence[str], warnings: Sequence[str]
) -> None:
    """What the config holds, then its problems and warnings, then the verdict: ``OK``
    only when nothing failed."""
    app = loaded.app
    _say(out, "Config", str(loaded.path))
    out.print(f"  sources: {', '.join(f'{n} ({s.type})' for n, s in app.sources.items())}")
    out.print(
        f"  destinations: {', '.join(f'{n} ({d.type})' for n, d in app.destinations.items())}"
    )
    for name, goal in app.goals.items():
        out.print(f"  goal {name}: {goal.source} → {', '.join(goal.send)}")
    for problem in problems:
        _say(out, "[red]problem:[/red]", problem)
    for warning in warnings:
        _say(out, "[yellow]warning:[/yellow]", warning)
    said = _count(len(warnings), "warning")
    if problems:
        out.print(
            f"[red]FAILED[/red]: {_count(len(problems), 'problem')}, {said}: a sync would "
            "stop the sources named above until they are fixed"
        )
    elif warnings:
        out.print(f"[green]OK[/green], with {said} (above)")
    else:
        out.print("[green]OK[/green]")


def print_runs(out: Console, runs: Sequence[RunRow], ledger: str) -> None:
    table = _compact_table(
        "run", "started", "finished", "status", "trigger", "host", title="Recent runs"
    )
    for column in table.columns[:3]:
        column.no_wrap = True
    lost = []
    for r in runs:
        finished = _time(r.finished_at)
        if r.lost is not None:  # never finished: when it was last seen alive, below
            finished = "never"
            seen = f"last seen {_time(r.last_seen)}" if r.last_seen else "never seen renewing"
            lost.append(f"{r.run_id} {r.status}: {seen}; {_LOST.get(r.lost, r.lost)}")
        table.add_row(
            r.run_id, _time(r.started_at), finished, status_text(r.status), r.trigger,
            f"{r.host}:{r.pid}",
        )  # fmt: skip
    out.print(table)
    _print_notes(out, lost)
    if not runs:
        _say(
            out,
            "No runs recorded",
            f"in the ledger {ledger} yet (a different one? check --config and --database-url).",
        )


#: why an ``interrupted`` run never finished itself (``RunRow.lost``)
_LOST = {
    LOST_TAKEN_OVER: "its process died; the lease was taken over",
    LOST_PROCESS_GONE: "its process died",
    LOST_LEASE_EXPIRED: "its lease expired unrenewed",
    LOST_LEASE_NOT_HELD: "its process holds the run lease no more",
}


def print_health(out: Console, health: Mapping[str, Any]) -> None:
    """The destinations' state (as ``/healthz`` has it) before the funnel: each one's
    word, and for one that is not ok, why (it stopped in the last run, its backlog is
    too old); then the sources silent too long."""
    destinations = health.get("destinations", {})
    parts = [f"{name} {status_text(str(d.get('status')))}" for name, d in destinations.items()]
    if parts:
        out.print("Destinations: " + ", ".join(parts))
    notes = [
        f"{name}: {d['reason']}"
        for name, d in destinations.items()
        if d.get("status") != OK and d.get("reason")
    ]
    notes += [f"source {name}: {s['reason']}" for name, s in health.get("sources", {}).items()]
    _print_notes(out, notes)


_FUNNEL_COLUMNS = (
    "pulled", "conversions", "planned", "sent", "accepted", "matched", "match\nrate",
    "waiting", "rejected", "skipped",
)  # fmt: skip
#: the upload summaries' alerts shown per row under the funnel's table, largest first
_ALERTS_SHOWN = 3
#: the funnel's counts by reason, printed under its table
_REASONS = ("rejected", "deferred", "uncertain", "skipped")


def print_report(out: Console, funnel: Funnel, window: str) -> None:
    """The funnel per goal × destination (stages as in ``store/funnel.py``); under the
    table each row's reasons, and why a match rate is missing."""
    if funnel.sources:
        out.print("Pulled: " + ", ".join(f"{k} {v}" for k, v in sorted(funnel.sources.items())))
    # eleven columns in 100: the first one wraps
    table = _compact_table("goal → destination", *_FUNNEL_COLUMNS, title=f"Funnel, {window}")
    table.columns[0].min_width = 14
    for column in table.columns[1:]:
        column.justify, column.no_wrap = "right", True
    reasons = []
    unreported: dict[bool, set[str]] = {True: set(), False: set()}
    for r in funnel:
        goal = r.goal if r.kind == CONVERSION else f"{r.goal} ({r.kind})"
        rate = r.match_rate
        if rate is None:
            unreported[r.reports_matching].add(r.destination)
        table.add_row(
            f"{goal} → {r.destination}", _number(r.pulled), str(r.conversions), str(r.planned),
            str(r.sent), str(r.accepted), _matched(r),
            "—" if rate is None else f"{rate:.1%}",
            str(r.waiting), str(r.rejected), str(r.skipped),
        )  # fmt: skip
        by_reason = "; ".join(
            f"{what} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            for what in _REASONS
            if (counts := getattr(r, f"{what}_by_code"))
        )
        if by_reason:
            reasons.append(f"{goal} → {r.destination}: {by_reason}")
        if r.platform_successful is not None:
            reasons.append(f"{goal} → {r.destination}: {_summarized(r)}")
    out.print(table)
    if not funnel:
        out.print("No conversions recorded in this window.")
    if unreported[False]:
        names = ", ".join(sorted(unreported[False]))
        reasons.append(f"—: matches not reported by {names} (the platform does not tell)")
    if unreported[True]:
        names = ", ".join(sorted(unreported[True]))
        reasons.append(f"—: no match verdict yet on those rows of {names}")
    _print_notes(out, reasons)


def _matched(r: FunnelRow) -> str:
    """The ledger's matched; Google's successful events (marked *) where the platform
    reports only its upload summaries."""
    if r.platform_successful is not None and not r.matched + r.unmatched:
        return f"{r.platform_successful}*"
    return str(r.matched) if r.reports_matching else "—"


def _summarized(r: FunnelRow) -> str:
    """What the upload summaries reported: ``*Google Ads upload summaries of the
    window's days: 412 successful, 30 failed, 5 pending; alerts of 2026-12-04: …``."""
    text = (
        f"*Google Ads upload summaries of the window's days: {r.platform_successful} "
        f"successful, {r.platform_failed} failed, {r.platform_pending} pending"
    )
    if r.platform_alerts:
        top = list(r.platform_alerts.items())[:_ALERTS_SHOWN]
        shown = ", ".join(f"{code} {share:.1%}" for code, share in top)
        text += f"; alerts of {r.platform_alerts_on}: {shown}"
    return text


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def print_uploads(out: Console, uploads: Sequence[UploadRecord]) -> None:
    """Uploads a platform processed after answering (Metrica files, Data Manager API
    requests), with what it reported."""
    if not uploads:
        return
    # a line each, not a table: ids and the platform's explanation are long
    out.print("[bold]Uploads[/bold] (the platform's processing of each):")
    for u in uploads:
        status = u.status if u.final else f"{u.status} (checking)"
        action = u.details.get("conversion_action")
        upload = f"{u.external_id} → {action}" if action else u.external_id
        reported = _reported(u.details)
        line = f"{u.destination} {upload}: {status}, {_count(u.rows, 'row')}"
        _say(out, " ", line + (f"; {reported}" if reported else ""))
        if u.message:
            _say(out, "   ", u.message)


def _reported(details: Mapping[str, Any]) -> str:
    """The platform's counts: ``linked 3, user_not_found 1``; ``errors: CLICK_NOT_FOUND 3``."""
    parts = [
        f"{k.removesuffix('_quantity')} {v}"
        for k, v in details.items()
        if isinstance(v, int) and not isinstance(v, bool) and k != "checks"
    ]
    for key in ("errors", "warnings"):
        counts = details.get(key)
        if isinstance(counts, dict) and counts:
            parts.append(f"{key}: " + ", ".join(f"{r} {n}" for r, n in sorted(counts.items())))
    return ", ".join(parts)


def print_failures(out: Console, rows: Sequence[FailureRow]) -> None:
    table = _compact_table("when", "what", "where", "code", "why", title="Failures")
    for column in table.columns[:4]:
        column.overflow = "fold"  # a file name or an id is never cut short
    for r in rows:
        table.add_row(_time(r.at), _what(r), _where(r), r.code or "", _why(r))
    out.print(table)
    if not rows:
        out.print("No failures in this window.")


def _what(r: FailureRow) -> str:
    if r.kind == "record":
        return f"record of {r.source}"
    if r.kind == "upload":
        return f"upload of {r.rows} rows"
    return f"{r.state} ({r.attempts} failed attempts)" if r.attempts else str(r.state)


def _where(r: FailureRow) -> str:
    if r.kind == "record":
        column = f", column {r.column!r}" if r.column else ""
        return f"{r.origin}{column}"
    if r.kind == "upload":
        return f"{r.destination}, upload {r.upload}"
    adjustment = f" ({r.adjustment})" if r.adjustment else ""
    return f"{r.goal} → {r.destination}, order {r.order_id}{adjustment}"


def _why(r: FailureRow) -> str:
    text = r.message or ""
    if r.retry_at is not None:
        text += f" (next try {_time(r.retry_at)} UTC)"
    return text


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""
