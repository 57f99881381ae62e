"""What the CLI prints on stdout: plan summaries and ledger tables (rich)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from convsync.config import LoadedConfig
from convsync.model import UploadRecord
from convsync.run_summary import RunSummary
from convsync.store.reports import FailureRow, FunnelRow
from convsync.store.runs import (
    LOST_LEASE_EXPIRED,
    LOST_LEASE_NOT_HELD,
    LOST_PROCESS_GONE,
    LOST_TAKEN_OVER,
    RunRow,
)

_SOURCE_COLUMNS = ("pulled", "rejected", "new", "planned", "skipped")


def print_run_summary(out: Console, summary: RunSummary, plan_file: Path | None) -> None:
    title = "Dry run (nothing recorded, nothing sent)" if summary.dry_run else "Sync run"
    out.print(f"[bold]{title}[/bold] {summary.run_id}: {summary.status}")
    sources = Table("source", "pulled", "rejected", "new", "planned", "skipped", title="Sources")
    for name, c in summary.sources.items():
        sources.add_row(
            name, *(str(c.get(k, 0)) for k in ("pulled", "rejected", "new", "planned", "skipped"))
        )
    if summary.sources:
        out.print(sources)
    if summary.dry_run:
        _print_plan(out, summary)
        if plan_file is not None and str(plan_file) != "-":
            out.print(f"Plan written to {plan_file} (one JSON object per delivery).")
    elif summary.validation:
        _print_validation(out, summary.validation)
        if plan_file is not None and str(plan_file) != "-":
            out.print(f"Results written to {plan_file} (one JSON object per delivery).")
    else:
        _print_destinations(out, summary.destinations)


def _print_validation(out: Console, validation: Mapping[str, Mapping[str, Any]]) -> None:
    cols = ("valid", "rejected", "deferred", "skipped", "transient")
    table = Table("destination", *cols, "note", title="Validation (nothing delivered)")
    for name, counts in validation.items():
        note = counts.get("stopped") or counts.get("not_checked") or ""
        table.add_row(name, *(str(counts.get(c, 0)) for c in cols), str(note))
    out.print(table)


def _print_plan(out: Console, summary: RunSummary) -> None:
    table = Table("destination", "goal", "would send", "deferred", "rejected", title="Plan")
    for (dest, goal), c in sorted(summary.plan.items()):
        table.add_row(
            dest, goal, str(c.get("send", 0)), str(c.get("deferred", 0)), str(c.get("rejected", 0))
        )
    out.print(table)
    skipped = {
        (goal, key.split(":", 1)[1]): n
        for goal, counts in summary.goals.items()
        for key, n in counts.items()
        if key.startswith("skipped:")
    }
    for (goal, dest), n in sorted(skipped.items()):
        out.print(f"{goal} → {dest}: {n} skipped (no identifier this platform can match)")


def _print_destinations(out: Console, destinations: Mapping[str, Mapping[str, Any]]) -> None:
    cols = ("requests", "delivered", "deferred", "rejected", "uncertain", "pending")
    table = Table("destination", *cols, "note", title="Deliveries this run")
    for name, d in destinations.items():
        note = d.get("stopped") or d.get("error") or ""
        if d.get("unclear"):  # rows waiting for a look-up of an upload whose answer was lost
            waiting = f"{d['unclear']} waiting for a look-up of their upload"
            note = f"{note} {waiting}" if note else waiting
        if d.get("rejected_by_code"):
            note = (note + " " if note else "") + ", ".join(
                f"{k}: {v}" for k, v in d["rejected_by_code"].items()
            )
        table.add_row(name, *(str(d.get(k, 0)) for k in cols), str(note))
    if destinations:
        out.print(table)


def print_validation(out: Console, loaded: LoadedConfig, notes: Sequence[str]) -> None:
    app = loaded.app
    out.print(f"[green]OK[/green] {loaded.path}")
    for note in notes:
        out.print(f"  note: {note}")
    out.print(f"  sources: {', '.join(f'{n} ({s.type})' for n, s in app.sources.items())}")
    out.print(
        f"  destinations: {', '.join(f'{n} ({d.type})' for n, d in app.destinations.items())}"
    )
    for name, goal in app.goals.items():
        out.print(f"  goal {name}: {goal.source} → {', '.join(goal.send)}")


def print_runs(out: Console, runs: Sequence[RunRow]) -> None:
    table = Table(
        "run", "started", "finished", "status", "trigger", "host", "note", title="Recent runs"
    )
    for r in runs:
        finished = _time(r.finished_at)
        if r.lost is not None:  # never finished: when it was last seen alive instead
            finished = f"last seen {_time(r.last_seen)}" if r.last_seen else "never finished"
        table.add_row(
            r.run_id,
            _time(r.started_at),
            finished,
            r.status,
            r.trigger,
            f"{r.host}:{r.pid}",
            _LOST.get(r.lost or "", r.lost or ""),
        )
    out.print(table)
    if not runs:
        out.print("No runs recorded in this ledger yet (check --database-url).")


#: why an ``interrupted`` run never finished itself (``RunRow.lost``)
_LOST = {
    LOST_TAKEN_OVER: "its process died; the lease was taken over",
    LOST_PROCESS_GONE: "its process died",
    LOST_LEASE_EXPIRED: "its lease expired unrenewed",
    LOST_LEASE_NOT_HELD: "its process holds the run lease no more",
}


def print_report(
    out: Console, rows: Sequence[FunnelRow], pulled: Mapping[str, int], since: str
) -> None:
    if pulled:
        out.print("Pulled: " + ", ".join(f"{k} {v}" for k, v in sorted(pulled.items())))
    table = Table(
        "goal", "destination", "mapped", "planned", "delivered", "matched", "pending",
        "deferred", "uncertain", "rejected", "skipped", title=f"Funnel, last {since}",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            r.goal if r.kind == "conversion" else f"{r.goal} ({r.kind})", r.destination,
            str(r.mapped), str(r.planned), str(r.delivered), str(r.matched),
            str(r.pending + r.sending), str(r.deferred), str(r.uncertain),
            _by_code(r.rejected_by_code), _by_code(r.skipped_by_code),
        )  # fmt: skip
    out.print(table)


def print_uploads(out: Console, uploads: Sequence[UploadRecord]) -> None:
    """Uploads a platform processed after answering (Metrica files, Data Manager API
    requests), with what it reported."""
    if not uploads:
        return
    table = Table("destination", "upload", "status", "rows", "reported", "note", title="Uploads")
    for u in uploads:
        status = u.status if u.final else f"{u.status} (checking)"
        action = u.details.get("conversion_action")
        upload = f"{u.external_id} → {action}" if action else u.external_id
        table.add_row(
            u.destination, upload, status, str(u.rows), _reported(u.details), u.message or ""
        )
    out.print(table)


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
    table = Table("when", "what", "where", "code", "why", title="Failures")
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


def _by_code(counts: Mapping[str, int]) -> str:
    if not counts:
        return "0"
    total = sum(counts.values())
    return f"{total} (" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")"


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""
