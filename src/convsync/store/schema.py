"""The ledger's tables (SQLAlchemy Core) and the one column type they need beyond SQL's.

This module describes the schema *as the code reads it*; the schema in a database is
made by the Alembic revisions in ``migrations/versions`` (frozen, explicit DDL), and
a test checks that the two agree.

Sizes: names from the config file (sources, goals, destinations) are short strings;
anything that comes from outside (record ids, messages, file paths) is ``Text``, so a
long CRM id can never fail an insert on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from convsync.core.model import UNCLEAR_CODE
from convsync.core.model import DeliveryState as _S


class _SQLiteUTCText(sa.types.TypeEngine[str]):
    """``DATETIME`` in SQLite's DDL; the text itself is written and read by UTCDateTime.

    SQLAlchemy's own SQLite DATETIME formats with ``%`` and parses with a regex, two
    Python calls per value on the record step's hot path; ``isoformat`` and
    ``fromisoformat`` are C and produce/accept the same fixed-width text. Not a
    ``DateTime`` subclass on purpose: the dialect would swap it for its own DATETIME.
    """

    __visit_name__ = "DATETIME"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A moment in time: timezone-aware in Python, UTC in the database.

    PostgreSQL stores ``timestamptz``. SQLite stores naive UTC text
    ``YYYY-MM-DD HH:MM:SS.ffffff``, always with microseconds, so comparing the text
    compares the moments (``retry_at <= :now`` works in SQL).
    Naive datetimes are refused: guessing their zone is how off-by-three-hours bugs start.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return _SQLiteUTCText()

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | str | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the ledger")
        utc = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return utc
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds")

    def process_result_value(
        self, value: datetime | str | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: 64-bit ids on PostgreSQL; on SQLite only ``INTEGER PRIMARY KEY`` is the rowid alias
#: that autoincrements without a sequence.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NAME = sa.String(200)  # a name from the config file
TOKEN = sa.String(128)  # run ids, batch ids
STATE = sa.String(16)

#: primary keys carry the same names as in the migrations (the other constraints and
#: indexes are named where they are declared)
metadata = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s"})

conversions = sa.Table(
    "conversions",
    metadata,
    # Deliveries point at this integer, not at the 64-character key: the key is a hash,
    # so an index led by it takes every insert at a random page, and a UNIQUE
    # (conversion_key, destination) index written three times per record made SQLite's
    # record step I/O-bound at about half the required speed. Ids grow in insert order,
    # which keeps the deliveries' unique index append-only.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("source", NAME, nullable=False),
    sa.Column("record_id", sa.Text, nullable=False),
    sa.Column("goal", NAME, nullable=False),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    # the offset the source meant, so the conversion reads back as it was written
    sa.Column("utc_offset_min", sa.Integer, nullable=False),
    # a decimal string: money never passes through a float
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("currency", sa.String(16), nullable=True),
    sa.Column("ids", sa.Text, nullable=False),
    sa.Column("consent", sa.String(16), nullable=True),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("run_id", TOKEN, nullable=False),
    # An adjustment is a row of its own that changes the conversion ``adjusts_id``:
    # ``adjustment`` says how (retraction | restatement), ``value``/``currency`` hold a
    # restatement's new total and ``recorded_at`` is the adjustment's time. Being a
    # conversion row, its deliveries go through the same state machine.
    sa.Column(
        "adjusts_id",
        BigId,
        sa.ForeignKey("conversions.id", name="fk_conversions_adjusts_id"),
        nullable=True,
    ),
    sa.Column("adjustment", STATE, nullable=True),
    # record fields a destination keeps (custom variables, call details), JSON
    sa.Column("attributes", sa.Text, nullable=True),
    # the kept fields that are personal data (IP address, user agent, session
    # attributes: ``convsync.core.sealing.SEALED_FIELDS``), as one encrypted token; set to
    # NULL once the conversion's deliveries are settled
    sa.Column("sealed", sa.Text, nullable=True),
    sa.UniqueConstraint("key", name="uq_conversions_key"),
    # the funnel counts a goal's conversions of a window on one range of it
    sa.Index("ix_conversions_goal_recorded_at", "goal", "recorded_at"),
    sa.Index("ix_conversions_recorded_at", "recorded_at"),
    # a goal's conversions (adjusts_id NULL) by when they occurred: its daily volume is
    # one range a day, read from the index alone
    sa.Index("ix_conversions_goal_occurred_at", "goal", "adjusts_id", "occurred_at"),
    sa.Index("ix_conversions_adjusts_id", "adjusts_id"),
    # only the adjustments (few), by time: the funnel's rows of their own
    sa.Index(
        "ix_conversions_adjustments",
        "recorded_at",
        sqlite_where=sa.text("adjusts_id IS NOT NULL"),
        postgresql_where=sa.text("adjusts_id IS NOT NULL"),
    ),
    # only the conversions that still hold sealed values: what drop_settled_signals reads
    sa.Index(
        "ix_conversions_sealed",
        "id",
        sqlite_where=sa.text("sealed IS NOT NULL"),
        postgresql_where=sa.text("sealed IS NOT NULL"),
    ),
)

#: the deliveries ``convsync failures`` lists: refused, deferred, uncertain, unmatched, or
#: sent and waiting for a look-up of an upload whose answer was lost. Literal text, the
#: same in the partial index and in the query, so that both databases see the query's
#: condition implies the index's (SQLite cannot tell with bound parameters). Equalities
#: joined by OR, not IN: SQLite evaluates a partial index's condition on every row it
#: writes, and with an IN list the record step took 7 % more CPU (bench/pipeline.py).
FAILED_ROWS = " OR ".join(
    [
        *(f"state = '{s.value}'" for s in (_S.REJECTED, _S.DEFERRED, _S.UNCERTAIN, _S.UNMATCHED)),
        f"(state = '{_S.SENDING.value}' AND code = '{UNCLEAR_CODE}')",
    ]
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "conversion_id",
        BigId,
        sa.ForeignKey("conversions.id", name="fk_deliveries_conversion_id"),
        nullable=False,
    ),
    sa.Column("goal", NAME, nullable=False),
    sa.Column("destination", NAME, nullable=False),
    sa.Column("state", STATE, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("batch_id", TOKEN, nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("retry_at", UTCDateTime, nullable=True),
    sa.Column("code", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint(
        "conversion_id", "destination", name="uq_deliveries_conversion_id_destination"
    ),
    # The claim query is "this destination, this state, lowest ids first": with id as
    # the third column both databases read due rows in id order straight off the index
    # instead of sorting every pending row. Due deferred rows are found on the same
    # index (retry_at is checked on the few deferred rows).
    sa.Index("ix_deliveries_claim", "destination", "state", "id"),
    sa.Index("ix_deliveries_batch_id", "batch_id"),
    # The funnel (report, status page) finds the few distinct (goal, destination, state,
    # code) by seeks and counts each one's deliveries of a window as one range: grouping
    # a month of deliveries would sort every one of them (store/funnel.py).
    sa.Index("ix_deliveries_funnel", "goal", "destination", "state", "code", "created_at"),
    # Only the failed rows (and those waiting for a look-up of their upload), by when
    # they changed: the newest failures (`convsync failures`, the status page) are the
    # index's last entries, not a scan of every delivery. Pending rows are never in it.
    sa.Index(
        "ix_deliveries_failures",
        "updated_at",
        "id",
        sqlite_where=sa.text(FAILED_ROWS),
        postgresql_where=sa.text(FAILED_ROWS),
    ),
)

delivery_events = sa.Table(
    "delivery_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        BigId,
        sa.ForeignKey("deliveries.id", name="fk_delivery_events_delivery_id"),
        nullable=False,
    ),
    sa.Column("run_id", TOKEN, nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("from_state", STATE, nullable=True),
    sa.Column("to_state", STATE, nullable=False),
    sa.Column("code", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("batch_id", TOKEN, nullable=True),
    sa.Index("ix_delivery_events_delivery_id", "delivery_id"),
)

record_rejections = sa.Table(
    "record_rejections",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", NAME, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("column", sa.Text, nullable=True),
    sa.Column("code", NAME, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record_id", sa.Text, nullable=True),
    sa.Column("goal", NAME, nullable=True),
    sa.Column("run_id", TOKEN, nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "origin", "code", name="uq_record_rejections_source_origin_code"),
    sa.Index("ix_record_rejections_run_id", "run_id"),
    sa.Index("ix_record_rejections_last_seen_at", "last_seen_at"),
)

source_cursors = sa.Table(
    "source_cursors",
    metadata,
    sa.Column("source", NAME, primary_key=True),
    sa.Column("cursor", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("run_id", TOKEN, nullable=False),
)

processed_files = sa.Table(
    "processed_files",
    metadata,
    sa.Column("source", NAME, primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("processed_at", UTCDateTime, nullable=False),
    sa.Column("run_id", TOKEN, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", TOKEN, primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("status", STATE, nullable=False),
    sa.Column("trigger", STATE, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("summary", sa.JSON, nullable=True),
    sa.Index("ix_runs_started_at", "started_at"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", NAME, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),  # host names alone may be 253 chars
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

#: uploads a platform processes after answering (Metrica): followed up by the reconcile
#: step until final; their deliveries share ``batch_id`` (or ``delivery_ids`` names them)
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("destination", NAME, nullable=False),
    sa.Column("batch_id", TOKEN, nullable=False),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("final", sa.Boolean, nullable=False),
    sa.Column("next_check_at", UTCDateTime, nullable=True),
    sa.Column("run_id", TOKEN, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # the deliveries the upload carried (JSON list), when not the whole batch
    sa.Column("delivery_ids", sa.Text, nullable=True),
    sa.UniqueConstraint("destination", "batch_id", name="uq_uploads_destination_batch_id"),
    sa.Index("ix_uploads_due", "destination", "final", "next_check_at"),
)

#: tokens a destination must keep between runs (VK Ads: a client's live tokens are few)
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("name", NAME, primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

#: alert conditions (``rule:subject``), whether they fire, and whether the message of
#: their current state went out: ``notified_at`` is claimed by one process before it
#: sends (NULL: not yet), ``sent_to`` names the channels it reached (JSON list)
alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("rule", NAME, nullable=False),
    sa.Column("subject", NAME, nullable=False),
    sa.Column("firing", sa.Boolean, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.Column("sent_to", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

#: what the Google Ads API's upload summaries reported per goal and upload day (Google's
#: date, in the account's time zone): a re-read replaces the day's counts; ``alerts``
#: ({error code: share 0…1}) belong to the latest day with uploads when read, NULL on the
#: others (store/platform_reports.py)
platform_summaries = sa.Table(
    "platform_summaries",
    metadata,
    sa.Column("destination", NAME, primary_key=True),
    sa.Column("goal", NAME, primary_key=True),
    sa.Column("upload_date", sa.Date, primary_key=True),
    sa.Column("conversion_action_id", sa.BigInteger, nullable=False),
    sa.Column("successful", sa.BigInteger, nullable=False),
    sa.Column("failed", sa.BigInteger, nullable=False),
    sa.Column("pending", sa.BigInteger, nullable=False),
    sa.Column("alerts", sa.JSON, nullable=True),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
)

#: the day (in the config's timezone) each destination's upload summaries were last read
platform_summary_reads = sa.Table(
    "platform_summary_reads",
    metadata,
    sa.Column("destination", NAME, primary_key=True),
    sa.Column("read_on", sa.Date, nullable=False),
    sa.Column("read_at", UTCDateTime, nullable=False),
)
