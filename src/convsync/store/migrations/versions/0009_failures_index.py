"""The index of the newest failures (``convsync failures``, the status page).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

``ix_deliveries_failures`` (updated_at, id), holding only the failed deliveries (and
those waiting for a look-up of their upload, ``schema.FAILED_ROWS``): the newest of them
are its last entries, instead of a scan of every delivery changed in the window. Pending
and delivered rows are never in it, so recording and delivering do not maintain it.
Measured in bench/report.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: schema.FAILED_ROWS as it was at this revision
_FAILED_ROWS = (
    "state = 'rejected' OR state = 'deferred' OR state = 'uncertain' OR state = 'unmatched' "
    "OR (state = 'sending' AND code = 'upload_unclear')"
)


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_failures",
        "deliveries",
        ["updated_at", "id"],
        sqlite_where=sa.text(_FAILED_ROWS),
        postgresql_where=sa.text(_FAILED_ROWS),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_failures", table_name="deliveries")
