"""Ledger fixtures: every ledger test runs on a SQLite file and on PostgreSQL.

PostgreSQL comes from ``CONVSYNC_TEST_PG_URL`` (default: the local CI server). Each test
gets a schema of its own (``search_path`` set through libpq ``options`` in the URL, so
worker processes that open the same URL land in it too), dropped afterwards. If the
server is unreachable the PostgreSQL tests error out: they never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from convsync.store import Ledger
from convsync.store.engine import create, parse_url

PG_URL = os.environ.get("CONVSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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


@pytest.fixture
def db(ledger: Ledger, ledger_url: str) -> Iterator[Engine]:
    """A second, plain engine on the ledger's database, for looking behind the API."""
    opened = create(parse_url(ledger_url), read_only=False)
    yield opened.engine
    opened.dispose()
