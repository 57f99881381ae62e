"""The commands that read or requeue the ledger: ``runs``, ``report``, ``failures``,
``retry``."""

from __future__ import annotations

import enum
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convsync.cli.base import (
    app,
    ledger_opened,
    load_checked,
    settings_of,
    stdout,
    window_start,
)
from convsync.core.errors import UserError

if TYPE_CHECKING:
    from convsync.store.ledger import Ledger

# views (rich tables, the ledger's rows) load in the commands: other commands need none


@app.command()
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
) -> None:
    """Recent runs, newest first."""
    from convsync.cli import views

    with ledger_opened(ctx) as ledger:
        views.print_runs(stdout, ledger.recent_runs(limit), ledger.url_for_display)


class ReportFormat(enum.StrEnum):
    """What ``report`` prints: the rich table, or JSON or CSV for scripts."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


_WHEN_HELP = (
    "a duration back from now (24h, 7d, 4w) or a date or time (2026-12-01, UTC unless it "
    "has an offset)"
)


@app.command()
def report(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(metavar="WHEN", help=f"Start of the window: {_WHEN_HELP}.")
    ] = "7d",
    until: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help=f"End of the window (default: now): {_WHEN_HELP}."),
    ] = None,
    output_format: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            help="table; json (one object) or csv (a row per goal × destination) for scripts.",
        ),
    ] = ReportFormat.TABLE,
) -> None:
    """The funnel per goal and destination: pulled → conversions → planned → sent →
    accepted → matched, with reasons and the match rate."""
    import csv
    import json

    from convsync.store.funnel import CSV_COLUMNS, csv_row, report_json

    start = _window_edge(since, "--since")
    end = None if until is None else _window_edge(until, "--until")
    if end is not None and end <= start:
        raise UserError(f"--until {until} is not after --since {since}")
    from convsync.cli import views

    with ledger_opened(ctx) as ledger:
        funnel = ledger.funnel(start, end)
        uploads = ledger.recent_uploads(start)
        health = _service_health(ctx, ledger)
    if output_format is ReportFormat.JSON:
        document = report_json(funnel, uploads)
        if health is not None:
            document["health"] = {k: health[k] for k in ("status", "destinations", "sources")}
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    elif output_format is ReportFormat.CSV:
        writer = csv.writer(sys.stdout)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(r) for r in funnel)
    else:
        if health is not None:
            views.print_health(stdout, health)
        views.print_report(stdout, funnel, _window_title(since, start, end))
        views.print_uploads(stdout, uploads)


def _service_health(ctx: typer.Context, ledger: Ledger) -> dict[str, Any] | None:
    """The service's health as ``/healthz`` tells it (each destination's state in the last
    run and its backlog, silent sources), when the config can be read: the report needs
    only the ledger, and says so when it cannot tell more."""
    from convsync.service.healthz import assess

    settings = settings_of(ctx)
    if not settings.config.is_file():
        return None
    try:
        loaded = load_checked(settings)
    except UserError as exc:
        note = f"(the destinations' state is not shown: {str(exc).splitlines()[0]})"
        print(note, file=sys.stderr)
        return None
    return assess(loaded.app, ledger, datetime.now(UTC), running=True)


def _window_edge(text: str, option: str) -> datetime:
    moment = _moment(text)
    return window_start(text, option) if moment is None else moment


def _moment(text: str) -> datetime | None:
    """``text`` as an ISO 8601 date or time (UTC unless it has an offset); None if it is
    not one (a duration, then)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def _window_title(since: str, start: datetime, end: datetime | None) -> str:
    def shown(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")

    if end is not None:
        return f"{shown(start)} to {shown(end)} UTC"
    return f"last {since}" if _moment(since) is None else f"since {shown(start)} UTC"


@app.command()
def failures(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(metavar="DURATION", help="Window, like 24h, 7d or 4w.")
    ] = "7d",
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
) -> None:
    """Rejected, deferred, uncertain and unmatched deliveries and rejected records.

    Newest first."""
    from convsync.cli import views

    with ledger_opened(ctx) as ledger:
        views.print_failures(stdout, ledger.failures(window_start(since), limit))


@app.command()
def retry(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option(help="rejected (default), deferred or uncertain; repeatable."),
    ] = None,
    destination: Annotated[str | None, typer.Option(help="Only this destination.")] = None,
    goal: Annotated[str | None, typer.Option(help="Only this goal.")] = None,
    code: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    since: Annotated[
        str, typer.Option(metavar="DURATION", help="Changed within this window, like 7d.")
    ] = "7d",
    uncertain: Annotated[
        bool,
        typer.Option(
            "--uncertain",
            help="Shorthand for --state uncertain: events that may or may not have "
            "arrived (VK Ads after a crash); check the platform's stats first.",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count them.")] = False,
) -> None:
    """Send deliveries again after fixing their cause (a goal id, a token): matching
    rejected, deferred or uncertain deliveries go back to pending for the next run."""
    import uuid

    from convsync.core.model import DeliveryState
    from convsync.store.ledger import Ledger

    try:
        wanted = [*(state or []), *(["uncertain"] if uncertain else [])]
        states = [DeliveryState(s) for s in (wanted or ["rejected"])]
    except ValueError:
        raise UserError("--state: use rejected, deferred or uncertain") from None
    start = window_start(since)
    ledger = Ledger.open(settings_of(ctx).database_url, read_only=dry_run)
    try:
        count = ledger.requeue(
            states=states,
            since=start,
            now=datetime.now(UTC),
            run_id=f"retry-{uuid.uuid4().hex[:10]}",
            destination=destination,
            goal=goal,
            code=code,
            dry_run=dry_run,
        )
    except ValueError as exc:
        raise UserError(f"--state: {exc}") from None
    finally:
        ledger.close()
    verb = "would go" if dry_run else "go"
    stdout.print(f"{count} deliveries {verb} back to pending; the next sync sends them.")
