"""Benchmark of the GA4 BigQuery source against the local fake BigQuery. Not a test.

The fake (``tests/bigquery_fake``) runs in a thread of this process, holding N purchase
events spread over D daily tables (plus as many page views, which the query skips). In
the same run:
  baseline  the bare ``google-cloud-bigquery`` client running the source's own query
            (same SQL, same parameters, same page size) and iterating the rows: the
            floor for rows/s (the fake's paging, JSON and the client's row decoding)
  pull      ``Ga4BigQuerySource.pull``: the table listing, the dry run, the query and
            every row made into a record (record id, µs timestamp, fields)
and prints rows/s, the ratio, the requests sent, and the dry run's bytes per day of data
(the fake bills a fixed 2,000 bytes per row scanned — a stand-in; real GA4 rows are
larger, and only the columns read are billed).

    .venv/bin/python bench/ga4_source.py --events 20000 --days 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package holds the fake

from google.cloud import bigquery  # noqa: E402  # after sys.path, with the rest
from tests.bigquery_fake import FakeBigQuery, fake_bigquery  # noqa: E402  # likewise
from tests.integration.ga4.conftest import purchase  # noqa: E402  # likewise

from convsync.core.model import SourceState  # noqa: E402 - after sys.path
from convsync.sources.base import SourceContext  # noqa: E402  # after sys.path
from convsync.sources.ga4.config import Ga4BigQuerySourceConfig  # noqa: E402  # likewise
from convsync.sources.ga4.query import EventQuery, build_parameters, build_sql  # noqa: E402
from convsync.sources.ga4.source import Ga4BigQuerySource  # noqa: E402  # likewise

PAGE = 10_000


def fill(fake: FakeBigQuery, events: int, days: int) -> list[str]:
    today = datetime.now(UTC).date()
    suffixes = [(today - timedelta(days=days - d)).strftime("%Y%m%d") for d in range(days)]
    for n in range(events):
        sfx = suffixes[n % days]
        fake.state.add_event("events_" + sfx, **purchase(n % 1440, sfx, user_id=f"u{n}"))
        fake.state.add_event("events_" + sfx, **purchase(n % 1440, sfx, name="page_view"))
    return suffixes


def source(fake: FakeBigQuery, start: str) -> Ga4BigQuerySource:
    data = fake.source_config(start_date=f"{start[:4]}-{start[4:6]}-{start[6:]}")
    cfg = Ga4BigQuerySourceConfig.model_validate(data)
    context = SourceContext(timezone=ZoneInfo("UTC"), base_dir=Path("."), chunk_size=5000)
    src = Ga4BigQuerySource("ga4", cfg, context)
    src.page_size = PAGE
    return src


def baseline(fake: FakeBigQuery, src: Ga4BigQuerySource, suffixes: list[str]) -> tuple[int, float]:
    reader = src.reader()
    query = EventQuery(suffixes[0], suffixes[-1], ())
    sql = build_sql(reader.data_project, reader.dataset_name, query)
    params = build_parameters(query, src.config.events, src.specs)
    client = reader.client
    started = time.perf_counter()
    config = bigquery.QueryJobConfig(query_parameters=params)
    count = sum(1 for _ in client.query(sql, job_config=config).result(page_size=PAGE))
    elapsed = time.perf_counter() - started
    reader.close()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as keys, fake_bigquery(Path(keys)) as fake:
        suffixes = fill(fake, args.events, args.days)
        src = source(fake, suffixes[0])
        base_rows, base_s = baseline(fake, src, suffixes)
        before = len(fake.state.seen)
        started = time.perf_counter()
        records = sum(len(c.records) for c in src.pull(SourceState()))
        pull_s = time.perf_counter() - started
        requests = len(fake.state.seen) - before
    assert base_rows == records == args.events, (base_rows, records)
    base_rate, pull_rate = base_rows / base_s, records / pull_s
    print(
        f"GA4 BigQuery source: {args.events} events in {args.days} daily tables, {PAGE} rows a page"
    )
    print(f"  baseline (bare client)  {base_rate:10.0f} rows/s")
    print(
        f"  pull (records)          {pull_rate:10.0f} rows/s   "
        f"{pull_rate / base_rate:.2f}× baseline"
    )
    print(f"  requests of the pull    {requests} (list, dry run, insert, get, result pages)")
    per_day = src.estimated_bytes / args.days
    print(f"  dry-run estimate        {per_day:,.0f} bytes per day of data (the fake's model)")


if __name__ == "__main__":
    main()
