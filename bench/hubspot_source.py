"""Benchmark of the HubSpot source against the local fake API. Not a test.

The fake (``tests/hubspot_fake``) runs in a thread of this process, holding N changed
won deals, each with one contact. In the same run:
  minimum   the requests HubSpot's limits allow no fewer of: ceil(N/200) search pages,
            ceil(N/1000) association batches, ceil(contacts/100) contact batches
  naive     what a one-call-per-object client would send: the search pages, one
            association read and one contact read per deal
  baseline  the minimum's requests sent by a bare ``requests`` loop with the bodies
            ready-made and nothing parsed beyond JSON: the floor for records/s
  pull      ``HubSpotSource.pull`` with the rate limits lifted (100/s): paging, the
            contacts, mapping to records
  default   the same pull with the default limits (5 searches/s, 10 other requests/s):
            what a real run of a backlog of N deals costs in time
and prints requests per 1,000 deals, records/s and the ratios.

    .venv/bin/python bench/hubspot_source.py --deals 5000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake

from tests.hubspot_fake import FakeHubSpot, fake_hubspot  # noqa: E402  # likewise
from tests.hubspot_fake.state import ASSOCIATIONS, CONTACTS, SEARCH, iso  # noqa: E402

from convsync.core.model import SourceState  # noqa: E402 - after sys.path
from convsync.sources.base import SourceContext  # noqa: E402  # after sys.path
from convsync.sources.hubspot.config import HubSpotSourceConfig  # noqa: E402  # likewise
from convsync.sources.hubspot.source import HubSpotSource  # noqa: E402  # likewise


def fill(fake: FakeHubSpot, deals: int) -> None:
    base = datetime.now(UTC) - timedelta(days=2)
    for n in range(1, deals + 1):
        contact = str(500_000 + n)
        fake.state.contacts[contact] = {
            "email": f"buyer{n}@example.com",
            "phone": f"+1202555{n % 10000:04d}",
            "hs_google_click_id": f"Cj0KCQ{n:08d}",
            "hs_analytics_first_url": f"https://shop.example/?gclid=Cj0KCQ{n:08d}",
        }
        fake.state.add_deal(
            str(n), contacts=[contact], amount=f"{n}.00", deal_currency_code="USD",
            closedate=iso(base + timedelta(seconds=n)),
            hs_lastmodifieddate=iso(base + timedelta(seconds=n, milliseconds=500)),
            hs_is_closed_won="true", dealstage="closedwon", pipeline="default",
        )  # fmt: skip


def source(fake: FakeHubSpot, rate: float | None) -> HubSpotSource:
    limits = (
        {} if rate is None else {"search_requests_per_second": rate, "requests_per_second": rate}
    )
    cfg = HubSpotSourceConfig.model_validate(
        {"type": "hubspot", "token": fake.state.token, "api_base_url": fake.base_url, **limits}
    )
    context = SourceContext(timezone=ZoneInfo("UTC"), base_dir=ROOT, chunk_size=5000)
    return HubSpotSource("crm", cfg, context)


def pull(fake: FakeHubSpot, rate: float | None) -> tuple[int, int, float]:
    """(records, requests, seconds) of one pull from scratch."""
    fake.state.seen.clear()
    src = source(fake, rate)
    started = time.perf_counter()
    records = sum(len(c.records) for c in src.pull(SourceState()))
    return records, len(fake.state.seen), time.perf_counter() - started


def baseline(fake: FakeHubSpot, bodies: list[tuple[str, dict[str, Any]]]) -> float:
    """Seconds for the same requests from a bare loop (the server's own cost)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fake.state.token}"
    started = time.perf_counter()
    for path, body in bodies:
        session.post(fake.base_url + path, json=body, timeout=30).json()
    session.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=5000)
    parser.add_argument("--default-deals", type=int, default=1000)
    args = parser.parse_args()
    n = args.deals
    with fake_hubspot() as fake:
        fill(fake, n)
        records, sent, seconds = pull(fake, 100.0)
        bodies = [(s.path, s.body) for s in fake.state.seen]
        kinds = {
            p: sum(1 for s in fake.state.seen if s.path == p)
            for p in (SEARCH, ASSOCIATIONS, CONTACTS)
        }
        base_seconds = baseline(fake, bodies)
    with fake_hubspot() as fake:
        fill(fake, args.default_deals)
        d_records, d_sent, d_seconds = pull(fake, None)

    minimum = math.ceil(n / 200) + math.ceil(n / 1000) + math.ceil(n / 100)
    naive = math.ceil(n / 200) + 2 * n
    per_k = 1000 / n
    lines = [
        f"HubSpot source, {n} changed won deals with one contact each (fake on 127.0.0.1)",
        f"  requests       {sent:>8}  ({sent * per_k:.1f} per 1,000 deals: search "
        f"{kinds[SEARCH]}, associations {kinds[ASSOCIATIONS]}, contacts {kinds[CONTACTS]})",
        f"  minimum        {minimum:>8}  ({minimum * per_k:.1f} per 1,000)  "
        f"ratio {sent / minimum:.2f}",
        f"  naive          {naive:>8}  ({naive * per_k:.1f} per 1,000)  ratio {sent / naive:.3f}",
        f"  baseline       {n / base_seconds:>8.0f} records/s  (the same requests, a bare loop)",
        f"  pull           {records / seconds:>8.0f} records/s  "
        f"ratio {base_seconds / seconds:.2f} of the baseline (limits lifted)",
        f"  default limits {d_records / d_seconds:>8.0f} records/s  "
        f"({d_records} deals, {d_sent} requests, {d_seconds:.2f} s)",
    ]
    print("\n".join(lines))
    assert records == n, records
    assert d_records == args.default_deals, d_records


if __name__ == "__main__":
    main()
