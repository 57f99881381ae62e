"""Alembic, driven from code: the ledger upgrades itself when it opens.

There is no ``alembic.ini``: the script location is the package's ``migrations``
folder, and the connection to migrate is handed to ``env.py`` through
``Config.attributes`` so the upgrade runs inside a transaction this module controls.

A ledger already at this code's revision (every run but the first after an upgrade) is
recognised with one plain query, without loading alembic (measured: 0.075 s of CPU and
9 MB per process, against 0.003 s and under 1 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from convsync.core.errors import UserError
from convsync.store.engine import WRITE

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = "convsync.store:migrations"
#: the newest migration's revision, the schema this code reads and writes (a test keeps
#: it equal to alembic's head)
HEAD_REVISION = "0009"

#: pg_advisory_xact_lock key ("conv"): replicas that start together migrate one at a time
_PG_MIGRATION_LOCK = 0x636F6E76


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The head of the migration scripts (alembic's own view; see ``HEAD_REVISION``)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only possible if the package was shipped without its migrations
        raise RuntimeError("convsync's ledger migrations are missing from the package")
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def current_revision(connection: Connection) -> str | None:
    """The ledger's revision, None when it has no convsync schema yet (as alembic reads
    it: the one row of ``alembic_version`` in the connection's default schema)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    if len(rows) > 1:  # branches: never made by convsync; alembic's own reading says so
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()
    return str(rows[0][0]) if rows else None


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
            if current == HEAD_REVISION:
                return
            if current is not None and current not in known_revisions():
                raise UserError(
                    f"the ledger at {display_url} is at revision {current}, which this "
                    "convsync does not know: it was written by a newer convsync; run that "
                    "version, or restore a backup of the ledger"
                )
            from alembic import command

            command.upgrade(alembic_config(connection), "head")


def create_standin(engine: Engine) -> None:
    """The schema of an in-memory stand-in (a dry run before the first run), made from
    ``schema.py`` at this code's revision: the same tables and indexes the migrations
    make (a test compares them), without loading alembic."""
    from convsync.store.schema import metadata

    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            metadata.create_all(connection)
            connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            )
            connection.execute(
                text("INSERT INTO alembic_version VALUES (:head)"), {"head": HEAD_REVISION}
            )


def require_head(engine: Engine, display_url: str) -> None:
    """Read-only open: refuse a ledger whose schema is not this code's, never migrate."""
    with engine.connect() as connection, connection.begin():
        current = current_revision(connection)
    head = HEAD_REVISION
    if current != head:
        shown = current if current is not None else "none (no convsync schema yet)"
        raise UserError(
            f"the ledger at {display_url} is at revision {shown}, this convsync needs "
            f"{head}: run `convsync sync --once` (without --dry-run) to upgrade it, "
            "then try again"
        )
