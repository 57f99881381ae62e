"""Ledger fixtures beyond ``tests/integration/conftest.py`` (which gives every ledger
test a SQLite file and a PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from convsync.store import Ledger
from convsync.store.engine import create, parse_url


@pytest.fixture
def db(ledger: Ledger, ledger_url: str) -> Iterator[Engine]:
    """A second, plain engine on the ledger's database, for looking behind the API."""
    opened = create(parse_url(ledger_url), read_only=False)
    yield opened.engine
    opened.dispose()
