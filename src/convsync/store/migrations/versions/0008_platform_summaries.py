"""What the platforms report of the uploads in aggregate: the Google Ads API's upload
summaries per goal and upload day, and when each destination's were last read.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

``platform_summaries`` (destination, goal, upload_date): the successful, failed and
pending events Google counted for the goal's conversion action on that day, and its
alerts ({error code: share}) on the latest day with uploads. ``platform_summary_reads``
(destination): the day of the last read, so that a destination is read once a day.
The primary keys are what the funnel searches by (destination, goal, a range of days).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_NAME = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "platform_summaries",
        sa.Column("destination", _NAME, nullable=False),
        sa.Column("goal", _NAME, nullable=False),
        sa.Column("upload_date", sa.Date(), nullable=False),
        sa.Column("conversion_action_id", sa.BigInteger(), nullable=False),
        sa.Column("successful", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("alerts", sa.JSON(), nullable=True),
        sa.Column("fetched_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("destination", "goal", "upload_date", name="pk_platform_summaries"),
    )
    op.create_table(
        "platform_summary_reads",
        sa.Column("destination", _NAME, nullable=False),
        sa.Column("read_on", sa.Date(), nullable=False),
        sa.Column("read_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("destination", name="pk_platform_summary_reads"),
    )


def downgrade() -> None:
    op.drop_table("platform_summary_reads")
    op.drop_table("platform_summaries")
