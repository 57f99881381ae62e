"""Indexes of the funnel (``convsync report``, the status page).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-13

``ix_deliveries_funnel`` (goal, destination, state, code, created_at): the funnel finds
the distinct (goal, destination, state, code) values by index seeks and counts each
one's deliveries planned in a window as one range of it, instead of grouping (sorting)
every delivery of the window. ``ix_conversions_goal_recorded_at`` replaces
``ix_conversions_goal`` (its prefix, which no query needs alone): a goal's conversions of
a window are one range of it. ``ix_conversions_adjustments`` holds only the adjustments,
by time. Measured in bench/report.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADJUSTMENT = "adjusts_id IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_funnel",
        "deliveries",
        ["goal", "destination", "state", "code", "created_at"],
    )
    op.drop_index("ix_conversions_goal", table_name="conversions")
    op.create_index("ix_conversions_goal_recorded_at", "conversions", ["goal", "recorded_at"])
    op.create_index(
        "ix_conversions_adjustments",
        "conversions",
        ["recorded_at"],
        sqlite_where=sa.text(_ADJUSTMENT),
        postgresql_where=sa.text(_ADJUSTMENT),
    )


def downgrade() -> None:
    op.drop_index("ix_conversions_adjustments", table_name="conversions")
    op.drop_index("ix_conversions_goal_recorded_at", table_name="conversions")
    op.create_index("ix_conversions_goal", "conversions", ["goal"])
    op.drop_index("ix_deliveries_funnel", table_name="deliveries")
