"""Runtime settings (not the config file): environment variables with the ``CONVSYNC_``
prefix, Docker secrets, then defaults.

Precedence, highest first: command-line flags (applied by the CLI) → environment
variables → files in the secrets directory (``/run/secrets/convsync_database_url`` …)
→ the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from convsync.sealing import MIN_PASSPHRASE_LENGTH

SECRETS_DIR = Path("/run/secrets")


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
        "sqlite:///./convsync.db", description="The ledger: SQLite file or PostgreSQL URL."
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    health_host: str = Field("0.0.0.0", description="Address of the health endpoint.")  # noqa: S104 (a container must listen beyond loopback)
    health_port: int = Field(8080, ge=0, le=65535, description="0 turns the endpoint off.")
    map_process_min_bytes: int = Field(
        50_000_000,
        ge=0,
        description="Source input at least this large is mapped in a second process.",
    )
    match_signals_key: SecretStr | None = Field(
        None,
        description=(
            "Key that encrypts IP addresses, user agents and session attributes kept in "
            "the ledger until delivered; without it each process makes its own, and "
            "signals recorded by an earlier process are dropped."
        ),
    )

    @field_validator("match_signals_key")
    @classmethod
    def _key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_PASSPHRASE_LENGTH:
            raise ValueError(f"must be at least {MIN_PASSPHRASE_LENGTH} characters long")
        return value


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; the secrets dir is read only where it exists
    (pydantic-settings warns about a missing one, and most machines have none)."""
    secrets_dir = SECRETS_DIR if SECRETS_DIR.is_dir() else None
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return Settings(_secrets_dir=secrets_dir, **values)


def database_password(url: str) -> str | None:
    """The password inside a database URL, so that logs can mask it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except ArgumentError:
        return None
