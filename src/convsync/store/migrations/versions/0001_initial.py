"""The ledger: conversions, deliveries and their event log, rejections, cursors, runs, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Explicit DDL, not ``metadata.create_all``: a revision must keep meaning the same
schema when ``schema.py`` moves on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)  # timestamptz on PostgreSQL, DATETIME (UTC text) on SQLite
_NAME = sa.String(200)
_TOKEN = sa.String(128)
_STATE = sa.String(16)


def upgrade() -> None:
    op.create_table(
        "conversions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("source", _NAME, nullable=False),
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column("goal", _NAME, nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("utc_offset_min", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(16), nullable=True),
        sa.Column("ids", sa.Text(), nullable=False),
        sa.Column("consent", sa.String(16), nullable=True),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("run_id", _TOKEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversions"),
        sa.UniqueConstraint("key", name="uq_conversions_key"),
    )
    op.create_index("ix_conversions_goal", "conversions", ["goal"])
    op.create_index("ix_conversions_recorded_at", "conversions", ["recorded_at"])

    op.create_table(
        "deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("conversion_id", _ID, nullable=False),
        sa.Column("goal", _NAME, nullable=False),
        sa.Column("destination", _NAME, nullable=False),
        sa.Column("state", _STATE, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("batch_id", _TOKEN, nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("retry_at", _TS, nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(
            ["conversion_id"], ["conversions.id"], name="fk_deliveries_conversion_id"
        ),
        sa.UniqueConstraint(
            "conversion_id", "destination", name="uq_deliveries_conversion_id_destination"
        ),
    )
    op.create_index("ix_deliveries_claim", "deliveries", ["destination", "state", "id"])
    op.create_index("ix_deliveries_batch_id", "deliveries", ["batch_id"])

    op.create_table(
        "delivery_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", _ID, nullable=False),
        sa.Column("run_id", _TOKEN, nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("from_state", _STATE, nullable=True),
        sa.Column("to_state", _STATE, nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("batch_id", _TOKEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_events"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_delivery_events_delivery_id"
        ),
    )
    op.create_index("ix_delivery_events_delivery_id", "delivery_events", ["delivery_id"])

    op.create_table(
        "record_rejections",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("source", _NAME, nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("column", sa.Text(), nullable=True),
        sa.Column("code", _NAME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=True),
        sa.Column("goal", _NAME, nullable=True),
        sa.Column("run_id", _TOKEN, nullable=False),
        sa.Column("first_seen_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_record_rejections"),
        sa.UniqueConstraint(
            "source", "origin", "code", name="uq_record_rejections_source_origin_code"
        ),
    )
    op.create_index("ix_record_rejections_run_id", "record_rejections", ["run_id"])
    op.create_index("ix_record_rejections_last_seen_at", "record_rejections", ["last_seen_at"])

    op.create_table(
        "source_cursors",
        sa.Column("source", _NAME, nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("run_id", _TOKEN, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_source_cursors"),
    )

    op.create_table(
        "processed_files",
        sa.Column("source", _NAME, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", _TS, nullable=False),
        sa.Column("run_id", _TOKEN, nullable=False),
        sa.PrimaryKeyConstraint("source", "path", name="pk_processed_files"),
    )

    op.create_table(
        "runs",
        sa.Column("run_id", _TOKEN, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("status", _STATE, nullable=False),
        sa.Column("trigger", _STATE, nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])

    op.create_table(
        "leases",
        sa.Column("name", _NAME, nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("acquired_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    for table in (
        "leases",
        "runs",
        "processed_files",
        "source_cursors",
        "record_rejections",
        "delivery_events",
        "deliveries",
        "conversions",
    ):
        op.drop_table(table)
