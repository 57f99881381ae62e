"""The sql source against PostgreSQL (typed columns: integer ids, timestamptz cursor,
a server-side cursor), and through the whole pipeline into a real ledger."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from convsync.config.loader import load_config
from convsync.core.model import RawRecord, SourceState
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock
from tests.unit.sources.contract import ContractCase, SourceContract, Variant, pull_all, records_of
from tests.unit.sources.sql_data import (
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

from ..fakes import ScriptedDestination

PASSWORD = "pg-s3cret-4711"  # trust auth ignores it; it must still never be logged

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_source_url(pg_url: str) -> str:
    return make_url(pg_url).set(password=PASSWORD).render_as_string(hide_password=False)


class TestSqlSourceOnPostgres(SourceContract):
    @pytest.fixture
    def contract_case(self, pg_source_url: str, tmp_path: Path) -> Any:
        engine = sa.create_engine(pg_source_url)
        tables = (f"orders_{i}" for i in itertools.count())

        def build(variant: Variant, chunk_size: int) -> ContractCase:
            table = next(tables)
            rows = good_rows() + (bad_rows() if variant == "bad" else [])
            create_orders(engine, table, rows, typed=True)
            source = make_source(pg_source_url, tmp_path, table=table, chunk_size=chunk_size)
            return ContractCase(
                source,
                set(UPDATED),
                PII,
                secrets=[PASSWORD, pg_source_url],
                lookback_ids={"5", "6"},
            )

        yield build
        engine.dispose()

    def allowed_repull(self, case: ContractCase) -> set[str]:
        return {"5", "6"}

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        return repull_window(state, seen)

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        return cursor_moment(cursor)


def test_timestamptz_cursor_and_typed_ids(pg_source_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(pg_source_url)
    create_orders(engine, "orders", good_rows(), typed=True)
    engine.dispose()
    chunks = pull_all(make_source(pg_source_url, tmp_path, chunk_size=4))
    assert [r.record_id for r in records_of(chunks)] == ["1", "2", "3", "4", "5", "6"]
    last = chunks[-1].cursor
    assert last is not None and last["kind"] == "datetime"
    assert datetime.fromisoformat(last["value"]) == datetime(2024, 5, 1, 13, 10, tzinfo=MSK)


# --- through the pipeline ---------------------------------------------------------------

CONFIG = """\
timezone: Europe/Moscow
sources:
  shop:
    type: sql
    url: ${SHOP_DB}
    query: SELECT * FROM orders WHERE updated_at >= :cursor
    id: order_id
    time: created_at
    cursor: updated_at
    lookback: 30m
    start_date: 2024-01-01
    fields: {status: status, value: total, vk_click_id: rb_clickid, email: email}
destinations:
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    send:
      vk: {goal: purchase}
"""


def run(workdir: Path, ledger: Ledger, chunk_size: int = 5000) -> tuple[Any, ScriptedDestination]:
    (workdir / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    loaded = load_config(workdir / "convsync.yaml", env={"SHOP_DB": "sqlite:///shop.db"})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(
        loaded,
        ledger,
        destinations={"vk": dest},
        clock=Clock(datetime(2024, 5, 2, 12, 0, tzinfo=UTC)),
        chunk_size=chunk_size,
    )
    return pipeline.run(SyncOptions()), dest


def add_rows(workdir: Path, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(f"sqlite:///{workdir / 'shop.db'}")
    create_orders(engine, "orders", rows, typed=False)
    engine.dispose()


def test_pipeline_records_once_and_a_second_run_pulls_only_the_overlap(
    tmp_path: Path, ledger: Ledger
) -> None:
    add_rows(tmp_path, good_rows())
    summary, dest = run(tmp_path, ledger)
    assert summary.status == "ok", summary.user_errors
    assert summary.sources["shop"]["pulled"] == 6
    assert summary.sources["shop"]["new"] == 6
    assert sorted(dest.sent_orders) == ["1", "2", "3", "4", "5", "6"]
    saved = ledger.source_state("shop").cursor
    assert saved == {"column": "updated_at", "kind": "text", "value": "2024-05-01 13:10:00"}

    summary2, dest2 = run(tmp_path, ledger)
    assert summary2.sources["shop"]["pulled"] == 2  # 5 and 6: the 30-minute lookback
    assert summary2.sources["shop"].get("new", 0) == 0
    assert dest2.batches == []

    add_rows(tmp_path, [row(7, 300)])
    summary3, dest3 = run(tmp_path, ledger)
    assert summary3.sources["shop"]["new"] == 1
    assert dest3.sent_orders == ["7"]


def test_a_crash_mid_pull_resumes_from_the_last_recorded_chunk(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_rows(tmp_path, good_rows())
    write_chunk = ledger.write_chunk
    calls = {"n": 0}

    def crash_on_third(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the process died")
        return write_chunk(*args, **kwargs)

    monkeypatch.setattr(ledger, "write_chunk", crash_on_third)
    with pytest.raises(RuntimeError):
        run(tmp_path, ledger, chunk_size=2)
    saved = ledger.source_state("shop").cursor
    assert saved is not None and saved["value"] == "2024-05-01 12:00:00"  # after 1-4
    monkeypatch.setattr(ledger, "write_chunk", write_chunk)

    summary, dest = run(tmp_path, ledger, chunk_size=2)
    # from 12:00 - 30m: 4 again (absorbed by the ledger), then 5 and 6
    assert summary.sources["shop"]["pulled"] == 3
    assert summary.sources["shop"]["new"] == 2
    assert sorted(dest.sent_orders) == ["1", "2", "3", "4", "5", "6"]
