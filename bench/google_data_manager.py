"""Benchmark of the sync to Google through the Data Manager API against the local fake
Data Manager API. Not a test.

The fake (real gRPC over TLS, the real ``google-ads-datamanager`` client) runs in a
process of its own, answering each request after ``--latency`` seconds. For N
conversions (each with a gclid) and each latency, in the same run:
  baseline  the same N events as ready-made IngestEventsRequests, sent with the bare
            IngestionServiceClient in ceil(N / 2000) calls (the floor: protobuf, gRPC,
            TLS, the fake)
  sync      ``convsync sync --once`` in-process on a SQLite ledger: pull the CSV → map →
            record → claim → build → send → record every outcome and each request
  bad gclid the sync again with ``--bad`` malformed gclids among the N (each refused
            event is rejected alone and the rest of its request sent again)
and prints rows/s, the requests the fake received per pass and the time as a ratio of
the baseline's.

    .venv/bin/python bench/google_data_manager.py --conversions 100000 --latency 0 0.2
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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

GCLID = "EAIaIQobChMI{i:012d}"


def bad_gclid(i: int) -> str:
    return f"EAIaIQobChMX{i:012d}"


def serve_fake(latency: float, bad: list[int]) -> None:
    """The child: a fake on a free port (with these gclids refused as malformed)."""
    from tests.datamanager_fake import INGEST, fake_data_manager

    with fake_data_manager(latency=latency) as fake:
        fake.bad_gclids.update(bad_gclid(i) for i in bad)

        def stats(_command: str) -> dict[str, int]:
            calls = fake.calls_of(INGEST)
            fake.process()
            return {
                "requests": len(calls),
                "refused": sum(c.status != "OK" for c in calls),
                "stored": len(fake.state.conversions),
            }

        serve({"endpoint": fake.endpoint, "auth": fake.oauth.oauth_client()}, stats)


def baseline(workdir: Path, env: dict[str, str], n: int) -> float:
    """The bare client: prebuilt requests, one call per 2,000 events."""
    from convsync.config.loader import load_config
    from convsync.core.model import Identifiers
    from convsync.destinations.google_ads.config import GoogleAdsTarget
    from convsync.destinations.google_ads.datamanager import request
    from convsync.destinations.google_ads.datamanager.destination import (
        DataManagerDestination,
    )

    loaded = load_config(workdir / "convsync.yaml", env=env)
    google = DataManagerDestination("google", loaded.app.destinations["google"])  # type: ignore[arg-type]
    google.connect()
    now = datetime.now(UTC)
    target = GoogleAdsTarget(conversion_action=987654321)
    payloads = [
        google.build(
            order_conversion(
                i, now - timedelta(days=5, seconds=-i), Identifiers(gclid=GCLID.format(i=i))
            ),
            target,
            now,
        )
        for i in range(n)
    ]
    requests = [
        request.ingest_request(google.config, payloads, part, validate_only=False)
        for start in range(0, n, request.MAX_EVENTS)
        for part in request.parts(payloads, range(start, min(n, start + request.MAX_EVENTS)))
    ]
    client = google._client._client  # type: ignore[union-attr]
    t0 = time.perf_counter()
    for built in requests:
        client.ingest_events(request=built, retry=None, timeout=120)
    seconds = time.perf_counter() - t0
    google.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--bad", type=int, default=5, help="malformed gclids in the last pass")
    parser.add_argument("--serve-fake", type=float, help=argparse.SUPPRESS)
    parser.add_argument("bad_rows", type=int, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake is not None:
        serve_fake(args.serve_fake, args.bad_rows)
        return
    from tests.google_ads_fake.tls import trusted_test_certificate

    trusted_test_certificate()  # before any channel; the fake processes inherit it
    n = args.conversions
    bad = sorted({(k * 7919 + 1) % n for k in range(args.bad)})
    print(
        f"{n:,} conversions, one account; requests per pass when nothing is refused: "
        f"{math.ceil(n / 2000)} (ceil(N / 2000)); the last pass has {len(bad)} malformed gclids"
    )
    print(
        f"{'latency':>7} {'phase':<10} {'seconds':>8} {'rows/s':>9} {'requests':>9} "
        f"{'refused':>8} {'× base':>7}"
    )
    for latency in args.latency:
        with tempfile.TemporaryDirectory(prefix="convsync-bench-dm-") as tmp:
            workdir = Path(tmp)
            (workdir / "convsync.yaml").write_text(google_config("data_manager"), encoding="utf-8")
            write_orders(workdir / "orders.csv", n, datetime.now(UTC), value=GCLID)
            with fake_process(__file__, str(latency)) as (info, ask):
                base = baseline(workdir, google_env(info), n)
                passes = [("baseline", base, ask("stats"), n)]
            with fake_process(__file__, str(latency)) as (info, ask):
                seconds, counts = timed_sync(
                    workdir / "convsync.yaml", google_env(info), workdir / "ledger.db", "google"
                )
                passes.append(("sync", seconds, ask("stats"), counts.get("delivered", 0)))
            (workdir / "ledger.db").unlink()
            with_bad = workdir / "orders.csv"
            write_orders(with_bad, n, datetime.now(UTC), value=GCLID)
            text = with_bad.read_text(encoding="utf-8")
            for i in bad:
                text = text.replace(GCLID.format(i=i) + "\n", bad_gclid(i) + "\n")
            with_bad.write_text(text, encoding="utf-8")
            bad_args = [str(i) for i in bad]
            with fake_process(__file__, str(latency), *bad_args) as (info, ask):
                seconds, counts = timed_sync(
                    workdir / "convsync.yaml", google_env(info), workdir / "ledger.db", "google"
                )
                passes.append(("bad gclid", seconds, ask("stats"), counts.get("delivered", 0)))
        for phase, took, stats, delivered in passes:
            expected = n - (len(bad) if phase == "bad gclid" else 0)
            assert delivered == expected == stats["stored"], (phase, delivered, stats)
            print(
                f"{latency:7.2f} {phase:<10} {took:8.2f} {n / took:9,.0f} "
                f"{stats['requests']:9d} {stats['refused']:8d} {took / base:7.2f}"
            )


if __name__ == "__main__":
    main()
