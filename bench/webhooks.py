"""Benchmark of the webhook endpoint on loopback. Not a test.

``convsync run`` serves one generic JSON webhook source in a process of its own (its
schedule an hour away, so only webhooks run); ``--senders`` threads of this process
post ``--requests`` distinct orders through keep-alive sessions, each waiting for its
answer before the next post. The same senders, in the same run, first post to:
  baseline  a bare waitress server with the same thread count whose app answers 200 at
            once: the HTTP stack alone, the floor
then to convsync, whose answer comes after the order is mapped and committed to the
ledger (SQLite file; PostgreSQL with --postgres). Prints accepted requests/s, p50/p99
latency, the server's CPU time per request, ratios to the baseline and how many
transactions held the requests.

    .venv/bin/python bench/webhooks.py --requests 5000 --senders 50 [--threads 64]
        [--postgres URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONVSYNC = str(Path(sys.executable).parent / "convsync")
TOKEN = "bench-token-123"
CONFIG = """\
timezone: UTC
schedule: {every: 1h}
webhooks: {host: 127.0.0.1, port: 0, threads: THREADS}
sources:
  site:
    type: webhook
    token: ${SITE_TOKEN}
    fields: {status: status, value: total, email: email, gclid: gclid}
destinations:
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  order:
    source: site
    when: {status: paid}
    value: value
    currency: RUB
    send: {vk: {goal: purchase}}
"""

BARE = """\
import logging, waitress
logging.getLogger("waitress").setLevel(logging.ERROR)
def app(environ, start_response):
    environ["wsgi.input"].read()
    body = b'{"status": "accepted"}'
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
server = waitress.create_server(
    app, host="127.0.0.1", port=0, threads=THREADS, connection_limit=1000
)
print(server.effective_port, flush=True)
server.run()
"""


def start_bare(threads: int) -> tuple[subprocess.Popen[str], str]:
    code = BARE.replace("THREADS", str(threads))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{process.stdout.readline().strip()}/webhooks/site"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): the server's own cost,
    which the machine's other load disturbs less than the wall-clock rate."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_convsync(workdir: Path, db: str) -> tuple[subprocess.Popen[str], str, Path]:
    """``convsync run`` with its log in a file, so that the server's log writes never
    wait for this busy process (a pipe read by one of its threads can fill up)."""
    env = {
        **os.environ,
        "SITE_TOKEN": TOKEN,
        "CONVSYNC_HEALTH_PORT": "0",
        "CONVSYNC_LOG_FORMAT": "json",
    }
    log_path = workdir / "convsync.log"
    with log_path.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [CONVSYNC, "--database-url", db, "--config", str(workdir / "convsync.yaml"), "run"],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for event in log_events(log_path):
            if event.get("event") == "webhooks listening":
                return process, f"http://127.0.0.1:{event['port']}/webhooks/site", log_path
        if process.poll() is not None:
            sys.exit(f"convsync run ended at start:\n{log_path.read_text(encoding='utf-8')}")
        time.sleep(0.1)
    process.kill()
    sys.exit("convsync run did not start listening in 60 s")


def log_events(log_path: Path) -> list[dict[str, Any]]:
    lines = log_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def load(url: str, count: int, senders: int, offset: int) -> tuple[float, list[float]]:
    """``count`` posts by ``senders`` threads; (seconds, latencies) of the 2xx answers."""
    latencies: list[float] = []
    lock = threading.Lock()

    parts = urlsplit(url)

    def sender(k: int) -> None:
        # http.client, not requests: a lighter client leaves more of the two cores to the
        # server (both share this machine)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        headers = {"X-Convsync-Token": TOKEN, "Content-Type": "application/json"}
        try:
            for n in range(offset + k, offset + count, senders):
                order = {
                    "id": f"o-{n}",
                    "status": "paid",
                    "total": "1500.00",
                    "email": f"buyer{n}@example.com",
                    "gclid": f"Cj0-{n}",
                }
                started = time.perf_counter()
                connection.request("POST", parts.path, json.dumps(order), headers)
                response = connection.getresponse()
                response.read()
                took = time.perf_counter() - started
                if response.status < 300:
                    with lock:
                        latencies.append(took)
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(sender, range(senders)))
    return time.perf_counter() - started, latencies


def report(
    name: str,
    seconds: float,
    latencies: list[float],
    cpu: float,
    base: float | None,
    extra: str = "",
) -> float:
    rate = len(latencies) / seconds
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    cpu_ms = cpu * 1000 / max(1, len(latencies))
    ratio = f"{base / rate:5.2f}x" if base else "1.00x"
    figures = f"{len(latencies):>7,} {seconds:8.2f} {rate:9,.0f} {p50:8.1f} {p99:8.1f}"
    figures += f" {cpu_ms:7.2f}"
    print(f"{name:<19} {figures}  {ratio}  {extra}")
    return rate


def measured(
    process: subprocess.Popen[str], url: str, args: argparse.Namespace
) -> tuple[float, list[float], float]:
    """(seconds, latencies, server CPU seconds) of one load phase."""
    cpu_before = cpu_seconds(process.pid)
    seconds, latencies = load(url, args.requests, args.senders, 0)
    return seconds, latencies, cpu_seconds(process.pid) - cpu_before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument(
        "--threads", type=int, default=64, help="webhooks.threads (and the baseline's)"
    )
    parser.add_argument("--postgres", default=None, help="also measure on this PostgreSQL URL")
    args = parser.parse_args()
    print(
        f"{args.requests:,} POSTs by {args.senders} concurrent senders on loopback, one order "
        f"each; {args.threads} server threads; cpu ms = the server's CPU time per request"
    )
    head = f"{'2xx':>7} {'seconds':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>7}"
    print(f"{'phase':<18} {head}  × base")
    bare, url = start_bare(args.threads)
    try:
        load(url, min(500, args.requests), args.senders, 10**9)  # warm-up
        seconds, latencies, cpu = measured(bare, url, args)
        base = report("baseline (bare)", seconds, latencies, cpu, None)
    finally:
        bare.kill()
        bare.wait()
    ledgers = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    for name, pg in ledgers:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            config = CONFIG.replace("THREADS", str(args.threads))
            (workdir / "convsync.yaml").write_text(config, encoding="utf-8")
            db = pg or f"sqlite:///{workdir / 'ledger.db'}"
            process, url, log_path = start_convsync(workdir, db)
            try:
                seconds, latencies, cpu = measured(process, url, args)
            finally:
                process.terminate()
                process.wait(60)
            stopped = [e for e in log_events(log_path) if e["event"] == "webhook writer stopped"]
            extra = ""
            if stopped:
                s = stopped[-1]
                extra = f"{s['requests']:,} requests in {s['transactions']:,} transactions"
            report(f"convsync {name}", seconds, latencies, cpu, base, extra)


if __name__ == "__main__":
    main()
