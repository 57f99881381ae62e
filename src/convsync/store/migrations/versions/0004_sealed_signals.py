"""Sealed match signals of conversions, and the deliveries an upload names.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

``conversions.sealed`` keeps a conversion's IP address, user agent and session
attributes as one encrypted token (see ``convsync.core.sealing``) until its deliveries are
settled; then it is set to NULL. The partial index holds only the conversions that
still have one, so finding them stays cheap however large the ledger grows.
``uploads.delivery_ids`` (JSON list) names the rows of an upload when a claimed batch
went as several requests: a verdict moves only those.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_SEALED = "sealed IS NOT NULL"


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild on SQLite): every column is nullable.
    op.add_column("conversions", sa.Column("sealed", sa.Text(), nullable=True))
    op.create_index(
        "ix_conversions_sealed",
        "conversions",
        ["id"],
        sqlite_where=sa.text(_HAS_SEALED),
        postgresql_where=sa.text(_HAS_SEALED),
    )
    op.add_column("uploads", sa.Column("delivery_ids", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_index("ix_conversions_sealed", table_name="conversions")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("delivery_ids")
    with op.batch_alter_table("conversions") as batch:
        batch.drop_column("sealed")
