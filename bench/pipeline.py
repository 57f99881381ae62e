"""Benchmark of the sync pipeline on the embedded default (SQLite). Not a test.

Generates N synthetic orders as CSV, then measures, each phase in its own process so
peak RSS is its own:
  baseline  parse the same CSV with the csv module and insert every row into SQLite
            with executemany (the floor any CSV → SQLite tool pays)
  dry-run   pull → map → plan with the plan file written (nothing recorded)
  record    a real run: pull → map → record into the SQLite ledger (+ the deliver step,
            which stops at once here: Google's token endpoint is an
            unused local port, and so is the VK tracker; the Metrica upload is not built)
  rerun     the same real run again over unchanged input
and prints records/s, ratios against the baseline, peak RSS (of the phase's process and,
when a backlog was mapped in a second process, of that one) and the rerun/first ratio.

    .venv/bin/python bench/pipeline.py --records 1000000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CONFIG = """\
timezone: Europe/Moscow
phone_region: RU
sources:
  shop:
    type: csv
    path: orders.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, currency: currency, email: email, phone: phone,
             gclid: gclid, yclid: yclid, metrica_client_id: ym_uid, vk_click_id: rb_clickid,
             landing_url: landing_page}
destinations:
  google:
    type: google_ads
    customer_id: "123-456-7890"
    # nothing listens there: the deliver step stops at once, and never leaves the machine
    endpoint: "127.0.0.1:9"
    auth: {client_id: "${G_ID}", client_secret: "${G_SECRET}", refresh_token: "${G_TOKEN}",
           token_uri: "http://127.0.0.1:9/token"}
  # nothing listens there either: Metrica stops at its first request, VK at its first
  # batch, sending nothing (this bench measures the record step)
  metrica: {type: yandex_metrica, counter_id: 12345678, token: "${M_TOKEN}",
            api_base_url: "http://127.0.0.1:9"}
  vk: {type: vk_ads, pixel_id: 3456789, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  purchase:
    source: shop
    when: {status: [paid, completed]}
    value: value
    currency: RUB
    send:
      google: {conversion_action: 987654321}
      metrica: {target: offline_purchase}
      vk: {goal: purchase}
"""
ENV = {"G_ID": "bench", "G_SECRET": "bench-secret", "G_TOKEN": "bench-token", "M_TOKEN": "bench-m"}
HEADER = [
    "order_id", "created_at", "status", "total", "currency", "email", "phone",
    "gclid", "yclid", "ym_uid", "rb_clickid", "landing_page",
]  # fmt: skip


def generate(path: Path, n: int) -> None:
    rnd = random.Random(42)
    start = datetime.now(UTC) - timedelta(days=10)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(n):
            at = start + timedelta(seconds=i * 864_000 // max(n, 1))
            r = rnd.random()
            w.writerow(
                [
                    f"A-{i}",
                    at.strftime("%Y-%m-%d %H:%M:%S"),
                    "paid" if r < 0.8 else "new",
                    f"{rnd.randint(100, 99999)}.{rnd.randint(0, 99):02d}",
                    "RUB",
                    f"user{i}@example.com" if r < 0.5 else "",
                    f"+7 9{i % 100:02d} {i % 1000:03d}-{i % 100:02d}-{(i // 7) % 100:02d}"
                    if r < 0.3
                    else "",
                    f"EAIaIQobChMI{i:012d}" if r < 0.6 else "",
                    f"{6123456789012345678 + i}" if 0.3 < r < 0.6 else "",
                    f"{1732001001001001001 + i}" if r < 0.4 else "",
                    f"vk{i:010d}" if r < 0.2 else "",
                    "https://shop.example/?utm_source=bench" if r < 0.1 else "",
                ]
            )


def baseline(workdir: Path) -> int:
    db = sqlite3.connect(workdir / "baseline.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"CREATE TABLE orders ({', '.join(c + ' TEXT' for c in HEADER)})")
    marks = ", ".join("?" for _ in HEADER)
    n = 0
    with (workdir / "orders.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        chunk: list[list[str]] = []
        for row in reader:
            chunk.append(row)
            if len(chunk) == 5000:
                db.executemany(f"INSERT INTO orders VALUES ({marks})", chunk)
                db.commit()
                n += len(chunk)
                chunk = []
        db.executemany(f"INSERT INTO orders VALUES ({marks})", chunk)
        db.commit()
        n += len(chunk)
    db.close()
    return n


def pipeline(workdir: Path, dry_run: bool) -> int:
    import logging

    from convsync.config_loader import load_config
    from convsync.logging import configure_logging
    from convsync.pipeline import SyncOptions
    from convsync.progress import ProgressLog
    from convsync.runner import make_pipeline
    from convsync.settings import load_settings
    from convsync.store.ledger import Ledger

    configure_logging("json", "ERROR", stream=open(os.devnull, "w"))  # noqa: SIM115 (lives for the process)
    logging.disable(logging.WARNING)
    loaded = load_config(workdir / "convsync.yaml", env=ENV)
    ledger = Ledger.open(f"sqlite:///{workdir / 'ledger.db'}", read_only=dry_run)
    try:
        options = SyncOptions(dry_run=dry_run, output=workdir / "plan.jsonl" if dry_run else None)
        # as `convsync sync --once` builds it: a large backlog is mapped in a second
        # process (CONVSYNC_MAP_PROCESS_MIN_BYTES, default 50 MB)
        settings = load_settings(log_format="json", log_level="ERROR")
        # as off a terminal: progress counted, a log line every 10 s
        summary = make_pipeline(settings, loaded, ledger, ProgressLog()).run(options)
    finally:
        ledger.close()
    return int(summary.sources.get("shop", {}).get("pulled", 0))


def phase(name: str, workdir: Path) -> dict[str, float]:
    """Run one phase in a child process; returns its seconds, count and peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--workdir", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def child(name: str, workdir: Path) -> None:
    t0 = time.perf_counter()
    n = baseline(workdir) if name == "baseline" else pipeline(workdir, dry_run=name == "dry-run")
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # a mapping process's own peak (0 when none ran); both run at once, so their sum
    # bounds what the phase held
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "records": n, "rss_mb": rss_mb, "child_mb": child_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--phase")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    if args.phase:
        child(args.phase, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="convsync-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
        t0 = time.perf_counter()
        generate(workdir / "orders.csv", args.records)
        print(f"generated {args.records:,} records in {time.perf_counter() - t0:.1f}s")
        results = {
            name: phase(name, workdir) for name in ("baseline", "dry-run", "record", "rerun")
        }
    n = args.records
    base = results["baseline"]["seconds"]
    header = f"{'phase':<10} {'seconds':>9} {'records/s':>11} {'vs baseline':>12}"
    print(f"\n{header} {'peak RSS':>10} {'+ mapper':>9}")
    for name, r in results.items():
        rate = n / r["seconds"] if name != "rerun" else float("nan")
        ratio = r["seconds"] / base
        print(
            f"{name:<10} {r['seconds']:>9.2f} {rate:>11,.0f} {ratio:>11.2f}x "
            f"{r['rss_mb']:>8.0f}MB {r['child_mb']:>7.0f}MB"
        )
    print(
        f"\nrerun over unchanged input / first recorded run: "
        f"{results['rerun']['seconds'] / results['record']['seconds']:.1%}"
    )


if __name__ == "__main__":
    main()
