"""The fake Metrica Logs API and helpers to fill it and build sources over it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convsync.sources.base import SourceContext
from convsync.sources.metrica_logs.config import MetricaLogsSourceConfig
from convsync.sources.metrica_logs.source import MetricaLogsSource
from tests.metrica_logs_fake import FakeMetricaLogs, LogsState, Visit, days_ago, fake_metrica_logs

GOAL = 111  # the configured goal of most tests
OTHER_GOAL = 222  # a goal reached too, but not configured
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def fake() -> Iterator[FakeMetricaLogs]:
    with fake_metrica_logs() as server:
        yield server


def goal_time(state: LogsState, start: datetime, minutes: int) -> str:
    """How Metrica writes the time of a goal reached ``minutes`` into a visit that started
    at ``start`` (naive, counter time): in UTC+3 (ym:s:goalsDateTime)."""
    moment = (start + timedelta(minutes=minutes)).replace(tzinfo=ZoneInfo(state.time_zone_name))
    return moment.astimezone(MOSCOW).replace(tzinfo=None).isoformat(sep=" ")


def seed(
    state: LogsState,
    count: int,
    *,
    start: int = 1,
    days_back: int = 2,
    step: timedelta = timedelta(minutes=7),
    goals: tuple[int, ...] = (GOAL,),
    price: int = 1_500_000,
    url: str | None = None,
) -> list[Visit]:
    """``count`` visits (ids ``start``…) ``days_back`` days before the fake's today, from
    noon on, each reaching ``goals`` 5 minutes in, worth 1,500 (× 1000 as Metrica stores
    it), with a landing URL carrying click ids and an e-mail."""
    base = days_ago(state, days_back)
    made = []
    for n in range(start, start + count):
        begin = base + step * (n - start)
        visit = Visit(
            visit_id=10_000_000 + n,
            start=begin,
            client_id=f"17000000{n:011d}",
            start_url=url
            or (
                f"https://shop.example/landing?yclid=yc{n}&gclid=Cj0-{n}&rb_clickid=rb{n}"
                f"&utm_source=yandex&email=buyer{n}%40example.com"
            ),
            goals=[
                (g, goal_time(state, begin, 5 + i), price, f"order-{n}", "RUB")
                for i, g in enumerate(goals)
            ],
            purchases=[f"p-{n}"],
            utm={
                "lastsign": {"UTMSource": "yandex", "UTMMedium": "cpc", "UTMCampaign": f"c{n}"},
                "first": {"UTMSource": "google", "UTMMedium": "organic"},
            },
        )
        state.visits.append(visit)
        made.append(visit)
    return made


def record_id(visit: Visit, goal: int = GOAL, index: int = 0) -> str:
    when = datetime.fromisoformat(visit.goals[index][1]).replace(tzinfo=MOSCOW)
    return f"{visit.visit_id}:{goal}:{int(when.timestamp())}"


def build(
    fake: FakeMetricaLogs,
    chunk_size: int = 5000,
    name: str = "web",
    rate: float | None = 1000.0,
    **config: Any,
) -> MetricaLogsSource:
    """A source over ``fake``; ``rate`` lifts the API's 10 requests/s (None keeps it)."""
    config.setdefault("poll_interval", "1s")
    cfg = MetricaLogsSourceConfig.model_validate(fake.source_config(**config))
    context = SourceContext(timezone=ZoneInfo("UTC"), base_dir=Path("."), chunk_size=chunk_size)
    source = MetricaLogsSource(name, cfg, context)
    source.sleep = lambda seconds: None  # type: ignore[method-assign]  # no real waits
    source.clock = lambda: fake.state.clock()  # type: ignore[method-assign]  # one "now"
    source.rate_override = rate
    return source
