"""Fixtures of the integration tests. Every test that takes ``ledger`` runs twice: on a
SQLite file and on PostgreSQL (``CONVSYNC_TEST_PG_URL``, default: the local CI server),
each PostgreSQL test in a schema of its own (``search_path`` set through libpq
``options`` in the URL, so worker processes that open the same URL land in it too),
dropped afterwards. If the server is unreachable the PostgreSQL tests error out: they
never skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from convsync.store.engine import parse_url
from convsync.store.ledger import Ledger

PG_URL = os.environ.get("CONVSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

CONFIG = """\
timezone: Europe/Moscow
phone_region: RU
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, currency: currency, email: email, phone: phone,
             vk_click_id: rb_clickid, gclid: gclid}
destinations:
  # tests that build the real destination must not reach VK: nothing listens there
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  purchase:
    source: shop
    when: {status: [paid]}
    value: value
    currency: RUB
    send:
      vk: {goal: purchase}
delivery: {max_attempts: 3, retries_in_run: 1, retry_backoff: 10m}
"""

HEADER = "order_id,created_at,status,total,currency,email,phone,rb_clickid,gclid\n"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def write_orders(workdir: Path, rows: list[str], name: str = "a.csv") -> Path:
    path = workdir / "orders" / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = parse_url(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as connection:
            # a test that leaked a connection must not hang the suite on the DROP
            connection.exec_driver_sql("SET lock_timeout = '20s'")
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()
