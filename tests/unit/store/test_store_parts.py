"""The ledger's pure parts: URLs, the UTC column type, row conversion, bulk inserts."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from convsync.core.errors import UserError
from convsync.core.model import Conversion, Identifiers
from convsync.store import engine
from convsync.store.bulk import BulkInsert
from convsync.store.engine import mask, parse_url, sqlite_path
from convsync.store.funnel import FunnelRow
from convsync.store.rows import (
    CONVERSION_VALUE_COLUMNS,
    chunked,
    conversion_from_row,
    conversion_values,
)
from convsync.store.schema import UTCDateTime, conversions

SQLITE = sqlite.dialect()
PG = psycopg.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it unannotated


@pytest.mark.parametrize(
    ("raw", "driver"),
    [
        ("postgresql://u:p@h/db", "postgresql+psycopg"),
        ("postgres://u@h:5433/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///data/ledger.db", "sqlite"),
    ],
)
def test_parse_url_picks_psycopg_for_postgresql(raw: str, driver: str) -> None:
    assert parse_url(raw).drivername == driver


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "not a url", "redis://localhost"])
def test_parse_url_refuses_other_databases(raw: str) -> None:
    with pytest.raises(UserError):
        parse_url(raw)


def test_mask_hides_the_password() -> None:
    shown = mask(parse_url("postgresql://convsync:hunter2@db:5432/ledger"))
    assert "hunter2" not in shown
    assert shown == "postgresql+psycopg://convsync:***@db:5432/ledger"


def test_sqlite_path() -> None:
    assert sqlite_path(parse_url("sqlite:///rel/x.db")) is not None
    assert sqlite_path(parse_url("sqlite://")) is None
    assert sqlite_path(parse_url("sqlite:///:memory:")) is None


def _bind(value: datetime | None, dialect: sa.engine.Dialect) -> Any:
    return UTCDateTime().process_bind_param(value, dialect)


def test_utc_datetime_stores_fixed_width_utc_text_on_sqlite() -> None:
    moscow = datetime(2026, 11, 20, 14, 3, tzinfo=timezone(timedelta(hours=3)))
    assert _bind(moscow, SQLITE) == "2026-11-20 11:03:00.000000"
    assert _bind(None, SQLITE) is None
    later = datetime(2026, 11, 20, 11, 3, 0, 1, tzinfo=UTC)
    assert _bind(later, SQLITE) > _bind(moscow, SQLITE)  # text order is time order
    back = UTCDateTime().process_result_value("2026-11-20 11:03:00.000000", SQLITE)
    assert back == moscow and back is not None and back.tzinfo is UTC


def test_utc_datetime_passes_aware_utc_to_postgresql() -> None:
    moscow = datetime(2026, 11, 20, 14, 3, tzinfo=timezone(timedelta(hours=3)))
    bound = _bind(moscow, PG)
    assert bound == moscow and bound.tzinfo is UTC
    back = UTCDateTime().process_result_value(moscow, PG)
    assert back is not None and back.tzinfo is UTC


@pytest.mark.parametrize("dialect", [SQLITE, PG])
def test_utc_datetime_refuses_naive(dialect: sa.engine.Dialect) -> None:
    with pytest.raises(ValueError, match="naive"):
        _bind(datetime(2026, 11, 20, 12, 0), dialect)


def test_conversion_values_and_back() -> None:
    original = Conversion(
        key="k",
        source="shop",
        record_id="17",
        goal="purchase",
        order_id="A-17",
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        value=Decimal("0.10"),
        currency="BRL",
        ids=Identifiers(yclid="123", phone_sha256="f" * 64),
        consent=None,
    )
    values = conversion_values(
        original, occurred_at=lambda moment: moment.astimezone(UTC), recorded_at=None, run_id="r"
    )
    row = {f"c_{name}": value for name, value in zip(CONVERSION_VALUE_COLUMNS, values, strict=True)}
    assert row["c_utc_offset_min"] == -210
    assert row["c_value"] == "0.10"
    assert row["c_ids"] == '{"yclid":"123","phone_sha256":"' + "f" * 64 + '"}'
    back = conversion_from_row(row)
    assert back == original
    assert back.occurred_at.utcoffset() == original.occurred_at.utcoffset()


def test_conversion_values_seal_match_signals_and_read_them_back() -> None:
    signals = {"ip_address": "198.51.100.9", "user_agent": "Mozilla/5.0 Test"}
    original = Conversion(
        key="k",
        source="shop",
        record_id="17",
        goal="purchase",
        order_id="A-17",
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        value=None,
        currency=None,
        ids=Identifiers(gclid="g"),
        attributes={"plan": "gold", **signals},
    )
    values = conversion_values(original, occurred_at=lambda m: m, recorded_at=None, run_id="r")
    row = {f"c_{name}": value for name, value in zip(CONVERSION_VALUE_COLUMNS, values, strict=True)}
    assert row["c_attributes"] == '{"plan":"gold"}'
    assert "198.51.100.9" not in row["c_sealed"] and "Mozilla" not in row["c_sealed"]
    assert conversion_from_row(row) == original
    # sealed values that can no longer be opened (another process's key) are left out
    assert conversion_from_row({**row, "c_sealed": "gAAAA-not-ours"}).attributes == {"plan": "gold"}
    # signals alone: no plain attributes at all, and once dropped, none to read back
    only = conversion_values(
        replace(original, attributes=signals), occurred_at=lambda m: m, recorded_at=None, run_id="r"
    )
    row = {f"c_{name}": value for name, value in zip(CONVERSION_VALUE_COLUMNS, only, strict=True)}
    assert row["c_attributes"] is None
    assert conversion_from_row(row).attributes == signals
    assert conversion_from_row({**row, "c_sealed": None}).attributes is None


def test_chunked() -> None:
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []


def test_bulk_insert_refuses_statements_with_other_parameters() -> None:
    engine = sa.create_engine("sqlite://")
    odd = BulkInsert(
        lambda _connection: conversions.insert().values(run_id=sa.bindparam("other")),
        ("key",),
    )
    with engine.connect() as connection, pytest.raises(ValueError, match="parameters"):
        odd.execute(connection, [("k",)])
    engine.dispose()


def test_funnel_row_totals() -> None:
    row = FunnelRow("g", "d", rejected_by_code={"a": 2, "b": 1}, skipped_by_code={"x": 4})
    assert (row.rejected, row.skipped) == (3, 4)


class _LockedCursor:
    """A cursor whose ``PRAGMA journal_mode`` is refused ``failures`` times at once,
    as SQLite refuses the loser of two processes converting a fresh file to WAL."""

    def __init__(self, failures: int, message: str = "database is locked") -> None:
        self.failures = failures
        self.message = message
        self.calls = 0

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.calls <= self.failures:
            raise sqlite3.OperationalError(self.message)


def test_wal_switch_asks_again_while_another_process_holds_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(engine.time, "sleep", pauses.append)
    cursor = _LockedCursor(failures=12)
    engine._enable_wal(cursor)  # type: ignore[arg-type]  # only execute() is used
    assert cursor.calls == 13
    # growing pauses, capped, far inside the busy timeout
    assert pauses == sorted(pauses) and max(pauses) == 0.2
    assert sum(pauses) < engine.SQLITE_BUSY_TIMEOUT_S


def test_wal_switch_gives_up_after_the_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(engine.time, "sleep", sleep)
    monkeypatch.setattr(engine.time, "monotonic", lambda: clock[0])
    cursor = _LockedCursor(failures=10**6)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        engine._enable_wal(cursor)  # type: ignore[arg-type]
    assert engine.SQLITE_BUSY_TIMEOUT_S - 0.2 <= clock[0] <= engine.SQLITE_BUSY_TIMEOUT_S


def test_wal_switch_does_not_retry_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.time, "sleep", lambda _s: None)
    cursor = _LockedCursor(failures=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        engine._enable_wal(cursor)  # type: ignore[arg-type]
    assert cursor.calls == 1
