"""Fixtures of the Data Manager tests: the fake Data Manager API (``fake``) and a
destination connected to it at the tests' fixed clock (``google``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convsync.destinations.google_ads.datamanager.destination import DataManagerDestination
from tests.datamanager_fake import FakeDataManager, destination_for
from tests.integration.google_ads.rows import NOW


@pytest.fixture
def fake(datamanager_fake: FakeDataManager) -> FakeDataManager:
    return datamanager_fake


@pytest.fixture
def google(fake: FakeDataManager) -> Iterator[DataManagerDestination]:
    destination = destination_for(fake)
    destination.clock = lambda: NOW
    destination.connect()
    yield destination
    destination.close()
