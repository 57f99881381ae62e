"""Benchmark of the Metrica Logs API source against the local fake API. Not a test.

The fake (``tests/metrica_logs_fake``) runs in a thread of this process. Two figures:

Requests per day of data — a first pull of 1, 7 and 30 days (``max_days_per_request``
30, the default), a daily run (yesterday plus the 3 re-read days) and a run of the same
day (nothing new); the fake prepares a request after ``--polls`` polls and cuts parts
of ``--part-rows`` visits. Compared with a request per day (``max_days_per_request: 1``)
as a naive client would send.

Records/s — a pull of ``--days`` × ``--visits`` visits (a third reach a configured
goal) with the rate limit lifted, against two baselines measured in the same run on
the same parts: the bare HTTP download (``requests``, ``iter_content``, nothing parsed)
and the bare parse (the TSV bytes in memory split into rows and cells).

    .venv/bin/python bench/metrica_logs_source.py --days 30 --visits 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake

from tests.metrica_logs_fake import (  # noqa: E402  # after sys.path
    FakeMetricaLogs,
    Visit,
    days_ago,
    fake_metrica_logs,
)

from convsync.core.model import SourceState  # noqa: E402 - after sys.path
from convsync.sources.base import SourceContext  # noqa: E402  # likewise
from convsync.sources.metrica_logs.config import MetricaLogsSourceConfig  # noqa: E402
from convsync.sources.metrica_logs.source import MetricaLogsSource  # noqa: E402

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def fill(fake: FakeMetricaLogs, days: int, visits: int) -> None:
    state = fake.state
    state.clock = lambda: NOW
    for back in range(1, days + 1):
        base = days_ago(state, back, "00:00:10")
        for n in range(visits):
            start = base + timedelta(seconds=n * 86_000 // visits)
            moment = (start + timedelta(minutes=3)).replace(tzinfo=ZoneInfo(state.time_zone_name))
            goal_at = moment.astimezone(ZoneInfo("Europe/Moscow")).replace(tzinfo=None)
            goals = (
                [(111, goal_at.isoformat(sep=" "), 990_000, f"o{n}", "RUB")] if n % 3 == 0 else []
            )
            if n % 5 == 0:
                goals.append((222, goal_at.isoformat(sep=" "), 0, "", ""))
            state.visits.append(
                Visit(
                    visit_id=back * 10_000_000 + n,
                    start=start,
                    client_id=f"17{back:04d}{n:013d}",
                    start_url=f"https://shop.example/p/{n}?utm_source=yandex&yclid={back}{n}",
                    goals=goals,
                    purchases=[f"p{n}"] if goals else [],
                    utm={"lastsign": {"UTMSource": "yandex", "UTMMedium": "cpc"}},
                )
            )


def source(fake: FakeMetricaLogs, rate: float | None, **config: Any) -> MetricaLogsSource:
    cfg = MetricaLogsSourceConfig.model_validate(
        fake.source_config(goal_ids=[111], poll_interval="1s", **config)
    )
    context = SourceContext(timezone=ZoneInfo("UTC"), base_dir=ROOT, chunk_size=5000)
    src = MetricaLogsSource("web", cfg, context)
    src.clock = lambda: fake.state.clock()  # type: ignore[method-assign]  # the fake's day
    src.sleep = lambda seconds: None  # type: ignore[method-assign]  # polls wait no time
    src.rate_override = rate
    return src


def pull(
    fake: FakeMetricaLogs, state: SourceState, rate: float | None = 1000.0, **config: Any
) -> tuple[int, int, float, SourceState]:
    """(records, requests, seconds, state after) of one pull."""
    src = source(fake, rate, **config)
    started = time.perf_counter()
    records = 0
    cursor = state.cursor
    for chunk in src.pull(state):
        records += len(chunk.records)
        cursor = chunk.cursor if chunk.cursor is not None else cursor
    return records, sum(src.requests.values()), time.perf_counter() - started, SourceState(cursor)


def request_figures(polls: int, part_rows: int) -> list[str]:
    lines = []
    for days in (1, 7, 30):
        with fake_metrica_logs() as fake:
            fill(fake, days, 200)
            fake.state.polls_to_process, fake.state.rows_per_part = polls, part_rows
            start = (NOW.date() - timedelta(days=days)).isoformat()
            _, sent, _, state = pull(fake, SourceState(), start_date=start)
            _, naive, _, _ = pull(fake, SourceState(), start_date=start, max_days_per_request=1)
            lines.append(
                f"  first pull {days:>2} d   {sent:>4} requests  {sent / days:>5.2f} per day "
                f"of data   (a request a day: {naive:>4}, {naive / days:.2f} per day)"
            )
            if days == 30:
                fake.state.calls.clear()
                _, same_day, _, _ = pull(fake, state, start_date=start)
                fake.state.clock = lambda: NOW + timedelta(days=1)
                _, daily, _, _ = pull(fake, state, start_date=start)
                lines.append(
                    f"  daily run (1 new day + 3 re-read)  {daily:>4} requests; "
                    f"the same day again {same_day} requests"
                )
    return lines


def throughput(days: int, visits: int, part_rows: int) -> list[str]:
    with fake_metrica_logs() as fake:
        fill(fake, days, visits)
        fake.state.rows_per_part = part_rows
        start = (NOW.date() - timedelta(days=days)).isoformat()
        pull(fake, SourceState(), start_date=start)  # learns the request's parts
        state = fake.state
        request = next(iter(state.requests.values()))
        parts = state._parts(request)
        # the fake writes the TSV once: its own cost stays out of the pull's time
        state._parts = lambda _request: parts  # type: ignore[method-assign]
        records, sent, seconds, _ = pull(fake, SourceState(), start_date=start)
        request.status, request.parts = "processed", parts
        rows = sum(p.count(b"\n") - 1 for p in parts)
        paths = [
            f"/management/v1/counter/{state.counter_id}/logrequest/"
            f"{request.request_id}/part/{n}/download"
            for n in range(len(parts))
        ]
        session = requests.Session()
        session.headers["Authorization"] = f"OAuth {state.token}"
        began = time.perf_counter()
        size = 0
        for path in paths:
            with session.get(fake.base_url + path, stream=True, timeout=60) as response:
                for block in response.iter_content(256 * 1024):
                    size += len(block)
        http_seconds = time.perf_counter() - began
        session.close()
        began = time.perf_counter()
        cells = 0
        for part in parts:
            for line in part.decode().split("\n")[1:]:
                cells += len(line.split("\t"))
        parse_seconds = time.perf_counter() - began
    return [
        f"  {days} days × {visits} visits = {rows} visits, {size / 2**20:.1f} MiB of TSV in "
        f"{len(paths)} parts, {records} records, {sent} requests",
        f"  bare download  {rows / http_seconds:>9.0f} visits/s  (requests, iter_content)",
        f"  bare parse     {rows / parse_seconds:>9.0f} visits/s  (split rows and cells, "
        "in memory)",
        f"  pull           {rows / seconds:>9.0f} visits/s  ({records / seconds:.0f} records/s)"
        f"  ratio {http_seconds / seconds:.3f} of the download, "
        f"{parse_seconds / seconds:.3f} of the parse",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--visits", type=int, default=3000, help="visits per day")
    parser.add_argument("--polls", type=int, default=3, help="polls before processed")
    parser.add_argument("--part-rows", type=int, default=20_000, help="visits per part")
    args = parser.parse_args()
    lines = ["Metrica Logs API source (fake on 127.0.0.1)", "Requests per day of data "
             f"(processed after {args.polls} polls, {args.part_rows} visits a part):"]  # fmt: skip
    lines += request_figures(args.polls, args.part_rows)
    lines.append("Throughput (rate limit lifted):")
    lines += throughput(args.days, args.visits, args.part_rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
