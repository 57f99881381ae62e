"""Benchmark of uploads to Yandex.Metrica against the local fake Metrica API. Not a test.

The fake (HTTP on 127.0.0.1, parsing every multipart CSV) runs in a process of its own,
so it does not share this process's interpreter lock. For N conversions (each with a
ClientId), in the same run:

  baseline  the same rows as ready-made dicts: ``csv.writer`` into a StringIO and one
            ``requests.post`` of the file (the floor: CSV text, HTTP, the fake's parsing)
  send      ``MetricaDestination.send`` of the same rows as the worker hands them over
            (CSV built from the payloads, the upload, its answer, the upload record)
  sync      ``convsync sync --once`` in-process on a SQLite ledger, three runs of one
            counter: the upload run, a run 5 minutes later (not processed yet: one poll)
            and one 20 minutes later (processed: one poll, rows matched)

and prints seconds, requests, the peak memory traced while building and posting the
file (tracemalloc, a separate pass), the time as a ratio of the baseline's, and the
requests of each sync run by endpoint.

    .venv/bin/python bench/metrica.py --conversions 100000
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import fake_process, order_conversion, serve, write_orders

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake

COUNTER = 24681357
CONFIG = f"""\
timezone: UTC
sources:
  shop: {{type: csv, path: orders.csv, id: order_id, time: created_at,
         fields: {{status: status, value: total, metrica_client_id: ym_uid}}}}
destinations:
  metrica: {{type: yandex_metrica, counter_id: {COUNTER}, token: "${{M_TOKEN}}",
             api_base_url: "${{M_URL}}"}}
goals:
  purchase:
    source: shop
    when: {{status: paid}}
    value: value
    currency: RUB
    send: {{metrica: {{target: offline_purchase}}}}
"""


def serve_fake() -> None:
    """The child: a fake on a free port; answers commands on stdin until it closes."""
    import logging

    from tests.metrica_fake import fake_metrica

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with fake_metrica() as fake:

        def answer(command: str) -> dict[str, Any]:
            if command == "process":
                fake.process()
            counts: dict[str, int] = {}
            for call in fake.calls:
                counts[call.endpoint] = counts.get(call.endpoint, 0) + 1
            rows = sum(len(u.lines) for u in fake.uploads.values())
            return {"requests": counts, "rows": rows, "uploads": len(fake.uploads)}

        serve({"url": fake.url, "token": fake.token}, answer)


def outbound_rows(destination: Any, n: int, now: datetime) -> list[Any]:
    from convsync.core.model import Identifiers, OutboundRow
    from convsync.destinations.yandex_metrica.config import MetricaTarget

    target = MetricaTarget(target="offline_purchase")
    rows = []
    for i in range(n):
        conversion = order_conversion(
            i,
            now - timedelta(days=2, seconds=-i),
            Identifiers(metrica_client_id=str(1700000000000000000 + i)),
        )
        payload = destination.build(conversion, target, now)
        rows.append(OutboundRow(i + 1, conversion, payload, batch_id=f"bench{n}x{i // 10**9}"))
    return rows


def baseline(url: str, token: str, rows: list[dict[str, Any]]) -> int:
    """One file, built and posted with the bare libraries; the requests made."""
    import requests

    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in rows)
    response = requests.post(
        f"{url}/management/v1/counter/{COUNTER}/offline_conversions/upload",
        params={"comment": "baseline"},
        headers={"Authorization": f"OAuth {token}"},
        files={"file": ("data.csv", buffer.getvalue().encode(), "text/csv")},
        timeout=300,
    )
    response.raise_for_status()
    return 1


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def traced_peak(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def sync_runs(workdir: Path, env: dict[str, str], ask: Callable[[str], dict[str, Any]]) -> None:
    from convsync.config.loader import load_config
    from convsync.core.logging import configure_logging
    from convsync.destinations.yandex_metrica import MetricaDestination
    from convsync.store.ledger import Ledger
    from convsync.sync.pipeline import SyncPipeline
    from convsync.sync.summary import SyncOptions

    configure_logging("json", "WARNING")
    loaded = load_config(workdir / "convsync.yaml", env=env)
    start = datetime.now(UTC)
    before = ask("stats")["requests"]
    print(f"\n{'sync run':<34} {'seconds':>8} {'requests by endpoint':<40}")
    with Ledger.open(f"sqlite:///{workdir / 'ledger.db'}") as ledger:
        for label, offset, process in (
            ("1: upload", 0, False),
            ("2: +5 min, not processed yet", 5, False),
            ("3: +20 min, processed", 20, True),
        ):
            if process:
                ask("process")
            at = start + timedelta(minutes=offset)
            dest = MetricaDestination("metrica", loaded.app.destinations["metrica"])  # type: ignore[arg-type]
            dest.clock = lambda at=at: at  # type: ignore[misc]
            pipeline = SyncPipeline(
                loaded, ledger, destinations={"metrica": dest}, clock=dest.clock
            )
            seconds, summary = timed(lambda p=pipeline: p.run(SyncOptions()))  # type: ignore[misc]
            after = ask("stats")["requests"]
            made = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
            before = after
            shown = ", ".join(f"{k} {v}" for k, v in sorted(made.items()))
            print(f"{label:<34} {seconds:>8.2f} {sum(made.values())} ({shown})")
            states = summary.destinations["metrica"]
        funnel = ledger.funnel(start - timedelta(days=30))
    print(f"last run's destination summary: {states}")
    print(f"funnel: delivered {funnel[0].delivered:,}, matched {funnel[0].matched:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake()
        return
    from convsync.destinations.yandex_metrica import MetricaDestination
    from convsync.destinations.yandex_metrica.config import MetricaConfig

    n = args.conversions
    now = datetime.now(UTC)
    with (
        fake_process(__file__) as (info, ask),
        tempfile.TemporaryDirectory(prefix="convsync-bench-metrica-") as tmp,
    ):
        config = MetricaConfig(
            type="yandex_metrica", counter_id=COUNTER, token=info["token"], api_base_url=info["url"]
        )
        dest = MetricaDestination("metrica", config)
        dest.clock = lambda: now
        rows = outbound_rows(dest, n, now)
        plain = [dict(r.payload["row"]) for r in rows]
        file_mb = len(build_file(rows)) / 2**20

        base_s, _ = timed(lambda: baseline(info["url"], info["token"], plain))
        base_mb = traced_peak(lambda: baseline(info["url"], info["token"], plain))

        def send() -> None:
            dest.connect()
            dest.send(rows)
            dest.take_uploads()
            dest.close()

        before = sum(ask("stats")["requests"].values())
        send_s, _ = timed(send)
        send_requests = sum(ask("stats")["requests"].values()) - before
        send_mb = traced_peak(send)

        print(f"{n:,} conversions, one counter; the CSV file is {file_mb:.1f} MB")
        header = ("phase", "seconds", "rows/s", "requests", "× base", "peak MB")
        print("{:<9} {:>8} {:>10} {:>9} {:>7} {:>8}".format(*header))
        for phase, seconds, requests, peak in (
            ("baseline", base_s, 1, base_mb),
            ("send", send_s, send_requests, send_mb),
        ):
            print(
                f"{phase:<9} {seconds:>8.2f} {n / seconds:>10,.0f} {requests:>9} "
                f"{seconds / base_s:>6.2f}x {peak:>8.1f}"
            )
        print("(send's requests: connect's token check + the upload)")

        workdir = Path(tmp)
        (workdir / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
        write_orders(workdir / "orders.csv", n, now, column="ym_uid", value="17{i:017d}", days=2)
        sync_runs(workdir, {"M_TOKEN": info["token"], "M_URL": info["url"]}, ask)


def build_file(rows: list[Any]) -> bytes:
    from convsync.destinations.yandex_metrica.csvfile import build_csv

    return build_csv([r.payload["row"] for r in rows])


if __name__ == "__main__":
    main()
