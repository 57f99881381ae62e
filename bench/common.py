"""What the destination benches share: a bench order as a mapped conversion, the CSV of
bench orders, a fake platform in a process of its own, and one timed sync run. Imported
by the bench scripts (their folder is on ``sys.path``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def order_conversion(i: int, occurred_at: datetime, ids: Any) -> Any:
    """Bench order ``A-<i>`` of the ``purchase`` goal, without value, with ``ids``."""
    from convsync.core.model import Conversion

    return Conversion(
        key=str(i),
        source="shop",
        record_id=str(i),
        goal="purchase",
        order_id=f"A-{i}",
        occurred_at=occurred_at,
        value=None,
        currency=None,
        ids=ids,
    )


def timed_sync(
    config: Path, env: dict[str, str], ledger_file: Path, destination: str
) -> tuple[float, dict[str, Any]]:
    """One whole sync run on a SQLite ledger: (seconds, the destination's summary)."""
    from convsync.config.loader import load_config
    from convsync.core.logging import configure_logging
    from convsync.store.ledger import Ledger
    from convsync.sync.pipeline import SyncPipeline
    from convsync.sync.summary import SyncOptions

    configure_logging("json", "WARNING")
    loaded = load_config(config, env=env)
    with Ledger.open(f"sqlite:///{ledger_file}") as ledger:
        t0 = time.perf_counter()
        summary = SyncPipeline(loaded, ledger).run(SyncOptions())
        seconds = time.perf_counter() - t0
    return seconds, summary.destinations[destination]


def write_orders(
    path: Path,
    n: int,
    now: datetime,
    *,
    column: str = "gclid",
    value: str = "EAIaIQobChMI{i:012d}",
    days: int = 5,
) -> None:
    """``n`` paid orders of the last ``days``, each with ``column`` = ``value`` (a format
    of the order's number ``i``)."""
    start = now - timedelta(days=days)
    with path.open("w", encoding="utf-8") as out:
        out.write(f"order_id,created_at,status,total,{column}\n")
        for i in range(n):
            at = (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"A-{i},{at},paid,1500.50,{value.format(i=i)}\n")


Ask = Callable[[str], dict[str, Any]]


@contextmanager
def fake_process(script: str, *args: str) -> Iterator[tuple[dict[str, Any], Ask]]:
    """``script --serve-fake ARGS…`` in a process of its own (so the fake does not share
    the bench's interpreter lock): its first line (a JSON object), and ``ask(command)``,
    which sends a command line and reads the JSON answer."""
    child = subprocess.Popen(
        [sys.executable, script, "--serve-fake", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None

    def ask(command: str) -> dict[str, Any]:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(command + "\n")
        child.stdin.flush()
        return dict(json.loads(child.stdout.readline()))

    try:
        yield json.loads(child.stdout.readline()), ask
    finally:
        child.stdin.close()
        child.wait(30)


def serve(info: dict[str, Any], answer: Callable[[str], dict[str, Any]]) -> None:
    """The fake process's side: print ``info``, then answer each command line on stdin
    with ``answer(command)`` as JSON, until stdin closes."""
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        print(json.dumps(answer(line.strip())), flush=True)


def google_env(info: dict[str, Any]) -> dict[str, str]:
    """The environment of the benches' Google configs: the fake's endpoint and OAuth."""
    auth = info["auth"]
    return {
        "G_ENDPOINT": info["endpoint"],
        "G_ID": auth["client_id"],
        "G_SECRET": auth["client_secret"],
        "G_REFRESH": auth["refresh_token"],
        "G_TOKEN_URI": auth["token_uri"],
    }


def google_config(api: str) -> str:
    """The Google benches' config: one CSV of paid orders to one Google Ads account."""
    return GOOGLE_CONFIG.replace("${API}", api)


GOOGLE_CONFIG = """\
timezone: UTC
sources:
  shop: {type: csv, path: orders.csv, id: order_id, time: created_at,
         fields: {status: status, value: total, gclid: gclid}}
destinations:
  google:
    type: google_ads
    api: ${API}
    customer_id: "1234567890"
    endpoint: "${G_ENDPOINT}"
    auth: {client_id: "${G_ID}", client_secret: "${G_SECRET}", refresh_token: "${G_REFRESH}",
           token_uri: "${G_TOKEN_URI}"}
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    send: {google: {conversion_action: 987654321}}
"""
