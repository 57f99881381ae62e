"""Adjustments and kept record fields.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

An adjustment (a retraction or a restatement of a conversion already recorded) is a
``conversions`` row of its own that points at the conversion it changes
(``adjusts_id``), so its deliveries reuse the whole delivery state machine. ``attributes``
keeps the record fields a destination asked for (Google Ads custom variables, call
details), as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild on SQLite): every column is nullable.
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes a foreign key only inside the column definition of ADD COLUMN
        op.execute(
            "ALTER TABLE conversions ADD COLUMN adjusts_id INTEGER "
            "CONSTRAINT fk_conversions_adjusts_id REFERENCES conversions (id)"
        )
    else:
        op.add_column("conversions", sa.Column("adjusts_id", _ID, nullable=True))
        op.create_foreign_key(
            "fk_conversions_adjusts_id", "conversions", "conversions", ["adjusts_id"], ["id"]
        )
    op.add_column("conversions", sa.Column("adjustment", sa.String(16), nullable=True))
    op.add_column("conversions", sa.Column("attributes", sa.Text(), nullable=True))
    op.create_index("ix_conversions_adjusts_id", "conversions", ["adjusts_id"])


def downgrade() -> None:
    op.drop_index("ix_conversions_adjusts_id", table_name="conversions")
    with op.batch_alter_table("conversions") as batch:
        batch.drop_column("attributes")
        batch.drop_column("adjustment")
        batch.drop_constraint("fk_conversions_adjusts_id", type_="foreignkey")
        batch.drop_column("adjusts_id")
