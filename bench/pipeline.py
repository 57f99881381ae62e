"""Benchmark of the sync pipeline on the embedded default (SQLite). Not a test.

Generates N synthetic orders as CSV, then measures, each phase in its own process so
peak RSS is its own:
  baseline  parse the same CSV with the csv module and insert every row into SQLite
            with executemany (the floor any CSV → SQLite tool pays)
  floor     plain Python doing a dry run's work by hand (bench/floor.py): parse, hash the
            e-mail and phone, build the three payloads, write them as JSON lines
  dry-run   pull → map → plan with the plan file written (nothing recorded)
  record    a real run: pull → map → record into the SQLite ledger (+ the deliver step,
            which stops at once here: Google's token endpoint is an
            unused local port, and so is the VK tracker; the Metrica upload is not built)
  rerun     the same real run again over unchanged input
and prints records/s, ratios against the baseline, CPU per record (both processes when a
backlog was mapped in a second one) and its ratio to the floor's, peak RSS (of the
phase's process and of the mapping process) and the rerun's time.

The input is meant to look like a shop's: 80 % paid, half with an e-mail (some typed
with capitals, spaces or Gmail dots), 30 % with a phone in one of three notations and
almost never repeated (the phone cache does not help), click ids for each platform.

    .venv/bin/python bench/pipeline.py --records 1000000 [--phases dry-run,record,rerun]
    CONVSYNC_MAP_PROCESS_MIN_BYTES=0 .venv/bin/python bench/pipeline.py …  (second process)
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
      google: {conversion_action: 987654321, enhanced_for_leads: true}
      metrica: {target: offline_purchase}
      vk: {goal: purchase}
"""
ENV = {"G_ID": "bench", "G_SECRET": "bench-secret", "G_TOKEN": "bench-token", "M_TOKEN": "bench-m"}
HEADER = [
    "order_id", "created_at", "status", "total", "currency", "email", "phone",
    "gclid", "yclid", "ym_uid", "rb_clickid", "landing_page",
]  # fmt: skip


def _phone(rnd: random.Random) -> str:
    """A Russian mobile number in one of the ways CRMs hold them, all but never repeated
    (real data: the phone cache rarely helps)."""
    a, b, c, d = rnd.randint(0, 99), rnd.randint(0, 999), rnd.randint(0, 99), rnd.randint(0, 99)
    shape = rnd.random()
    if shape < 0.5:
        return f"+7 9{a:02d} {b:03d}-{c:02d}-{d:02d}"
    if shape < 0.8:
        return f"8 (9{a:02d}) {b:03d}-{c:02d}-{d:02d}"
    return f"79{a:02d}{b:03d}{c:02d}{d:02d}"


def _email(i: int, rnd: random.Random) -> str:
    """A distinct address, sometimes as typed: capitals, spaces, Gmail dots and tags."""
    shape = rnd.random()
    if shape < 0.7:
        return f"user{i}@example.com"
    if shape < 0.9:
        return f" User{i}@Example.COM "
    return f"first.last{i}+shop@gmail.com"


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
                    _email(i, rnd) if r < 0.5 else "",
                    _phone(rnd) if rnd.random() < 0.3 else "",
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

    from convsync.config.loader import load_config
    from convsync.config.settings import load_settings
    from convsync.core.logging import configure_logging
    from convsync.service.runner import make_pipeline
    from convsync.store.ledger import Ledger
    from convsync.sync.pipeline import SyncOptions
    from convsync.sync.progress import ProgressLog

    configure_logging("json", "ERROR", stream=open(os.devnull, "w"))  # noqa: SIM115 (lives for the process)
    logging.disable(logging.WARNING)
    loaded = load_config(workdir / "convsync.yaml", env=ENV)
    ledger = Ledger.open(f"sqlite:///{workdir / 'ledger.db'}", read_only=dry_run)
    try:
        options = SyncOptions(dry_run=dry_run, output=workdir / "plan.jsonl" if dry_run else None)
        # as `convsync sync --once` builds it: in one process, unless
        # CONVSYNC_MAP_PROCESS_MIN_BYTES is set (then a large input is mapped in a second)
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


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the mapping process)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(name: str, workdir: Path) -> None:
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    if name == "baseline":
        n = baseline(workdir)
    elif name == "floor":
        from floor import floor

        n = floor(workdir)
    else:
        n = pipeline(workdir, dry_run=name == "dry-run")
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # a mapping process's own peak (0 when none ran); both run at once, so their sum
    # bounds what the phase held
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # CPU from the phase's start: the imports of the phase's own code are counted (a run
    # pays them), the interpreter's start is not
    cpu = _cpu_seconds() - cpu0
    result = {"seconds": seconds, "cpu": cpu, "records": n, "rss_mb": rss_mb, "child_mb": child_mb}
    print(json.dumps(result))


PHASES = ("baseline", "floor", "dry-run", "record", "rerun")


def report(n: int, results: dict[str, dict[str, float]]) -> None:
    base, floor_cpu = results["baseline"]["seconds"], results["floor"]["cpu"]
    print(
        f"\n{'phase':<10} {'seconds':>9} {'records/s':>11} {'vs baseline':>12} "
        f"{'CPU us/rec':>11} {'CPU vs floor':>13} {'peak RSS':>9} {'+ mapper':>9}"
    )
    for name, r in results.items():
        rerun = name == "rerun"
        rate = f"{n / r['seconds']:>11,.0f}" if not rerun else f"{'':>11}"
        per_record = f"{r['cpu'] / n * 1e6:>11.1f}" if not rerun else f"{'':>11}"
        print(
            f"{name:<10} {r['seconds']:>9.2f} {rate} {r['seconds'] / base:>11.2f}x "
            f"{per_record} {r['cpu'] / floor_cpu:>12.2f}x "
            f"{r['rss_mb']:>7.0f}MB {r['child_mb']:>7.0f}MB"
        )
    if "rerun" not in results:
        return
    print(
        f"\nrerun over unchanged input: {results['rerun']['seconds']:.2f} s, "
        f"{results['rerun']['seconds'] / results['record']['seconds']:.1%} of the first "
        "recorded run"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--phase")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument(
        "--phases", default=",".join(PHASES), help="which to run (baseline and floor always)"
    )
    args = parser.parse_args()
    if args.phase:
        child(args.phase, args.workdir)
        return
    wanted = [p for p in PHASES if p in {"baseline", "floor", *args.phases.split(",")}]
    if "rerun" in wanted and "record" not in wanted:
        parser.error("--phases: rerun needs record")
    with tempfile.TemporaryDirectory(prefix="convsync-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
        t0 = time.perf_counter()
        generate(workdir / "orders.csv", args.records)
        print(f"generated {args.records:,} records in {time.perf_counter() - t0:.1f}s")
        results = {name: phase(name, workdir) for name in wanted}
    report(args.records, results)


if __name__ == "__main__":
    main()
