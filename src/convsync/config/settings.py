"""Runtime settings (not the config file): environment variables with the ``CONVSYNC_``
prefix, Docker secrets, then defaults.

Precedence, highest first: command-line flags (applied by the CLI) → environment
variables → files in the secrets directory (``/run/secrets/convsync_database_url`` …)
→ the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from convsync.config.messages import describe, kind_of
from convsync.core.errors import UserError
from convsync.core.sealing import MIN_PASSPHRASE_LENGTH

SECRETS_DIR = Path("/run/secrets")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
#: ``convsync.db`` beside the config file (``ledger_beside_config``), wherever a command
#: runs: a cron job in another folder must find the same ledger, or it would plan every
#: conversion again
DEFAULT_LEDGER_URL = "sqlite:///convsync.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONVSYNC_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
        # an error names the setting, never its value: some values are secrets
        hide_input_in_errors=True,
    )

    config: Path = Field(Path("convsync.yaml"), description="The YAML config file.")
    database_url: str = Field(
        DEFAULT_LEDGER_URL,
        description="The ledger: SQLite file or PostgreSQL URL; a relative SQLite path is "
        "relative to the config file's folder.",
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: LogLevel = "INFO"
    health_host: str = Field("0.0.0.0", description="Address of the health endpoint.")  # noqa: S104 (a container must listen beyond loopback)
    health_port: int = Field(8080, ge=0, le=65535, description="0 turns the endpoint off.")
    map_process_min_bytes: int | None = Field(
        None,
        ge=0,
        description=(
            "Source input at least this large is mapped in a second process (unset: "
            "never): faster on a machine with a spare core, for more memory and CPU."
        ),
    )
    match_signals_key: SecretStr | None = Field(
        None,
        description=(
            "Key that encrypts IP addresses, user agents and session attributes kept in "
            "the ledger until delivered; without it each process makes its own, and "
            "signals recorded by an earlier process are dropped."
        ),
    )

    @field_validator("database_url")
    @classmethod
    def _ledger_beside_config(cls, value: str, info: ValidationInfo) -> str:
        config = info.data.get("config")
        return ledger_beside_config(value, config) if isinstance(config, Path) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        # "info" is INFO; anything else is left as written, for the error to show
        if isinstance(value, str) and value.strip().upper() in get_args(LogLevel):
            return value.strip().upper()
        return value

    @field_validator("match_signals_key")
    @classmethod
    def _key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_PASSPHRASE_LENGTH:
            raise ValueError(f"must be at least {MIN_PASSPHRASE_LENGTH} characters long")
        return value


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; the secrets dir is read only where it exists
    (pydantic-settings warns about a missing one, and most machines have none).

    ``overrides`` are the command-line flags, each given even when unset: a bad setting
    is named by its flag where it has one, by its variable always (``UserError``)."""
    secrets_dir = SECRETS_DIR if SECRETS_DIR.is_dir() else None
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(_secrets_dir=secrets_dir, **values)
    except ValidationError as exc:
        raise UserError(_invalid_settings(exc, set(overrides), secrets_dir)) from None


def _invalid_settings(exc: ValidationError, flags: set[str], secrets_dir: Path | None) -> str:
    """``--log-level / CONVSYNC_LOG_LEVEL: 'verbose' is not one of DEBUG, …``, a line
    per bad setting; a secret's value (the ledger URL's password, the signals key) is
    never shown."""
    problems = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        names = [f"--{name.replace('_', '-')}"] if name in flags else []
        names.append(f"{Settings.model_config.get('env_prefix', '')}{name}".upper())
        secret_file = secrets_dir / f"convsync_{name}" if secrets_dir is not None else None
        if secret_file is not None and secret_file.is_file():
            names.append(str(secret_file))
        got = f"{kind_of(error.get('input'))} (not shown: a secret)" if name in _SECRET else None
        problems.append(f"{' / '.join(names)}: {describe(error, got)}")
    if len(problems) == 1:
        return problems[0]
    return "\n".join([f"{len(problems)} invalid settings:", *(f"  - {p}" for p in problems)])


#: settings whose values are never shown: the ledger URL may hold a password
_SECRET = frozenset(
    {"database_url"}
    | {
        name
        for name, info in Settings.model_fields.items()
        if SecretStr in (info.annotation, *get_args(info.annotation))
    }
)


def ledger_beside_config(url: str, config: Path) -> str:
    """``url`` with a relative SQLite file made absolute against the config file's
    folder, like every other relative path of a config; other URLs as they are."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # the ledger reports the bad URL when it opens it
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or Path(database).is_absolute()
    ):
        return url
    folder = Path(os.path.abspath(config)).parent
    return parsed.set(database=str(folder / database)).render_as_string(hide_password=False)


def database_password(url: str) -> str | None:
    """The password inside a database URL, so that logs can mask it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except ArgumentError:
        return None
