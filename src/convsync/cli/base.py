"""What every ``convsync`` command shares: the typer app and its global options, the
console it prints to, the settings and config of a call, a ledger opened to read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from convsync import package_version
from convsync.config.settings import Settings, database_password, load_settings
from convsync.core import sealing
from convsync.core.errors import UserError
from convsync.core.logging import configure_logging, register_secret

if TYPE_CHECKING:
    from convsync.config.models import LoadedConfig
    from convsync.store.ledger import Ledger

# Commands import what they use where they use it: `health` needs none of the config
# models, the ledger or the tables (tests/unit/test_lean_imports.py).

#: plain help in the usual layout: ``-h``/``--help``, no type annotations beside flags
_TYPER = {
    "no_args_is_help": True,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"], "max_content_width": 100},
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
#: the widest a table is printed off a terminal; on one, tables wrap at its width
TABLE_WIDTH = 100
stdout = Console()
if not stdout.is_terminal:
    stdout.width = TABLE_WIDTH  # piped, or `docker exec` without -t: tables wrap at 100


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


def settings_of(ctx: typer.Context) -> Settings:
    assert isinstance(ctx.obj, Settings)  # set by the callback
    return ctx.obj


def load_checked(settings: Settings) -> LoadedConfig:
    from convsync.config.loader import load_config

    loaded = load_config(settings.config)
    for secret in loaded.secrets:
        register_secret(secret)
    return loaded


def window_start(text: str, option: str = "--since") -> datetime:
    """The start of a ``--since`` window (or another ``option``'s moment, that long
    ago); a number needs its unit (``30`` could be seconds or days)."""
    if text.strip().isdigit():
        raise UserError(
            f"{option} {text}: a window needs a unit — did you mean {text.strip()}d? "
            "(s, m, h, d or w, like 24h, 7d or 4w)"
        )
    from convsync.core.configtypes import parse_duration

    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


@contextmanager
def ledger_opened(ctx: typer.Context) -> Iterator[Ledger]:
    from convsync.store.ledger import Ledger

    ledger = Ledger.open(settings_of(ctx).database_url, read_only=True)  # reports change nothing
    try:
        yield ledger
    finally:
        ledger.close()
