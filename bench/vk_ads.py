"""Benchmark of VK Ads pixel events against the local fake tracker. Not a test.

The fake (``tests/vk_fake``) runs in a process of its own, answering each tracker
request after ``--latency`` seconds (default 50 ms), so it does not share this process's
interpreter lock. For N events with click ids, at ``--concurrency`` requests in flight,
in the same run:
  baseline  the N tracker GETs, URLs ready-made, through a plain ThreadPoolExecutor of
            the same size and one requests.Session (a pool as large): the floor
  send      ``VkAdsDestination.send`` in batches of its max_batch (40): hand-built URL,
            pacing, per-row outcomes; the rate limit lifted to 1000/s, so the pool bounds it
  sync      ``sync --once`` in-process on a SQLite ledger: pull the CSV → map → record →
            claim → build → send → record every outcome; rate limit lifted likewise
  default   the sync of ``--default-events`` more with the default limit
            (``max_events_per_second: 20``): what a real run of a backlog does
and prints events/s, the fake's most requests in flight and the ratio to the baseline.

    .venv/bin/python bench/vk_ads.py --events 2000 --latency 0.05 --concurrency 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import fake_process, order_conversion, serve, timed_sync

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake

CONFIG = """\
timezone: UTC
sources:
  shop: {{type: csv, path: "{orders}", id: order_id, time: created_at,
         fields: {{status: status, value: total, vk_click_id: rb_clickid}}}}
destinations:
  vk: {{type: vk_ads, pixel_id: 3456789, tracker_url: "{tracker}",
        concurrency: {concurrency}, max_events_per_second: {rate}}}
goals:
  purchase:
    source: shop
    when: {{status: paid}}
    value: value
    currency: RUB
    send: {{vk: {{goal: purchase}}}}
"""


def serve_fake(latency: float) -> None:
    """The child: a fake on a free port; answers "stats" and "reset" lines until stdin closes."""
    from tests.vk_fake import fake_vk

    with fake_vk() as fake:
        fake.tracker.latency = latency

        def answer(command: str) -> dict[str, int]:
            if command == "reset":
                fake.tracker.hits.clear()
                fake.tracker.max_in_flight = 0
                return {}
            return {"hits": len(fake.tracker.hits), "max_in_flight": fake.tracker.max_in_flight}

        serve({"tracker_url": fake.tracker_url}, answer)


def urls(tracker: str, n: int, start: int = 0) -> list[str]:
    return [
        f"{tracker}?id=3456789;e=RG%3A1500/purchase;rb_clickid=vk{i:010d}"
        for i in range(start, start + n)
    ]


def baseline(tracker: str, n: int, concurrency: int) -> float:
    import requests
    from requests.adapters import HTTPAdapter

    todo = urls(tracker, n)
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(pool_maxsize=concurrency, pool_block=True))

        def get(url: str) -> int:
            with session.get(url, timeout=30) as response:
                return response.status_code

        with ThreadPoolExecutor(concurrency) as pool:
            t0 = time.perf_counter()
            statuses = list(pool.map(get, todo))
            seconds = time.perf_counter() - t0
    assert all(s == 200 for s in statuses)
    return seconds


def send(tracker: str, n: int, concurrency: int) -> float:
    from convsync.destinations.vk_ads import VkAdsDestination
    from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
    from convsync.model import Identifiers, OutboundRow, OutcomeKind

    config = VkAdsConfig(
        type="vk_ads",
        pixel_id=3456789,
        tracker_url=tracker,
        concurrency=concurrency,
        max_events_per_second=1000,
    )
    vk = VkAdsDestination("vk", config)
    now = datetime.now(UTC)
    target = VkAdsTarget(goal="purchase")
    rows = []
    for i in range(n):
        made = order_conversion(i, now - timedelta(hours=1), Identifiers(vk_click_id=f"vk{i:010d}"))
        rows.append(OutboundRow(i, made, vk.build(made, target, now)))
    vk.connect()
    try:
        t0 = time.perf_counter()
        outcomes = [
            o for i in range(0, n, vk.max_batch) for o in vk.send(rows[i : i + vk.max_batch])
        ]
        seconds = time.perf_counter() - t0
    finally:
        vk.close()
    assert all(o.kind is OutcomeKind.DELIVERED for o in outcomes)
    return seconds


def sync(
    workdir: Path, tracker: str, n: int, concurrency: int, rate: float
) -> tuple[float, dict[str, Any]]:
    orders = workdir / f"orders-{n}-{rate}.csv"
    start = datetime.now(UTC) - timedelta(hours=6)
    with orders.open("w", encoding="utf-8") as out:
        out.write("order_id,created_at,status,total,rb_clickid\n")
        for i in range(n):
            at = (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"{orders.stem}-{i},{at},paid,1500,vk{i:010d}\n")
    config = workdir / f"convsync-{rate}.yaml"
    text = CONFIG.format(orders=orders.name, tracker=tracker, concurrency=concurrency, rate=rate)
    config.write_text(text, encoding="utf-8")
    return timed_sync(config, {}, workdir / f"ledger-{rate}.db", "vk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--default-events", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--serve-fake", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake is not None:
        serve_fake(args.serve_fake)
        return
    n, concurrency, latency = args.events, args.concurrency, args.latency
    ideal = concurrency / latency if latency > 0 else float("inf")
    print(
        f"{n:,} events, {latency * 1000:.0f} ms per tracker request, concurrency {concurrency} "
        f"(ideal: {ideal:,.0f} events/s)"
    )
    print(
        f"{'phase':<9} {'events':>7} {'seconds':>8} {'events/s':>9} {'in flight':>9} {'× base':>7}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="convsync-bench-vk-") as tmp,
        fake_process(__file__, str(latency)) as (info, ask),
    ):
        workdir = Path(tmp)
        tracker = info["tracker_url"]
        base = 0.0
        phases: list[tuple[str, int, Any]] = [
            ("baseline", n, lambda: baseline(tracker, n, concurrency)),
            ("send", n, lambda: send(tracker, n, concurrency)),
            ("sync", n, lambda: sync(workdir, tracker, n, concurrency, 1000)[0]),
            (
                "default",
                args.default_events,
                lambda: sync(workdir, tracker, args.default_events, concurrency, 20)[0],
            ),
        ]
        for name, events, run in phases:
            ask("reset")
            seconds = run()
            stats = ask("stats")
            assert stats["hits"] == events, stats
            base = base or seconds / events
            ratio = (seconds / events) / base
            print(
                f"{name:<9} {events:>7,} {seconds:>8.2f} {events / seconds:>9,.1f} "
                f"{stats['max_in_flight']:>9} {ratio:>6.2f}x"
            )
    print("× base: seconds per event relative to the baseline's (1.00x = as fast as the bare pool)")


if __name__ == "__main__":
    main()
