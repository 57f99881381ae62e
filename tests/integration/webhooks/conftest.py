"""A served webhook endpoint over a real ledger (SQLite and PostgreSQL) on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from convsync.config.loader import parse_config
from convsync.config.models import LoadedConfig
from convsync.service.runner import webhooks_served
from convsync.service.webhooks.server import WebhookServer
from convsync.store.ledger import Ledger
from convsync.store.schema import conversions
from convsync.sync.pipeline import SyncPipeline

TOKENS = {
    "SITE_TOKEN": "site-secret-Zq8",
    "FORMS_TOKEN": "forms-secret-Xw2",
    "AMO_TOKEN": "amo-secret-Kp5",
    "B24_TOKEN": "b24-secret-Lm7",
}

CONFIG = """\
timezone: Europe/Moscow
phone_region: RU
webhooks: {host: 127.0.0.1, port: 0, max_body: 4KiB, threads: 8}
sources:
  site:
    type: webhook
    token: ${SITE_TOKEN}
    time: created_at
    fields: {status: status, value: total, currency: currency, email: email,
             vk_click_id: rb_clickid}
  forms:
    type: webhook
    sender: tilda
    token: ${FORMS_TOKEN}
    fields: {vk_click_id: rb_clickid}
  crm:
    type: webhook
    sender: amocrm
    token: ${AMO_TOKEN}
    fields: {vk_click_id: custom_fields.RB_CLICKID}
  b24:
    type: webhook
    sender: bitrix24
    token: ${B24_TOKEN}
    fields: {value: sum, vk_click_id: rb}
destinations:
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  order:
    source: site
    when: {status: paid}
    value: value
    currency: RUB
    send: {vk: {goal: purchase}}
  lead:
    source: forms
    send: {vk: {goal: lead}}
  won:
    source: crm
    when: {status: "142"}
    value: value
    currency: RUB
    send: {vk: {goal: won}}
  deal:
    source: b24
    value: value
    currency: RUB
    send: {vk: {goal: deal}}
"""


def load(tmp_path: Path, text: str = CONFIG) -> LoadedConfig:
    path = tmp_path / "convsync.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path, TOKENS)


@dataclass
class Served:
    url: str
    ledger: Ledger
    server: WebhookServer
    pipeline: SyncPipeline

    def endpoint(self, source: str) -> str:
        return f"{self.url}/webhooks/{source}"

    def conversions(self, source: str | None = None) -> list[sa.Row[tuple[str, str]]]:
        query = "SELECT record_id, goal FROM conversions"
        if source:
            query += f" WHERE source = '{source}'"
        with self.ledger._engine.connect() as connection:
            return list(connection.exec_driver_sql(query + " ORDER BY record_id"))

    def stored(self) -> list[dict[str, Any]]:
        """Every conversion: its columns, ``ids`` read from its JSON."""
        c = conversions.c
        query = sa.select(c.record_id, c.occurred_at, c.utc_offset_min, c.value, c.ids)
        with self.ledger._engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query.order_by(c.id))]
        for row in rows:
            row["ids"] = json.loads(row["ids"])
        return rows

    def count(self, table: str) -> int:
        with self.ledger._engine.connect() as connection:
            return int(connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


@pytest.fixture
def served(tmp_path: Path, ledger: Ledger) -> Iterator[Served]:
    loaded = load(tmp_path)
    pipeline = SyncPipeline(loaded, ledger)
    with webhooks_served(loaded, ledger, pipeline) as server:
        yield Served(f"http://127.0.0.1:{server.port}", ledger, server, pipeline)
