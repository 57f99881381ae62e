"""Alembic, driven from code: the ledger upgrades itself when it opens.

There is no ``alembic.ini``: the script location is the package's ``migrations``
folder, and the connection to migrate is handed to ``env.py`` through
``Config.attributes`` so the upgrade runs inside a transaction this module controls.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from convsync.errors import UserError
from convsync.store.engine import WRITE

SCRIPT_LOCATION = "convsync.store:migrations"

#: pg_advisory_xact_lock key ("conv"): replicas that start together migrate one at a time
_PG_MIGRATION_LOCK = 0x636F6E76


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only possible if the package was shipped without its migrations
        raise RuntimeError("convsync's ledger migrations are missing from the package")
    return head


def known_revisions() -> set[str]:
    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, display_url: str) -> None:
    """Bring the schema to head, in one transaction (both databases have transactional DDL).

    Several processes may open the same ledger at once: SQLite serialises them with
    BEGIN IMMEDIATE, PostgreSQL with a transaction-scoped advisory lock; whoever comes
    second finds the schema at head and does nothing.
    """
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            current = current_revision(connection)
            if current is not None and current not in known_revisions():
                raise UserError(
                    f"the ledger at {display_url} is at revision {current}, which this "
                    "convsync does not know: it was written by a newer convsync; run that "
                    "version, or restore a backup of the ledger"
                )
            command.upgrade(alembic_config(connection), "head")


def require_head(engine: Engine, display_url: str) -> None:
    """Read-only open: refuse a ledger whose schema is not this code's, never migrate."""
    with engine.connect() as connection, connection.begin():
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        shown = current if current is not None else "none (no convsync schema yet)"
        raise UserError(
            f"the ledger at {display_url} is at revision {shown}, this convsync needs "
            f"{head}: run `convsync sync --once` (without --dry-run) to upgrade it, "
            "then try again"
        )
