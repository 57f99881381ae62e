"""Fixtures of the Metrica tests: the fake Metrica API (``fake``) at the tests' fixed
clock, and a destination connected to it (``metrica``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convsync.destinations.yandex_metrica import MetricaDestination
from tests.integration.metrica.rows import NOW
from tests.metrica_fake import FakeMetrica, destination_for, fake_metrica


@pytest.fixture
def fake() -> Iterator[FakeMetrica]:
    with fake_metrica() as started:
        started.clock = lambda: NOW
        yield started


@pytest.fixture
def metrica(fake: FakeMetrica) -> Iterator[MetricaDestination]:
    destination = destination_for(fake)
    destination.clock = lambda: NOW
    destination.connect()
    yield destination
    destination.close()
