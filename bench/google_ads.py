"""Benchmark of the sync to Google Ads against the local fake Google Ads API. Not a test.

The fake (real gRPC over TLS, the real ``google-ads`` client) runs in a process of its
own, answering each request after ``--latency`` seconds, so it does not share this
process's interpreter lock. For N conversions (each with a gclid) and each latency, in
the same run:
  baseline  the same N rows as ready-made request messages, sent with the bare service
            client in ceil(N / 2000) calls (the floor: protobuf, gRPC, TLS, the fake)
  sync      ``convsync sync --once`` in-process on a SQLite ledger: pull the CSV → map →
            record → claim → build → send → decode → record every outcome
and prints rows/s, the requests the fake received per pass and the sync's time as a
ratio of the baseline's.

    .venv/bin/python bench/google_ads.py --conversions 100000 --latency 0 0.2
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import (
    fake_process,
    google_config,
    google_env,
    order_conversion,
    serve,
    timed_sync,
    write_orders,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake


def serve_fake(latency: float) -> None:
    """The child: a fake on a free port; answers "stats" lines until stdin closes."""
    from tests.google_ads_fake import fake_google_ads

    with fake_google_ads(latency=latency) as fake:

        def stats(_command: str) -> dict[str, int]:
            calls = fake.calls_of("UploadClickConversions")
            return {
                "requests": len(calls),
                "rows": sum(len(c.rows) for c in calls),
                "stored": len(fake.state.conversions),
            }

        serve({"endpoint": fake.endpoint, "auth": fake.oauth.oauth_client()}, stats)


def baseline(workdir: Path, env: dict[str, str], n: int) -> float:
    """The bare service client: prebuilt requests, one call per 2,000 rows."""
    from convsync.config.loader import load_config
    from convsync.core.model import Identifiers
    from convsync.destinations.google_ads import GoogleAdsDestination
    from convsync.destinations.google_ads.config import GoogleAdsTarget
    from convsync.destinations.google_ads.upload import click_request

    loaded = load_config(workdir / "convsync.yaml", env=env)
    google = GoogleAdsDestination("google", loaded.app.destinations["google"])  # type: ignore[arg-type]
    google.connect()
    now = datetime.now(UTC)
    target = GoogleAdsTarget(conversion_action=987654321)
    payloads = [
        google.build(
            order_conversion(
                i,
                now - timedelta(days=5, seconds=-i),
                Identifiers(gclid=f"EAIaIQobChMI{i:012d}"),
            ),
            target,
            now,
        )
        for i in range(n)
    ]
    size = google.max_batch
    requests = [click_request("1234567890", payloads[i : i + size]) for i in range(0, n, size)]
    service = google._uploader._click_service()  # type: ignore[union-attr]
    t0 = time.perf_counter()
    for request in requests:
        service.upload_click_conversions(request=request, retry=None, timeout=120)
    seconds = time.perf_counter() - t0
    google.close()
    return seconds


def sync(workdir: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    return timed_sync(workdir / "convsync.yaml", env, workdir / "ledger.db", "google")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--serve-fake", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake is not None:
        serve_fake(args.serve_fake)
        return
    from tests.google_ads_fake.tls import trusted_test_certificate

    trusted_test_certificate()  # before any channel; the fake processes inherit it
    n = args.conversions
    print(f"{n:,} conversions, one customer; expected requests per pass: {math.ceil(n / 2000)}")
    print(f"{'latency':>7} {'phase':<9} {'seconds':>8} {'rows/s':>9} {'requests':>9} {'× base':>7}")
    for latency in args.latency:
        with tempfile.TemporaryDirectory(prefix="convsync-bench-google-") as tmp:
            workdir = Path(tmp)
            (workdir / "convsync.yaml").write_text(
                google_config("google_ads_api"), encoding="utf-8"
            )
            write_orders(workdir / "orders.csv", n, datetime.now(UTC))
            with fake_process(__file__, str(latency)) as (info, ask):
                base = baseline(workdir, google_env(info), n)
                base_stats = ask("stats")
            with fake_process(__file__, str(latency)) as (info, ask):
                seconds, counts = sync(workdir, google_env(info))
                sync_stats = ask("stats")
        assert counts.get("delivered") == n == sync_stats["stored"], (counts, sync_stats)
        for phase, took, stats in (("baseline", base, base_stats), ("sync", seconds, sync_stats)):
            print(
                f"{latency:7.2f} {phase:<9} {took:8.2f} {n / took:9,.0f} "
                f"{stats['requests']:9d} {took / base:7.2f}"
            )


if __name__ == "__main__":
    main()
