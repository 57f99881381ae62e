"""The fake BigQuery and helpers to fill it with GA4 export rows and build sources."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convsync.sources.base import SourceContext
from convsync.sources.ga4.config import Ga4BigQuerySourceConfig
from convsync.sources.ga4.source import Ga4BigQuerySource
from tests.bigquery_fake import BigQueryState, FakeBigQuery, fake_bigquery

TODAY = datetime.now(UTC).date()
STREAM = "4177000001"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeBigQuery]:
    with fake_bigquery(tmp_path) as server:
        yield server


def day(offset: int) -> str:
    """The table suffix ``offset`` days from today (negative: before)."""
    return (TODAY + timedelta(days=offset)).strftime("%Y%m%d")


def micros(suffix: str, minute: int) -> int:
    start = datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=UTC)
    return int((start + timedelta(minutes=minute)).timestamp()) * 10**6 + 123_456


def param(key: str, value: Any) -> dict[str, Any]:
    kind = {str: "string_value", int: "int_value", float: "double_value"}[type(value)]
    return {"key": key, "value": {kind: value}}


def purchase(n: int, suffix: str, *, name: str = "purchase", **extra: Any) -> dict[str, Any]:
    """A GA4 export row: a purchase ``n`` minutes into the day, with a transaction, a
    collected gclid, a landing URL with VK's click id and the buyer's e-mail as a
    parameter (some sites push it; it must never reach a log)."""
    event: dict[str, Any] = {
        "event_date": suffix,
        "event_timestamp": micros(suffix, n),
        "event_name": name,
        "stream_id": STREAM,
        "user_pseudo_id": f"{1000 + n}.1700000000",
        "user_id": None,
        "ecommerce": {"transaction_id": f"T-{n}", "purchase_revenue": 100.5 + n},
        "collected_traffic_source": {"gclid": f"Cj0KCQ-gclid-{n}"},
        "event_params": [
            param("page_location", f"https://shop.example/thanks?rb_clickid=rb{n}&utm_source=x"),
            param("currency", "USD"),
            param("value", 100.5 + n),
            param("email", f"buyer{n}@example.com"),
            param("ga_session_id", 1700000000 + n),
        ],
        "user_properties": [param("plan", "pro")],
    }
    event.update(extra)
    return event


def seed(state: BigQueryState, days: list[str], per_day: int = 2, *, start: int = 1,
         table: str = "events_", noise: bool = True) -> dict[int, str]:  # fmt: skip
    """``per_day`` purchases a day (numbered from ``start``) plus a page_view each;
    returns number → table suffix."""
    placed: dict[int, str] = {}
    n = start
    for suffix in days:
        for _ in range(per_day):
            state.add_event(table + suffix, **purchase(n, suffix))
            placed[n] = suffix
            n += 1
        if noise:
            state.add_event(table + suffix, **purchase(900 + n, suffix, name="page_view"))
    return placed


def build(fake: FakeBigQuery, chunk_size: int = 5000, name: str = "ga4",
          page_size: int = 3, **config: Any) -> Ga4BigQuerySource:  # fmt: skip
    config.setdefault("start_date", date.fromisoformat(_iso(day(-20))))
    cfg = Ga4BigQuerySourceConfig.model_validate(fake.source_config(**config))
    context = SourceContext(timezone=ZoneInfo("UTC"), base_dir=Path("."), chunk_size=chunk_size)
    source = Ga4BigQuerySource(name, cfg, context)
    source.page_size = page_size
    source.retry_initial = 0.01
    return source


def _iso(suffix: str) -> str:
    return f"{suffix[:4]}-{suffix[4:6]}-{suffix[6:]}"
