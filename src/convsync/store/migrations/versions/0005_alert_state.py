"""Alert state: which alert conditions fire, and whether their message went out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12

One row per condition (``key`` = ``rule:subject``): ``firing`` and ``since`` describe
its current state, ``message``/``details`` the last evaluation. ``notified_at`` is set
by the process that claims the state's message (NULL: not sent yet), ``sent_to`` lists
the channels it reached, so replicas sharing the ledger never send a message twice and
a channel that failed is tried again alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_NAME = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "alert_state",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("rule", _NAME, nullable=False),
        sa.Column("subject", _NAME, nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("since", _TS, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("notified_at", _TS, nullable=True),
        sa.Column("sent_to", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_alert_state"),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
