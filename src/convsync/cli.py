"""The ``convsync`` command: a thin typer app with one error handler (``main``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
import typer
from rich.console import Console

from convsync import package_version, sealing, views
from convsync.config import LoadedConfig
from convsync.config_loader import config_schema, load_config
from convsync.configbase import parse_duration
from convsync.destinations.google_ads.oauth_flow import Api as GoogleApi
from convsync.errors import RunRefused, UserError
from convsync.logging import configure_logging, register_secret
from convsync.settings import Settings, database_password, load_settings
from convsync.views import TABLE_WIDTH

if TYPE_CHECKING:
    from convsync.store.ledger import Ledger

#: plain help in the usual layout: ``-h``/``--help``, no type annotations beside flags
_TYPER = {
    "no_args_is_help": True,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}
app = typer.Typer(
    name="convsync",
    help="Sync conversions from CRMs and exports to Google Ads, Yandex.Metrica and VK Ads.\n\n"
    "Global options may come before or after the command.",
    add_completion=False,
    pretty_exceptions_enable=False,
    **_TYPER,  # type: ignore[arg-type]
)
config_app = typer.Typer(help="The config file.", **_TYPER)  # type: ignore[arg-type]
app.add_typer(config_app, name="config")
auth_app = typer.Typer(help="Credentials for the platforms.", **_TYPER)  # type: ignore[arg-type]
app.add_typer(auth_app, name="auth")
stdout = Console()
if not stdout.is_terminal:
    stdout.width = TABLE_WIDTH  # piped, or `docker exec` without -t: tables wrap at 100
log = structlog.get_logger("convsync.cli")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"convsync {package_version()}")
        raise typer.Exit


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="Config file; env CONVSYNC_CONFIG (default convsync.yaml).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Ledger URL; env CONVSYNC_DATABASE_URL (default: convsync.db beside the "
            "config file; a relative SQLite path is relative to the config file's folder).",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(metavar="FORMAT", help="auto|json|console; env CONVSYNC_LOG_FORMAT."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(metavar="LEVEL", help="DEBUG|INFO|WARNING|ERROR; env CONVSYNC_LOG_LEVEL."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    # a bad setting raises UserError naming its flag and variable
    settings = load_settings(
        config=config, database_url=database_url, log_format=log_format, log_level=log_level
    )
    configure_logging(settings.log_format, settings.log_level)
    password = database_password(settings.database_url)
    if password:
        register_secret(password)
    key = settings.match_signals_key
    if key is not None:
        register_secret(key)
    # IP addresses and user agents wait for delivery sealed with this key (sealing.py)
    sealing.configure(key.get_secret_value() if key is not None else None)
    ctx.obj = settings


def _settings(ctx: typer.Context) -> Settings:
    assert isinstance(ctx.obj, Settings)  # set by the callback
    return ctx.obj


def _load(settings: Settings) -> LoadedConfig:
    loaded = load_config(settings.config)
    for secret in loaded.secrets:
        register_secret(secret)
    return loaded


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
    from convsync.runner import run_once

    if dry_run and validate:
        raise UserError(
            "--dry-run and --validate do not go together: --dry-run sends nothing, "
            "--validate has the platform check what would be sent"
        )
    if output is not None and not (dry_run or validate):
        raise UserError("--output writes the dry-run plan or the --validate results: add one")
    settings = _settings(ctx)
    summary = run_once(
        settings,
        _load(settings),
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
    from convsync.runner import serve

    settings = _settings(ctx)
    serve(settings, _load(settings))


@app.command()
def health(ctx: typer.Context) -> None:
    """Exit 0 if a `convsync run` on this machine answers healthy (Docker HEALTHCHECK)."""
    from convsync.health import probe

    ok, body = probe(_settings(ctx).health_port)
    typer.echo(body)
    raise typer.Exit(0 if ok else 1)


@app.command()
def validate(ctx: typer.Context) -> None:
    """Check the config file and the source files it names; the verdict comes last.

    Every problem of the config with its file, line and path; the header of every
    source file against the mapped columns; what a sync would warn of (a glob that
    matches no file, an empty file, risky defaults)."""
    from convsync.mapping import make_source
    from convsync.notice_scan import scan_notices

    loaded = _load(_settings(ctx))
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
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
) -> None:
    """Recent runs, newest first."""
    with _ledger(ctx) as ledger:
        views.print_runs(stdout, ledger.recent_runs(limit), ledger.url_for_display)


@app.command()
def report(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(metavar="DURATION", help="Window, like 24h, 7d or 4w.")
    ] = "7d",
) -> None:
    """The funnel per goal and destination: pulled → mapped → planned → delivered."""
    start = _since(since)
    with _ledger(ctx) as ledger:
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
    with _ledger(ctx) as ledger:
        views.print_failures(stdout, ledger.failures(_since(since), limit))


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
    start = _since(since)
    ledger = Ledger.open(_settings(ctx).database_url, read_only=dry_run)
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
    from convsync.demo.run import run_demo

    raise typer.Exit(run_demo(_settings(ctx), output, keep, stdout))


def _since(text: str) -> datetime:
    """The start of a ``--since`` window; a number needs its unit (``30`` could be
    seconds or days)."""
    if text.strip().isdigit():
        raise UserError(
            f"--since {text}: a window needs a unit — did you mean {text.strip()}d? "
            "(s, m, h, d or w, like 24h, 7d or 4w)"
        )
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError as exc:
        raise UserError(f"--since: {exc}") from None


@contextmanager
def _ledger(ctx: typer.Context) -> Iterator[Ledger]:
    from convsync.store.ledger import Ledger

    ledger = Ledger.open(_settings(ctx).database_url, read_only=True)  # reports change nothing
    try:
        yield ledger
    finally:
        ledger.close()


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
