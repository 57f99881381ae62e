"""The index of the daily volume per goal (the status page, the volume_drop alert).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

``ix_conversions_goal_occurred_at`` (goal, adjusts_id, occurred_at): a goal's
conversions (``adjusts_id`` NULL, adjustments left out) of a day are one range of it,
counted without reading the table, instead of a scan of every conversion recorded in
the weeks looked at.
Measured in bench/report.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_conversions_goal_occurred_at",
        "conversions",
        ["goal", "adjusts_id", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_conversions_goal_occurred_at", table_name="conversions")
