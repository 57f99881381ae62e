"""Opening a ledger: migrations at start, idempotent re-open, read-only (dry-run) mode."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from convsync.core.errors import UserError
from convsync.store import Ledger, LedgerReadOnlyError
from convsync.store.migrate import HEAD_REVISION, current_revision, head_revision
from convsync.store.schema import metadata

from .factory import NOW, conversion, plan

TABLES = {
    "alembic_version",
    "conversions",
    "deliveries",
    "delivery_events",
    "record_rejections",
    "source_cursors",
    "processed_files",
    "runs",
    "leases",
}


def _record_one(ledger: Ledger, record_id: str = "1") -> None:
    c = conversion(record_id)
    ledger.record_chunk(
        run_id="r1",
        source="shop",
        conversions=[c],
        deliveries=plan([c]),
        rejections=[],
        cursor={"since": "2026-11-20"},
        files_done=[],
        now=NOW,
    )


def _revision(db: Engine) -> str | None:
    with db.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_open_creates_the_schema_at_head(ledger: Ledger, db: Engine) -> None:
    assert set(sa.inspect(db).get_table_names()) >= TABLES
    assert _revision(db) == head_revision()


def test_the_code_knows_its_head_without_alembic(ledger: Ledger, db: Engine) -> None:
    # an up-to-date ledger opens without loading alembic: the constant must name the
    # newest migration, and the plain query must read what alembic reads
    assert head_revision() == HEAD_REVISION
    with db.connect() as connection:
        assert current_revision(connection) == HEAD_REVISION
        connection.execute(sa.text("DELETE FROM alembic_version"))
        assert current_revision(connection) is None
        connection.execute(sa.text("DROP TABLE alembic_version"))
        assert current_revision(connection) is None
        connection.rollback()


def test_schema_py_matches_the_migrations(ledger: Ledger, db: Engine) -> None:
    with db.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_reopen_is_idempotent_and_keeps_data(ledger_url: str) -> None:
    first = Ledger.open(ledger_url)
    _record_one(first)
    first.close()
    second = Ledger.open(ledger_url)
    try:
        assert second.existing_keys([conversion("1").key]) == {conversion("1").key}
        assert second.source_state("shop").cursor == {"since": "2026-11-20"}
    finally:
        second.close()


def test_read_only_open_of_a_missing_sqlite_file_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    ledger = Ledger.open(f"sqlite:///{path}", read_only=True)
    try:
        assert ledger.existing_keys(["k"]) == set()
        assert ledger.source_state("shop").cursor is None
        assert list(ledger.due_deliveries(destination="google", now=NOW)) == []
        assert ledger.recent_runs() == []
        assert ledger.funnel(NOW - timedelta(days=7)) == []
        with pytest.raises(LedgerReadOnlyError):
            ledger.start_run(run_id="r", trigger="once", started_at=NOW)
    finally:
        ledger.close()
    assert list(tmp_path.iterdir()) == []


def _shape(connection: sa.Connection) -> dict[str, object]:
    """Every table's columns and indexes, as SQLite describes them."""
    inspector = sa.inspect(connection)
    shape: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        indexes = sorted(
            (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
        )
        rows = connection.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
            {"t": table},
        )
        # partial indexes: their WHERE clause (the migrations' and schema.py's text differ
        # only in spacing and quoting)
        partial = sorted(
            (name, " ".join(sql.split("WHERE", 1)[1].replace('"', "").split()))
            for name, sql in rows
            if sql and "WHERE" in sql
        )
        shape[table] = (columns, indexes, partial)
    return shape


def test_the_dry_run_stand_in_has_the_migrated_schema(tmp_path: Path) -> None:
    # a dry run before the first run stands in an in-memory ledger made from schema.py
    # (without alembic): it must be the schema the migrations make
    migrated = Ledger.open(f"sqlite:///{tmp_path / 'migrated.db'}")
    standin = Ledger.open(f"sqlite:///{tmp_path / 'absent.db'}", read_only=True)
    try:
        with migrated._engine.connect() as a, standin._engine.connect() as b:
            assert _shape(a) == _shape(b)
            assert set(_shape(a)) >= TABLES
            assert current_revision(b) == HEAD_REVISION
    finally:
        migrated.close()
        standin.close()


def test_read_only_open_of_an_existing_ledger_reads_and_never_writes(ledger_url: str) -> None:
    writer = Ledger.open(ledger_url)
    _record_one(writer)
    writer.close()
    reader = Ledger.open(ledger_url, read_only=True)
    try:
        key = conversion("1").key
        assert reader.existing_keys([key]) == {key}
        assert [d.conversion.key for d in reader.due_deliveries(destination="google", now=NOW)] == [
            key
        ]
        with pytest.raises(LedgerReadOnlyError):
            reader.acquire_lease("sync", "me", timedelta(minutes=1), NOW)
    finally:
        reader.close()


def test_read_only_sqlite_file_is_opened_read_only(sqlite_url: str, tmp_path: Path) -> None:
    writer = Ledger.open(sqlite_url)
    _record_one(writer)
    writer.close()
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    reader = Ledger.open(sqlite_url, read_only=True)
    try:
        # past the API's own guard: the connection itself must refuse to write
        with (
            reader._engine.connect() as connection,
            pytest.raises(sa.exc.OperationalError, match="readonly"),
        ):
            connection.exec_driver_sql("DELETE FROM runs")
    finally:
        reader.close()
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.name in before}
    assert after == before


def _set_revision(db: Engine, revision: str) -> None:
    with db.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_read_only_on_another_revision_raises_user_error(
    ledger: Ledger, db: Engine, ledger_url: str
) -> None:
    ledger.close()
    _set_revision(db, "0000_older")
    with pytest.raises(UserError, match="revision 0000_older, this convsync needs") as raised:
        Ledger.open(ledger_url, read_only=True)
    assert "convsync sync --once" in str(raised.value)
    assert _revision(db) == "0000_older"  # not migrated


def test_read_only_on_a_file_without_schema_raises_user_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(UserError, match="none"):
        Ledger.open(f"sqlite:///{path}", read_only=True)
    assert path.read_bytes() == b""


def test_open_refuses_a_revision_from_a_newer_convsync(
    ledger: Ledger, db: Engine, ledger_url: str
) -> None:
    ledger.close()
    _set_revision(db, "9999_future")
    with pytest.raises(UserError, match="9999_future"):
        Ledger.open(ledger_url)


def test_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        Ledger.open(f"sqlite:///{tmp_path / 'nope' / 'ledger.db'}")


def test_display_url_masks_the_password() -> None:
    with pytest.raises(UserError) as raised:
        Ledger.open("mysql://user:s3cret@db/ledger")
    assert "s3cret" not in str(raised.value)
    assert "***" in str(raised.value)
