"""A ``convsync run`` killed while senders post: nothing it acknowledged is lost, and
what senders post again is recorded once."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from convsync.store.ledger import Ledger
from convsync.store.schema import conversions
from tests.integration.processes import start_convsync
from tests.integration.webhooks.conftest import TOKENS
from tests.integration.webhooks.test_server import order

CONFIG = """\
timezone: Europe/Moscow
schedule: {every: 1h}
webhooks: {host: 127.0.0.1, port: 0}
sources:
  site:
    type: webhook
    token: ${SITE_TOKEN}
    time: created_at
    fields: {status: status, value: total, currency: currency, email: email}
destinations:
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  order:
    source: site
    value: value
    currency: RUB
    send: {vk: {goal: purchase}}
"""


def _serve(
    workdir: Path, ledger_url: str, health_port: int = 0
) -> tuple[subprocess.Popen[str], str, threading.Thread]:
    """``convsync run`` in a process of its own, and its webhook URL once it listens."""
    process = start_convsync(
        workdir,
        {**TOKENS, "CONVSYNC_HEALTH_PORT": str(health_port), "CONVSYNC_HEALTH_HOST": "127.0.0.1"},
        ledger_url,
        "run",
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # the pipe must never fill: the child would block on a log line
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    drainer = threading.Thread(target=drain, daemon=True, name="drain")
    drainer.start()
    while True:
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            process.kill()
            raise AssertionError(f"convsync run never listened: {process.communicate()}") from None
        if line.startswith("{") and json.loads(line).get("event") == "webhooks listening":
            return process, f"http://127.0.0.1:{json.loads(line)['port']}/webhooks/site", drainer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ended(process: subprocess.Popen[str], drainer: threading.Thread, sig: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    process.wait(30)
    drainer.join(30)
    for pipe in (process.stdout, process.stderr):
        assert pipe is not None
        pipe.close()


def _recorded(ledger_url: str) -> list[str]:
    with Ledger.open(ledger_url) as ledger, ledger._engine.connect() as connection:
        return list(
            connection.execute(
                conversions.select().with_only_columns(conversions.c.record_id)
            ).scalars()
        )


def test_a_kill_loses_nothing_acknowledged_and_a_resend_is_recorded_once(
    tmp_path: Path, ledger_url: str
) -> None:
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    process, url, drainer = _serve(tmp_path, ledger_url)
    acknowledged: list[str] = []
    killed = threading.Event()
    headers = {"X-Convsync-Token": TOKENS["SITE_TOKEN"]}

    def sender(first: int) -> None:
        for n in range(first, first + 1000, 1):
            if killed.is_set():
                return
            try:
                with requests.post(url, json=order(n), headers=headers, timeout=10) as r:
                    if r.status_code == 200:
                        acknowledged.append(f"o-{n}")
            except requests.RequestException:  # cut off by the kill: not acknowledged
                return
            if len(acknowledged) >= 150 and not killed.is_set():
                killed.set()
                process.send_signal(signal.SIGKILL)  # mid-stream: requests are in hand

    try:
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(sender, range(0, 10_000, 1000)))
    finally:
        _ended(process, drainer, signal.SIGKILL)
    assert killed.is_set()

    recorded = _recorded(ledger_url)
    assert set(acknowledged) <= set(recorded)
    assert len(recorded) == len(set(recorded))

    # the senders post everything again: each order ends up recorded exactly once
    health_port = _free_port()
    process, url, drainer = _serve(tmp_path, ledger_url, health_port)
    try:
        resend = sorted({*acknowledged, *recorded, "o-99999"})
        with ThreadPoolExecutor(10) as pool:
            answers = list(
                pool.map(
                    lambda i: requests.post(
                        url, json=order(int(i[2:])), headers=headers, timeout=10
                    ).json(),
                    resend,
                )
            )
        health = f"http://127.0.0.1:{health_port}"
        totals = requests.get(health + "/healthz", timeout=10).json()["webhooks"]
        metrics = requests.get(health + "/metrics", timeout=10).text
    finally:
        _ended(process, drainer, signal.SIGTERM)
    assert totals["requests"] == len(resend)
    assert 1 <= totals["transactions"] <= len(resend)
    served = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    assert served["convsync_webhook_requests_total"] == len(resend)
    assert sum(a["duplicate"] for a in answers) == len(resend) - 1
    assert sum(a["new"] for a in answers) == 1
    assert sorted(_recorded(ledger_url)) == resend
