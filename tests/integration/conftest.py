from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from convsync.store.ledger import Ledger

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
  vk: {type: vk_ads, pixel_id: 42}
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
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger
    ledger.close()
