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

With ``--fault-rate R`` (e.g. 0.2) the sync and default phases run again with the fake
answering a share R of the tracker requests 503 (seeded by ``--fault-seed``: the n-th
request of an event fails or not whatever the order), all other settings the defaults
(``delivery.retries_in_run: 3``), and it prints each faulty run's time as a ratio to the
fault-free one, the tracker requests made, and that no event was counted twice.

    .venv/bin/python bench/vk_ads.py --events 2000 --latency 0.05 --concurrency 8
    .venv/bin/python bench/vk_ads.py --events 2000 --fault-rate 0.2
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
    """The child: a fake on a free port; answers "stats", "reset" and "faults RATE SEED"
    lines until stdin closes."""
    from tests.vk_fake import fake_vk

    with fake_vk() as fake:
        fake.tracker.latency = latency

        def answer(command: str) -> dict[str, int]:
            tracker = fake.tracker
            if command == "reset":
                tracker.reset()
                return {}
            if command.startswith("faults "):
                _, rate, seed = command.split()
                tracker.inject_faults(float(rate), int(seed))
                return {}
            counted = tracker.counted()
            return {
                "hits": len(tracker.hits),
                "max_in_flight": tracker.max_in_flight,
                "faults": tracker.faults,
                "counted": len(counted),
                "twice": sum(1 for n in counted.values() if n > 1),
            }

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
    from convsync.core.model import Identifiers, OutboundRow, OutcomeKind
    from convsync.destinations.vk_ads import VkAdsDestination
    from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget

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
    workdir: Path, tracker: str, n: int, concurrency: int, rate: float, tag: str = ""
) -> tuple[float, dict[str, Any]]:
    """A whole sync of ``n`` new orders on a ledger of its own (``tag`` tells runs with
    the same ``n`` and ``rate`` apart)."""
    orders = workdir / f"orders-{n}-{rate}{tag}.csv"
    start = datetime.now(UTC) - timedelta(hours=6)
    with orders.open("w", encoding="utf-8") as out:
        out.write("order_id,created_at,status,total,rb_clickid\n")
        for i in range(n):
            at = (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"{orders.stem}-{i},{at},paid,1500,vk{i:010d}\n")
    config = workdir / f"convsync-{rate}{tag}.yaml"
    text = CONFIG.format(orders=orders.name, tracker=tracker, concurrency=concurrency, rate=rate)
    config.write_text(text, encoding="utf-8")
    return timed_sync(config, {}, workdir / f"ledger-{rate}{tag}.db", "vk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--default-events", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of tracker requests answered 503"
    )
    parser.add_argument("--fault-seed", type=int, default=1)
    parser.add_argument("--serve-fake", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake is not None:
        serve_fake(args.serve_fake)
        return
    n, concurrency, latency = args.events, args.concurrency, args.latency
    faulty = args.fault_rate > 0
    ideal = concurrency / latency if latency > 0 else float("inf")
    print(
        f"{n:,} events, {latency * 1000:.0f} ms per tracker request, concurrency {concurrency} "
        f"(ideal: {ideal:,.0f} events/s)"
        + (
            f", {args.fault_rate:.0%} of requests failing (seed {args.fault_seed})"
            if faulty
            else ""
        )
    )
    print(
        f"{'phase':<14} {'events':>7} {'seconds':>8} {'events/s':>9} {'in flight':>9} "
        f"{'× base':>7} {'requests':>9} {'faults':>7} {'counted':>8}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="convsync-bench-vk-") as tmp,
        fake_process(__file__, str(latency)) as (info, ask),
    ):
        workdir = Path(tmp)
        tracker = info["tracker_url"]
        base = 0.0
        default_n = args.default_events
        # (name, events, fault rate, run)
        phases: list[tuple[str, int, float, Any]] = [
            ("baseline", n, 0.0, lambda: baseline(tracker, n, concurrency)),
            ("send", n, 0.0, lambda: send(tracker, n, concurrency)),
            ("sync", n, 0.0, lambda: sync(workdir, tracker, n, concurrency, 1000)[0]),
            (
                "default",
                default_n,
                0.0,
                lambda: sync(workdir, tracker, default_n, concurrency, 20)[0],
            ),
        ]
        if faulty:
            phases[3:3] = [
                (
                    "sync+faults",
                    n,
                    args.fault_rate,
                    lambda: sync(workdir, tracker, n, concurrency, 1000, "-faulty")[0],
                )
            ]
            phases.append(
                (
                    "default+faults",
                    default_n,
                    args.fault_rate,
                    lambda: sync(workdir, tracker, default_n, concurrency, 20, "-faulty")[0],
                )
            )
        seconds_of: dict[str, float] = {}
        for name, events, fault_rate, run in phases:
            ask("reset")
            ask(f"faults {fault_rate} {args.fault_seed}")
            seconds = run()
            stats = ask("stats")
            assert stats["twice"] == 0, stats  # never an event counted twice
            assert stats["counted"] == events or fault_rate, stats
            seconds_of[name] = seconds
            base = base or seconds / events
            ratio = (seconds / events) / base
            print(
                f"{name:<14} {events:>7,} {seconds:>8.2f} {events / seconds:>9,.1f} "
                f"{stats['max_in_flight']:>9} {ratio:>6.2f}x {stats['hits']:>9,} "
                f"{stats['faults']:>7,} {stats['counted']:>8,}"
            )
    print(
        "× base: seconds per event relative to the baseline's (1.00x = as fast as the bare "
        "pool); requests: tracker requests made; counted: events the tracker answered 2xx "
        "(each once)"
    )
    for name in ("sync", "default") if faulty else ():
        clean, worse = seconds_of[name], seconds_of[f"{name}+faults"]
        print(
            f"{name} with {args.fault_rate:.0%} faults: {worse:.2f} s vs {clean:.2f} s "
            f"fault-free = {worse / clean:.2f}x"
        )


if __name__ == "__main__":
    main()
