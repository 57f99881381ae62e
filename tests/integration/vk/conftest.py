"""Fixtures of the VK Ads tests: the fake VK on 127.0.0.1 (``fake``), destinations
connected to it (``connect_vk``), outbound rows, and a shop whose sync sends to it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from convsync.config.loader import load_config
from convsync.core.model import Conversion, Identifiers, OutboundRow
from convsync.destinations.vk_ads import VkAdsDestination
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from convsync.sync.summary import RunSummary
from tests.vk_fake import FakeVk, fake_vk

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
TARGET = VkAdsTarget(goal="purchase")

SHOP_CONFIG = """\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, vk_click_id: rb_clickid, vk_user_id: user_id}
destinations:
  vk:
    type: vk_ads
    pixel_id: 3456789
    tracker_url: "${VK_TRACKER}"
    api_base_url: "${VK_API}"
    client_id: "${VK_ID}"
    client_secret: "${VK_SECRET}"
    max_events_per_second: 500
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    send:
      vk: {goal: purchase}
delivery: {max_attempts: 4, retries_in_run: 1, retry_backoff: 10m, lease: 1s}
"""
SHOP_HEADER = "order_id,created_at,status,total,rb_clickid,user_id\n"


@pytest.fixture
def fake() -> Iterator[FakeVk]:
    with fake_vk() as started:
        yield started


ConnectVk = Callable[..., VkAdsDestination]


@pytest.fixture
def connect_vk(fake: FakeVk) -> Iterator[ConnectVk]:
    """``connect_vk(**config)``: a destination on the fake, connected; closed afterwards."""
    made: list[VkAdsDestination] = []

    def connect(**config: Any) -> VkAdsDestination:
        destination = VkAdsDestination(
            "vk", VkAdsConfig.model_validate(fake.destination_config(**config))
        )
        destination.clock = lambda: NOW
        made.append(destination)
        destination.connect()
        return destination

    yield connect
    for destination in made:
        destination.close()


def conversion(n: int, **ids: str) -> Conversion:
    return Conversion(
        key=f"c-{n}",
        source="shop",
        record_id=str(n),
        goal="purchase",
        order_id=f"A-{n}",
        occurred_at=NOW - timedelta(hours=5),
        value=None,
        currency=None,
        ids=Identifiers(**(ids or {"vk_click_id": f"click{n}"})),
    )


def rows(destination: VkAdsDestination, count: int, start: int = 1) -> list[OutboundRow]:
    out = []
    for n in range(start, start + count):
        made = conversion(n)
        out.append(OutboundRow(n, made, destination.build(made, TARGET, NOW)))
    return out


# --- whole syncs ------------------------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(SHOP_CONFIG, encoding="utf-8")
    return tmp_path


def shop_env(fake: FakeVk) -> dict[str, str]:
    client_id, secret = fake.api.new_client()
    return {
        "VK_TRACKER": fake.tracker_url,
        "VK_API": fake.api_base_url,
        "VK_ID": client_id,
        "VK_SECRET": secret,
    }


def write_orders(
    shop: Path, orders: list[tuple[str, str]], at: datetime, name: str = "a.csv"
) -> None:
    """(order id, click id) rows, paid, 1500 each, at ``at``; an id ``u:…`` is a userid."""
    lines = []
    for order, ident in orders:
        click, user = ("", ident[2:]) if ident.startswith("u:") else (ident, "")
        lines.append(f"{order},{at:%Y-%m-%d %H:%M:%S},paid,1500,{click},{user}\n")
    path = shop / "orders" / name
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(SHOP_HEADER + "".join(lines), encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


def sync(
    shop: Path,
    ledger: Ledger,
    env: dict[str, str],
    clock: Callable[[], datetime],
    sleeps: list[float] | None = None,
) -> tuple[RunSummary, VkAdsDestination]:
    loaded = load_config(shop / "convsync.yaml", env=env)
    dest = VkAdsDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    dest.clock = clock
    waits = sleeps if sleeps is not None else []
    try:
        pipeline = SyncPipeline(
            loaded, ledger, destinations={"vk": dest}, clock=clock, sleep=waits.append
        )
        return pipeline.run(SyncOptions()), dest
    finally:
        dest.close()
