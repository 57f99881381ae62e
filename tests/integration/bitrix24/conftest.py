"""Fixtures of the Bitrix24 source tests: a fake portal on 127.0.0.1 (``fake``) and
sources connected to it (``connect``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convsync.sources.base import SourceContext
from convsync.sources.bitrix24.config import Bitrix24SourceConfig
from convsync.sources.bitrix24.source import Bitrix24Source
from tests.bitrix24_fake import FakeBitrix24, FakePortal, fake_bitrix24

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MSK = timezone(timedelta(hours=3))
EMAILS = ["anna.petrova@example.ru", "boris@example.com"]
PHONES = ["+7 912 345-67-89", "8 (903) 111-22-33"]
FIELDS = {
    "gclid": "UF_CRM_GCLID",
    "vk_click_id": "UF_CRM_1700000000001",
    "yclid": "UF_CRM_YCLID",
    "email": "contact.EMAIL",
    "phone": "contact.PHONE",
    "utm_source": "UTM_SOURCE",
}

Connect = Callable[..., Bitrix24Source]


def seed(
    portal: FakePortal, count: int, *, start: int = 1, day: int = 20, spacing: int = 1
) -> list[str]:
    """``count`` won deals (ids from ``start``), won ``spacing`` minutes apart from 10:00,
    each with click ids, UTM and a contact with multifield e-mail and phone; returns
    the deal ids."""
    ids = []
    base = datetime(2026, 11, day, 10, 0, tzinfo=MSK)
    for n in range(start, start + count):
        portal.add_win(
            n,
            (base + timedelta(minutes=n * spacing)).isoformat(),
            deal={
                "UF_CRM_GCLID": f"gclid-{n}",
                "UF_CRM_1700000000001": [f"rb-{n}"],  # a multiple field
                "UF_CRM_YCLID": "",
                "UTM_SOURCE": "yandex" if n % 2 else None,
                "OPPORTUNITY": f"{1000 + n}.00",
            },
            contact={
                "ID": str(5000 + n),
                "EMAIL": [
                    {"ID": str(n), "VALUE_TYPE": "WORK", "VALUE": EMAILS[n % 2], "TYPE_ID": "EMAIL"}
                ],
                "PHONE": [
                    {"ID": str(n), "VALUE_TYPE": "WORK", "VALUE": PHONES[n % 2], "TYPE_ID": "PHONE"}
                ],
            },
        )
        ids.append(str(n))
    return ids


def source_for(
    fake: FakeBitrix24,
    *,
    chunk_size: int = 5000,
    name: str = "crm",
    sleeps: list[float] | None = None,
    now: datetime = NOW,
    **config: Any,
) -> Bitrix24Source:
    settings: dict[str, Any] = {
        "type": "bitrix24",
        "webhook_url": fake.webhook_url,
        "fields": FIELDS,
        "lookback": 0,
        **config,
    }
    context = SourceContext(
        timezone=ZoneInfo("Europe/Moscow"), base_dir=Path("."), chunk_size=chunk_size
    )
    source = Bitrix24Source(name, Bitrix24SourceConfig.model_validate(settings), context)
    recorded = sleeps if sleeps is not None else []
    source.sleep = recorded.append  # type: ignore[method-assign]  # no real waits in tests
    source.clock = lambda: now  # type: ignore[method-assign]
    return source


@pytest.fixture
def fake() -> Iterator[FakeBitrix24]:
    with fake_bitrix24() as started:
        yield started


@pytest.fixture
def connect(fake: FakeBitrix24) -> Connect:
    def build(**kwargs: Any) -> Bitrix24Source:
        return source_for(fake, **kwargs)

    return build
