"""The ``convsync`` command: a thin typer app with one error handler (``main``); what
the commands share is in :mod:`convsync.cli.base`, the ledger's commands in
:mod:`convsync.cli.ledger`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.console import Console

from convsync.cli.base import app, auth_app, config_app, load_checked, settings_of, stdout
from convsync.core.errors import RunRefused, UserError
from convsync.destinations.google_ads.oauth_flow import Api as GoogleApi

__all__ = ["alerts", "app", "global_options_first", "ledger", "main"]

log = structlog.get_logger("convsync.cli")


@app.command()
def sync(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", show_default=False, help="Run one sync now (the default).")
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Pull, map and plan; change nothing, send nothing.")
    ] = False,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Record as usual, then have the platform check every due delivery "
            "without recording it (Google Ads validate_only); nothing is delivered.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Dry-run plan or --validate results (JSON lines); - for stdout.",
        ),
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="Only this source (repeatable).")
    ] = None,
    goal: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="Only this goal (repeatable).")
    ] = None,
) -> None:
    """Run one sync now (`convsync run` runs them on the schedule)."""
    from convsync.cli import views
    from convsync.service.runner import run_once

    if dry_run and validate:
        raise UserError(
            "--dry-run and --validate do not go together: --dry-run sends nothing, "
            "--validate has the platform check what would be sent"
        )
    if output is not None and not (dry_run or validate):
        raise UserError("--output writes the dry-run plan or the --validate results: add one")
    settings = settings_of(ctx)
    summary = run_once(
        settings,
        load_checked(settings),
        dry_run,
        output,
        tuple(source or ()),
        tuple(goal or ()),
        validate=validate,
    )
    # with the plan on stdout (--output -), the summary goes to stderr so a pipe gets
    # only JSON lines
    console = Console(stderr=True) if output is not None and str(output) == "-" else stdout
    views.print_run_summary(console, summary, output)
    for problem in summary.user_errors:
        print(f"convsync: {problem}", file=sys.stderr)
    raise typer.Exit(summary.exit_code)


@app.command()
def run(ctx: typer.Context) -> None:
    """Run syncs on the configured schedule until stopped (the container's command)."""
    from convsync.service.runner import serve

    settings = settings_of(ctx)
    serve(settings, load_checked(settings))


@app.command()
def health(ctx: typer.Context) -> None:
    """Exit 0 if a `convsync run` on this machine answers healthy."""
    from convsync.service.health import probe

    ok, body = probe(settings_of(ctx).health_port)
    typer.echo(body)
    raise typer.Exit(0 if ok else 1)


@app.command()
def validate(ctx: typer.Context) -> None:
    """Check the config file and the source files it names; the verdict comes last.

    Every problem of the config with its file, line and path; the header of every
    source file against the mapped columns; what a sync would warn of (a glob that
    matches no file, an empty file, risky defaults)."""
    from convsync.cli import views
    from convsync.sync.mapping import make_source
    from convsync.sync.notice_scan import scan_notices

    loaded = load_checked(settings_of(ctx))
    problems: list[str] = []
    warnings: list[str] = []
    for name in loaded.app.sources:
        try:
            found, warned = make_source(loaded, name).check()
        except UserError as exc:
            found, warned = [str(exc)], []
        problems += found
        warnings += warned
    warnings += scan_notices(loaded)
    views.print_validation(stdout, loaded, problems, warnings)
    raise typer.Exit(2 if problems else 0)


@config_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the config file (for editor autocompletion)."""
    from convsync.config.loader import config_schema

    typer.echo(json.dumps(config_schema(), indent=2, ensure_ascii=False))


@auth_app.command("google")
def auth_google(
    client_secrets: Annotated[
        Path | None,
        typer.Option(
            "--client-secrets",
            metavar="FILE",
            help="The OAuth client's JSON (Google Cloud → APIs & Services → Credentials, "
            "type Desktop app).",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            metavar="ID",
            help="Instead of a file: the client id; the secret comes from the environment "
            "variable GOOGLE_ADS_CLIENT_SECRET (or a hidden prompt on a terminal).",
        ),
    ] = None,
    api: Annotated[
        GoogleApi, typer.Option(help="The API the token is for; it decides the scopes.")
    ] = GoogleApi.DATA_MANAGER,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Loopback port of the redirect; 0: any free.")
    ] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the URL (always on stderr).")
    ] = False,
    timeout: Annotated[
        int, typer.Option(min=1, help="Seconds to wait for the sign-in in the browser.")
    ] = 300,
) -> None:
    """Sign in with Google in a browser and print a refresh token (stdout) for the
    `auth: {client_id, client_secret, refresh_token}` of a google_ads destination."""
    from convsync.destinations.google_ads.oauth_flow import run_google

    run_google(client_secrets, client_id, api, port, not no_browser, timeout)


@app.command()
def demo(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="FILE", help="The plan (JSON lines); - for stdout."),
    ] = Path("demo-plan.jsonl"),
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            metavar="DIR",
            help="Keep the example config and its dated samples in DIR (new or empty).",
        ),
    ] = None,
) -> None:
    """Dry-run the example config over sample exports dated relative to today, then check
    the plan: exit 0 when it is what the demo is meant to show, 1 saying what differs."""
    from convsync.cli.demo import run_demo

    raise typer.Exit(run_demo(settings_of(ctx), output, keep, stdout))


# the ledger's commands (runs, report, failures, retry) and the alerts' (alerts test),
# listed after these in the help
from convsync.cli import alerts, ledger  # noqa: E402

#: the global options and whether each takes a value
_GLOBAL_OPTIONS = {
    "--config": True,
    "-c": True,
    "--database-url": True,
    "--log-format": True,
    "--log-level": True,
}


def global_options_first(args: Sequence[str]) -> list[str]:
    """``args`` with the global options moved before the command, so that
    ``convsync validate --config x.yaml`` means ``convsync --config x.yaml validate``.
    Nothing after ``--`` moves."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        takes_value = _GLOBAL_OPTIONS.get(name)
        if takes_value is None:
            rest.append(arg)
        elif "=" in arg or i + 1 >= len(args):
            hoisted.append(arg)
        else:
            hoisted += args[i : i + 2]
            i += 1
        i += 1
    return hoisted + rest


def main() -> None:
    """The single top-level handler: user errors without a traceback (exit 2), a refused
    run without one (exit 1), anything unexpected logged with it (exit 1). Usage errors
    and exit codes of commands are handled by typer itself (standalone mode)."""
    try:
        app(args=global_options_first(sys.argv[1:]), prog_name="convsync")
    except UserError as exc:
        print(f"convsync: {exc}", file=sys.stderr)
        sys.exit(2)
    except RunRefused as exc:
        print(f"convsync: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception:  # the one top-level handler of DESIGN.md
        log.exception("unexpected error")
        sys.exit(1)
