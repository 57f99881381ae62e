"""The fake amoCRM account and sources built over it (paced fast unless a test says)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convsync.core.tokens import TokenStore
from convsync.sources.amocrm.config import AmoCrmSourceConfig
from convsync.sources.amocrm.source import AmoCrmSource
from convsync.sources.base import SourceContext
from tests.amocrm_fake import FakeAmo, fake_amo

MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture
def amo() -> Iterator[FakeAmo]:
    with fake_amo() as fake:
        yield fake


def now() -> int:
    return int(time.time())


def make_source(
    fake: FakeAmo,
    *,
    chunk_size: int = 5000,
    tokens: TokenStore | None = None,
    real_pace: bool = False,
    sleeps: list[float] | None = None,
    **extra: Any,
) -> AmoCrmSource:
    config = AmoCrmSourceConfig.model_validate(fake.source_config(**extra))
    if not real_pace:
        # model_copy skips validation: the fake may take more than amoCRM's 7/s
        config = config.model_copy(update={"requests_per_second": 2000.0})
    context = SourceContext(timezone=MSK, base_dir=Path("."), chunk_size=chunk_size, tokens=tokens)
    source = AmoCrmSource("crm", config, context)
    source.sleep = sleeps.append if sleeps is not None else lambda _s: None
    return source
