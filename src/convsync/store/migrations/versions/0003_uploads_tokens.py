"""Uploads followed up by the reconcile step, and tokens kept between runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_NAME = sa.String(200)
_TOKEN = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("destination", _NAME, nullable=False),
        sa.Column("batch_id", _TOKEN, nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("next_check_at", _TS, nullable=True),
        sa.Column("run_id", _TOKEN, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.UniqueConstraint("destination", "batch_id", name="uq_uploads_destination_batch_id"),
    )
    op.create_index("ix_uploads_due", "uploads", ["destination", "final", "next_check_at"])
    op.create_table(
        "tokens",
        sa.Column("name", _NAME, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_tokens"),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_index("ix_uploads_due", table_name="uploads")
    op.drop_table("uploads")
