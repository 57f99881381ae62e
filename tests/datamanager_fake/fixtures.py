"""pytest fixtures around the fake Data Manager API, loaded for the whole suite by
``tests/conftest.py`` (import nothing from this module in a test: pytest must import it
first, to rewrite its asserts).

``datamanager_fake`` is a started fake, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeDataManager, fake_data_manager


@pytest.fixture
def datamanager_fake() -> Iterator[FakeDataManager]:
    with fake_data_manager() as fake:
        yield fake
