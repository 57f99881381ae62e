"""The commands that read or requeue the ledger: ``runs``, ``report``, ``failures``,
``retry``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from convsync import views
from convsync.cli_base import app, ledger_opened, settings_of, stdout, window_start
from convsync.errors import UserError


@app.command()
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
) -> None:
    """Recent runs, newest first."""
    with ledger_opened(ctx) as ledger:
        views.print_runs(stdout, ledger.recent_runs(limit), ledger.url_for_display)


@app.command()
def report(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(metavar="DURATION", help="Window, like 24h, 7d or 4w.")
    ] = "7d",
) -> None:
    """The funnel per goal and destination: pulled → mapped → planned → delivered."""
    start = window_start(since)
    with ledger_opened(ctx) as ledger:
        views.print_report(stdout, ledger.funnel(start), ledger.pulled_since(start), since)
        views.print_uploads(stdout, ledger.recent_uploads(start))


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

    from convsync.model import DeliveryState
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
