"""Benchmark of the amoCRM source against the local fake account. Not a test.

For N leads won in the window (each with its own contact; gclid, a VK click id,
e-mail and phone mapped), in the same run:
  baseline  the API's minimum requests for them, URLs ready-made, fetched with one plain
            requests.Session and JSON-decoded, nothing else: ceil(N/100) events pages
            (+1 answering 204 when N is a multiple of 100), ceil(N/250) lead batches,
            ceil(N/250) contact batches — the floor
  source    ``AmoCrmSource.pull``: pipeline check, the field list, the events, the lead
            and contact batches, mapping to records; pacing lifted to 2000/s
and prints the requests by kind, requests per 1,000 won leads, records/s and the ratio
to the baseline; and what amoCRM's 7 requests/s makes of it (the pacing floor).

    .venv/bin/python bench/amocrm_source.py --leads 1000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake

from tests.amocrm_fake import FakeAmo, fake_amo  # noqa: E402
from tests.amocrm_fake.server import TOKEN  # noqa: E402

from convsync.core.model import SourceState  # noqa: E402 - after sys.path
from convsync.sources.amocrm.config import AmoCrmSourceConfig  # noqa: E402 - after sys.path
from convsync.sources.amocrm.source import AmoCrmSource  # noqa: E402
from convsync.sources.base import SourceContext  # noqa: E402

FIELDS = {
    "gclid": "lead.GCLID",
    "vk_click_id": "lead.505",
    "email": "contact.email",
    "phone": "contact.phone",
}


def seed(fake: FakeAmo, n: int) -> None:
    base = int(time.time()) - 2 * n - 60
    for i in range(n):
        fake.add_won_lead(
            100_000 + i, base + 2 * i, price=1000 + i, gclid=f"Cj0KCQ{i}", vk_click=f"rb{i}",
            email=f"buyer{i}@example.ru", phone=f"+7912{i:07d}", contact_id=500_000 + i,
        )  # fmt: skip


def baseline(fake: FakeAmo, n: int) -> tuple[int, float]:
    """The minimum requests, plain: (requests, seconds)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    base = fake.base_url
    urls = []
    pages = n // 100 + 1 if n % 100 == 0 else math.ceil(n / 100)
    urls += [f"{base}/api/v4/events?limit=100&page={p}" for p in range(1, pages + 1)]
    for start in range(0, n, 250):
        ids = "&".join(f"filter[id][]={100_000 + i}" for i in range(start, min(n, start + 250)))
        urls.append(f"{base}/api/v4/leads?{ids}&limit=250&with=contacts")
        cids = "&".join(f"filter[id][]={500_000 + i}" for i in range(start, min(n, start + 250)))
        urls.append(f"{base}/api/v4/contacts?{cids}&limit=250")
    began = time.perf_counter()
    for url in urls:
        response = session.get(url, timeout=30)
        if response.status_code == 200:
            response.json()
    return len(urls), time.perf_counter() - began


def source_pull(fake: FakeAmo) -> tuple[int, float]:
    config = AmoCrmSourceConfig.model_validate(fake.source_config(fields=FIELDS))
    config = config.model_copy(update={"requests_per_second": 2000.0})
    context = SourceContext(timezone=ZoneInfo("Europe/Moscow"), base_dir=ROOT)
    source = AmoCrmSource("crm", config, context)
    began = time.perf_counter()
    records = sum(len(chunk.records) for chunk in source.pull(SourceState()))
    return records, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    args = parser.parse_args()
    n = args.leads
    with fake_amo() as fake:
        seed(fake, n)
        base_requests, base_seconds = baseline(fake, n)
        fake.requests.clear()
        records, seconds = source_pull(fake)
        kinds = Counter(seen.path for seen in fake.requests)
    assert records == n, records
    sent = sum(kinds.values())
    per_lead = kinds["/api/v4/events"] + kinds["/api/v4/leads"] + kinds["/api/v4/contacts"]
    print(f"amoCRM source, {n} won leads (one contact each), fake on 127.0.0.1")
    for path, count in sorted(kinds.items()):
        print(f"  {path:40} {count:6d}")
    print(f"  requests:     {sent} in all; {per_lead} events+leads+contacts "
          f"(baseline minimum {base_requests}); per 1,000 won leads: "
          f"{per_lead * 1000 / n:.1f} + {sent - per_lead} per run")  # fmt: skip
    base_rate, rate = n / base_seconds, records / seconds
    print(f"  baseline:     {base_rate:10.0f} leads/s  ({base_seconds:.3f} s, plain GETs + JSON)")
    print(f"  source:       {rate:10.0f} records/s ({seconds:.3f} s)  ratio {rate / base_rate:.2f}")
    print(f"  at amoCRM's 7 requests/s: {sent / 7:.1f} s of pacing for the run "
          f"({n / (sent / 7):.0f} leads/s)")  # fmt: skip


if __name__ == "__main__":
    main()
