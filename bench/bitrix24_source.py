"""Benchmark of the Bitrix24 source against the local fake portal. Not a test.

The fake (``tests/bitrix24_fake``) runs in a process of its own, so it does not share
this process's interpreter lock. For N won deals (each with click ids and a contact with
e-mail and phone), in the same run:
  baseline  the fewest requests the API allows, ready-made, through one requests.Session:
            every history page (keyset, 50 rows; one more, empty, when N is a multiple
            of 50) and, per 2,500 deals, one batch of deal lists and one of contacts —
            no pacing, no parsing beyond json(): the floor
  source    ``Bitrix24Source.pull`` from scratch with the rate limit lifted (100/s, bucket 1,000),
            building every record
and prints requests per 1,000 deals for both, records/s and the ratio to the baseline,
and what the default limit (2 requests/s, bucket 50) makes of the source's requests.

    .venv/bin/python bench/bitrix24_source.py --deals 10000
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake

PAGE, BATCH = 50, 50


def serve_fake(deals: int) -> None:
    """The child: a seeded fake on a free port; answers "hits" and "reset" until stdin closes."""
    from tests.bitrix24_fake import fake_bitrix24
    from tests.integration.bitrix24.conftest import seed

    with fake_bitrix24() as fake:
        seed(fake.portal, deals)
        print(json.dumps({"webhook_url": fake.webhook_url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "hits":
                print(json.dumps(len(fake.portal.hits)), flush=True)
            elif line.strip() == "reset":
                fake.portal.hits.clear()
                print("{}", flush=True)


class Fake:
    def __init__(self, deals: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(deals)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        self.webhook_url: str = json.loads(self.stdout.readline())["webhook_url"]

    def ask(self, command: str) -> Any:
        self.stdin.write(command + "\n")
        self.stdin.flush()
        return json.loads(self.stdout.readline())

    def close(self) -> None:
        self.stdin.close()
        self.process.wait(timeout=10)


def baseline(url: str, deals: int) -> tuple[int, float]:
    """The minimum: history pages, then one deal batch and one contact batch per 2,500."""
    import requests

    from convsync.sources.bitrix24.client import php_query

    session = requests.Session()
    started = time.perf_counter()
    requests_made = 0
    after, owners = 0, []
    while True:
        body = session.post(
            f"{url}crm.stagehistory.list.json",
            json={
                "entityTypeId": 2,
                "order": {"ID": "ASC"},
                "filter": {"STAGE_SEMANTIC_ID": "S", ">ID": after},
                "select": ["ID", "OWNER_ID", "CREATED_TIME"],
                "start": -1,
            },
            timeout=30,
        ).json()
        requests_made += 1
        items = body["result"]["items"]
        owners += [row["OWNER_ID"] for row in items]
        if len(items) < PAGE:
            break
        after = int(items[-1]["ID"])
    for group in range(0, len(owners), PAGE * BATCH):
        ids = owners[group : group + PAGE * BATCH]
        for method, select in (
            ("crm.deal.list", ["ID", "CONTACT_ID"]),
            ("crm.contact.list", ["ID", "EMAIL", "PHONE"]),
        ):
            keys = ids if method == "crm.deal.list" else [str(5000 + int(i)) for i in ids]
            cmd = {
                f"c{i}": f"{method}?"
                + php_query({"filter": {"@ID": keys[i : i + PAGE]}, "select": select, "start": -1})
                for i in range(0, len(keys), PAGE)
            }
            session.post(f"{url}batch.json", json={"halt": 1, "cmd": cmd}, timeout=30).json()
            requests_made += 1
    elapsed = time.perf_counter() - started
    session.close()
    return requests_made, elapsed


def source_pull(url: str) -> tuple[int, float]:
    from tests.integration.bitrix24.conftest import FIELDS

    from convsync.core.model import SourceState
    from convsync.sources.base import SourceContext
    from convsync.sources.bitrix24.config import Bitrix24SourceConfig
    from convsync.sources.bitrix24.source import Bitrix24Source

    config = Bitrix24SourceConfig.model_validate(
        {
            "type": "bitrix24",
            "webhook_url": url,
            "fields": FIELDS,
            "rate_limit": {"per_second": 100, "burst": 1000},
        }
    )
    context = SourceContext(timezone=ZoneInfo("Europe/Moscow"), base_dir=ROOT)
    source = Bitrix24Source("crm", config, context)
    started = time.perf_counter()
    records = sum(len(chunk.records) for chunk in source.pull(SourceState()))
    return records, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve_fake(args.serve)
        return
    n = args.deals
    fake = Fake(n)
    try:
        fake.ask("reset")
        base_requests, base_s = baseline(fake.webhook_url, n)
        fake.ask("reset")
        records, pull_s = source_pull(fake.webhook_url)
        pull_requests = fake.ask("hits")
    finally:
        fake.close()
    assert records == n, f"pulled {records} of {n}"
    minimum = (n // PAGE + 1) + 2 * math.ceil(n / (PAGE * BATCH))
    per_k = 1000 / n
    at_limit = max(0.0, (pull_requests - 50) / 2.0)
    print(f"won deals: {n} (each with a contact: e-mail and phone mapped)")
    print(f"minimum requests (history pages + deal and contact batches): {minimum}")
    print(
        f"baseline  {base_requests:6d} requests ({base_requests * per_k:5.1f} per 1,000)  "
        f"{n / base_s:9.0f} records/s"
    )
    print(
        f"source    {pull_requests:6d} requests ({pull_requests * per_k:5.1f} per 1,000)  "
        f"{n / pull_s:9.0f} records/s   ratio to baseline: {(n / pull_s) / (n / base_s):.2f}"
    )
    print(
        f"at the default limit (2 requests/s after a bucket of 50) the source's requests "
        f"take about {at_limit:.0f} s: {n / max(at_limit, pull_s):.0f} records/s"
    )


if __name__ == "__main__":
    main()
