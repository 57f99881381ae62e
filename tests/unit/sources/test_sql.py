"""The sql source (convsync.sources.sql) on SQLite files: the shared contract plus what
a query against the user's own database does."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from convsync.core.errors import UserError
from convsync.core.model import RawRecord, SourceState
from convsync.sources import load_source_class
from convsync.sources.sql import SqlSource

from .contract import (
    ContractCase,
    SourceContract,
    Variant,
    fold_state,
    pull_all,
    records_of,
    rejections_of,
)
from .sql_data import (
    MSK,
    PII,
    UPDATED,
    bad_rows,
    create_orders,
    cursor_moment,
    good_rows,
    make_source,
    repull_window,
    row,
)


def sqlite_db(base: Path, rows: list[dict[str, Any]], name: str = "shop.db") -> str:
    engine = sa.create_engine(f"sqlite:///{base / name}")
    create_orders(engine, "orders", rows, typed=False)
    engine.dispose()
    return f"sqlite:///{name}"  # relative: to the config folder (SourceContext.base_dir)


class TestSqlSourceOnSqlite(SourceContract):
    @pytest.fixture
    def contract_case(self, tmp_path_factory: pytest.TempPathFactory) -> Any:
        def build(variant: Variant, chunk_size: int) -> ContractCase:
            base = tmp_path_factory.mktemp("sql")
            rows = good_rows() + (bad_rows() if variant == "bad" else [])
            source = make_source(sqlite_db(base, rows), base, chunk_size=chunk_size)
            return ContractCase(source, set(UPDATED), PII, lookback_ids={"5", "6"})

        return build

    def allowed_repull(self, case: ContractCase) -> set[str]:
        return {"5", "6"}  # within the 30-minute lookback of the last change (6)

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        return repull_window(state, seen)

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        return cursor_moment(cursor)


def test_registry_finds_the_class() -> None:
    assert load_source_class("sql") is SqlSource


def test_records_carry_fields_origin_and_columns(tmp_path: Path) -> None:
    source = make_source(sqlite_db(tmp_path, [row(1, 0), {**row(2, 5), "total": " "}]), tmp_path)
    first, second = records_of(pull_all(source))
    assert first.record_id == "1"
    assert first.occurred_at == datetime(2024, 4, 30, 12, 0, tzinfo=MSK)
    assert first.origin == "order_id 1"
    assert first.fields == {
        "email": "buyer1@example.com",
        "phone": "+79165550001",
        "value": "100.50",
        "status": "paid",
        "vk_click_id": "click1",
    }
    assert "value" not in second.fields  # blank means absent
    assert first.columns is second.columns
    assert first.columns["value"] == "total"


def test_cursor_is_the_last_value_pulled_and_lookback_rereads(tmp_path: Path) -> None:
    source = make_source(sqlite_db(tmp_path, good_rows()), tmp_path)
    chunks = pull_all(source)
    assert chunks[-1].cursor == {
        "column": "updated_at",
        "kind": "text",
        "value": "2024-05-01 13:10:00",
    }
    again = pull_all(source, fold_state(SourceState(), chunks))
    # 13:10 - 30m = 12:40: order 5 (13:00) and 6 (13:10) come again, nothing else
    assert sorted(r.record_id for r in records_of(again)) == ["5", "6"]
    assert again[-1].cursor == chunks[-1].cursor


def test_rows_committed_later_with_an_earlier_value_are_caught_by_the_lookback(
    tmp_path: Path,
) -> None:
    url = sqlite_db(tmp_path, good_rows())
    source = make_source(url, tmp_path)
    state = fold_state(SourceState(), pull_all(source))
    # a long transaction commits order 9, stamped 13:05, after the pull saw 13:10
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.begin() as connection:
        r = row(9, 185)
        r["order_id"], r["updated_at"] = "9", r["updated_at"].isoformat(sep=" ")
        connection.execute(
            sa.text(
                "INSERT INTO orders VALUES (:order_id, :created_at, :updated_at, :email, "
                ":phone, :total, :status, :rb_clickid)"
            ),
            r,
        )
    engine.dispose()
    assert "9" in {r.record_id for r in records_of(pull_all(source, state))}
    no_lookback = make_source(url, tmp_path, lookback=0)
    assert "9" not in {r.record_id for r in records_of(pull_all(no_lookback, state))}


def test_cursor_never_moves_back_when_the_last_row_vanishes(tmp_path: Path) -> None:
    source = make_source(sqlite_db(tmp_path, good_rows()), tmp_path)
    state = fold_state(SourceState(), pull_all(source))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM orders WHERE order_id = '6'"))
    engine.dispose()
    chunks = pull_all(source, state)
    assert [r.record_id for r in records_of(chunks)] == ["5"]
    assert fold_state(state, chunks).cursor == state.cursor


def test_cursor_never_moves_past_the_start_of_the_pull(tmp_path: Path) -> None:
    future = datetime.now(MSK).replace(tzinfo=None) + timedelta(days=3)
    minutes = int((future - datetime(2024, 5, 1, 10, 0)).total_seconds() // 60)
    source = make_source(sqlite_db(tmp_path, [row(1, 0), row(2, minutes)]), tmp_path)
    before = datetime.now(UTC)
    chunks = pull_all(source)
    assert {r.record_id for r in records_of(chunks)} == {"1", "2"}
    moment = cursor_moment(chunks[-1].cursor)
    assert before - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    # the row stamped in the future stays ahead of the cursor: it comes again
    again = records_of(pull_all(source, fold_state(SourceState(), chunks)))
    assert [r.record_id for r in again] == ["2"]


def test_integer_cursor_with_start(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path, good_rows())
    source = make_source(
        url,
        tmp_path,
        query="SELECT rowid AS seq, * FROM orders WHERE rowid >= :cursor",
        cursor="seq",
        lookback=0,
        start_date=None,
        start=3,
        chunk_size=2,
    )
    chunks = pull_all(source)
    assert [r.record_id for r in records_of(chunks)] == ["3", "4", "5", "6"]
    assert [c.cursor["value"] for c in chunks if c.cursor] == [4, 6]
    assert chunks[-1].cursor == {"column": "seq", "kind": "int", "value": 6}


def test_integer_cursor_refuses_a_time_lookback(tmp_path: Path) -> None:
    source = make_source(
        sqlite_db(tmp_path, good_rows()),
        tmp_path,
        query="SELECT rowid AS seq, * FROM orders WHERE rowid >= :cursor",
        cursor="seq",
        start_date=None,
        start=0,
    )
    with pytest.raises(UserError, match=r"sources\.shop\.lookback: .*'seq' holds int"):
        pull_all(source)
    state = SourceState(cursor={"column": "seq", "kind": "int", "value": 3})
    with pytest.raises(UserError, match=r"sources\.shop\.lookback"):
        pull_all(source, state)


def test_rows_come_in_cursor_order_whatever_the_query_says(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path, good_rows())
    base_query = make_source(url, tmp_path).config.query
    source = make_source(url, tmp_path, query=base_query + " ORDER BY order_id DESC;", chunk_size=2)
    chunks = pull_all(source)
    assert [r.record_id for r in records_of(chunks)] == ["1", "2", "3", "4", "5", "6"]


def test_a_saved_cursor_of_another_column_starts_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = make_source(sqlite_db(tmp_path, good_rows()), tmp_path)
    state = SourceState(cursor={"column": "changed_at", "kind": "text", "value": "2030-01-01"})
    with caplog.at_level(logging.WARNING):
        records = records_of(pull_all(source, state))
    assert len(records) == 6


def test_bad_rows_are_rejected_with_reasons_that_hide_contacts(tmp_path: Path) -> None:
    source = make_source(sqlite_db(tmp_path, good_rows() + bad_rows()), tmp_path)
    rejections = {r.code: r for r in rejections_of(pull_all(source))}
    assert set(rejections) == {"missing_id", "bad_time"}
    by_id = {r.record_id: r for r in rejections_of(pull_all(source))}
    assert "hidden" in by_id["7"].reason and "+7916" not in by_id["7"].reason
    assert "'soon'" in by_id["8"].reason
    assert by_id["8"].origin == "order_id 8" and by_id["8"].column == "created_at"


def test_an_id_that_is_an_email_is_not_quoted_in_the_origin(tmp_path: Path) -> None:
    r = row(1, 0)
    source = make_source(sqlite_db(tmp_path, [r]), tmp_path, id="email")
    (record,) = records_of(pull_all(source))
    assert record.record_id == "buyer1@example.com"
    assert "@" not in record.origin


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"id": "number"}, "sources.shop.id: the query returns no column 'number'"),
        ({"time": "paid_at"}, "sources.shop.time: the query returns no column 'paid_at'"),
        ({"cursor": "changed"}, "sources.shop.cursor: the query returns no column 'changed'"),
        ({"fields": {"gclid": "gclid"}}, "sources.shop.fields.gclid: the query returns no"),
    ],
)
def test_missing_columns_name_the_config_key(
    tmp_path: Path, change: dict[str, Any], key: str
) -> None:
    source = make_source(sqlite_db(tmp_path, good_rows()), tmp_path, **change)
    with pytest.raises(UserError) as caught:
        pull_all(source)
    assert key in str(caught.value)
    assert "'order_id', 'created_at'" in str(caught.value)  # the columns there are
    assert key in source.check()[0][0]


def test_column_names_match_ignoring_case(tmp_path: Path) -> None:
    source = make_source(sqlite_db(tmp_path, good_rows()), tmp_path, id="ORDER_ID")
    assert len(records_of(pull_all(source))) == 6


def test_query_without_cursor_parameter_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the query must compare the cursor column"):
        make_source("sqlite:///x.db", tmp_path, query="SELECT * FROM orders")
    with pytest.raises(ValidationError, match=":status would have no value"):
        make_source(
            "sqlite:///x.db",
            tmp_path,
            query="SELECT * FROM orders WHERE s = :status AND t::date >= :cursor",
        )


def test_start_is_required_and_single(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="say where the first run starts"):
        make_source("sqlite:///x.db", tmp_path, start_date=None)
    with pytest.raises(ValidationError, match="not both"):
        make_source("sqlite:///x.db", tmp_path, start=0)


def test_cursor_is_bound_never_formatted(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path, good_rows())
    state = SourceState(cursor={"column": "updated_at", "kind": "text", "value": "x' OR 1=1 --"})
    source = make_source(url, tmp_path, lookback=0)
    # bound as a value: compared as text, it matches the rows after it ('x…' > '2024…')
    assert records_of(pull_all(source, state)) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///missing.db", "sources.shop.url: the SQLite file"),
        ("postgresql+psycopg://u:hunter2-pw@127.0.0.1:9/x", "sources.shop.url: cannot connect"),
    ],
)
def test_bad_urls_name_the_key_and_never_the_password(
    tmp_path: Path, url: str, message: str
) -> None:
    source = make_source(url, tmp_path)
    with pytest.raises(UserError) as caught:
        pull_all(source)
    assert message in str(caught.value)
    assert "hunter2-pw" not in str(caught.value)
    problems, _ = source.check()
    assert message in problems[0]


def test_url_that_is_no_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a SQLAlchemy URL") as caught:
        make_source("host=db user=me password=hunter2-pw", tmp_path)
    assert "hunter2-pw" not in str(caught.value)
    with pytest.raises(ValidationError, match="not a SQLAlchemy URL") as caught:
        make_source("postgresql://me:hunter2-pw@db:port/x", tmp_path)
    assert "hunter2-pw" not in str(caught.value)
    with pytest.raises(ValidationError, match="SQLAlchemy knows no database 'nodb'") as caught:
        make_source("nodb://me:hunter2-pw@db/x", tmp_path)
    assert "hunter2-pw" not in str(caught.value)


def test_query_errors_name_the_query_key(tmp_path: Path) -> None:
    source = make_source(
        sqlite_db(tmp_path, good_rows()),
        tmp_path,
        query="SELECT * FROM nowhere WHERE updated_at >= :cursor",
    )
    with pytest.raises(UserError, match=r"sources\.shop\.query: the database refused .*nowhere"):
        pull_all(source)


def test_check_notes_a_strict_comparison(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path, good_rows())
    strict = make_source(url, tmp_path, query="SELECT * FROM orders WHERE updated_at > :cursor")
    assert strict.check()[0] == []
    assert ">= :cursor" in strict.check()[1][0]
    assert make_source(url, tmp_path).check() == ([], [])


def test_typed_values_become_text(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'typed.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (id INTEGER, at INTEGER, total REAL)"))
        connection.execute(sa.text("INSERT INTO t VALUES (1, 1714550400, 1500.5)"))
    engine.dispose()
    source = make_source(
        "sqlite:///typed.db",
        tmp_path,
        query="SELECT * FROM t WHERE at >= :cursor",
        id="id",
        time="at",
        cursor=None,
        fields={"value": "total"},
        lookback=0,
        start_date=None,
        start=0,
    )
    (record,) = records_of(pull_all(source))
    assert record.record_id == "1"
    assert record.occurred_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert record.fields == {"value": "1500.5"}


def test_typed_numbers_read_back_as_themselves_by_the_amount_rule() -> None:
    from decimal import Decimal

    from convsync.core.parsing import parse_money
    from convsync.sources.sql_rows import column_text

    # NUMERIC(10, 3) gives 1.500; as text "1.500" would be refused as ambiguous
    for value, amount in ((Decimal("1.500"), "1.5"), (12.345, "12.345"), (1500.5, "1500.5")):
        assert parse_money(column_text(value))[0] == Decimal(amount)


def test_secret_url_is_registered_for_redaction(tmp_path: Path) -> None:
    from convsync.core.logging import scrub_text

    make_source("postgresql+psycopg://u:s3cret-pw-77@127.0.0.1:9/x", tmp_path)
    assert "s3cret-pw-77" not in scrub_text("password s3cret-pw-77 leaked")


def test_a_bad_time_in_the_cursor_column_does_not_move_the_cursor(tmp_path: Path) -> None:
    rows = [row(1, 0), row(2, 60)]
    for r in rows:
        r["created_at"] = r["updated_at"].isoformat(sep=" ")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    create_orders(engine, "orders", rows, typed=False)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO orders (order_id, created_at, updated_at) VALUES ('3', 'soon', 'x')"
            )
        )
    engine.dispose()
    source = make_source("sqlite:///shop.db", tmp_path, cursor=None)
    chunks = pull_all(source)
    assert [r.record_id for r in rejections_of(chunks)] == ["3"]
    assert chunks[-1].cursor is not None
    assert chunks[-1].cursor["value"] == "2024-05-01 11:00:00"


def test_start_date_is_bound_as_sqlite_text_in_the_source_zone(tmp_path: Path) -> None:
    rows = [row(1, 0), row(2, 60)]  # 10:00 and 11:00 MSK, stored as naive text
    url = sqlite_db(tmp_path, rows)
    source = make_source(url, tmp_path, start_date="2024-05-01T07:30:00+00:00")  # 10:30 MSK
    assert [r.record_id for r in records_of(pull_all(source))] == ["2"]
