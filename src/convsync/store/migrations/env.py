"""Alembic environment: convsync migrates only through ``convsync.store.migrate``.

The caller passes an open connection (inside its own transaction) in
``config.attributes["connection"]``; there is no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from convsync.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "convsync's migrations run through convsync.store.migrate (they need a connection "
        "in config.attributes), not from the alembic command line"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables for later revisions
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
