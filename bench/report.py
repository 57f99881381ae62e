"""Benchmark of `convsync report`'s funnel (the status page's, too) on a large ledger.
Not a test.

Fills a ledger (SQLite, and PostgreSQL when reachable) with N conversions recorded over
the last D days through the ledger's own record step (``Ledger.record_chunk``), a run
per hour with its pulled count: two goals from two sources (70 % purchases, 30 % leads),
three destinations, so 3 deliveries per conversion, the skipped ones (google 30 %,
metrica 40 %, vk 75 %) planned skipped as the goal rules plan them. A day after each
hour, its deliveries move to a realistic mix of states (one UPDATE per destination:
mostly delivered, matched and unmatched, some rejected, deferred, uncertain; the last
day stays mostly pending or sending) and 1 % of its purchases are retracted through
the record step; an upload record per Metrica batch. Then, warm, each round times the
median of ``--repeat`` calls of:

  baseline  ``SELECT count(*) FROM deliveries`` (every delivery of the ledger counted
            by the database itself: the floor of any report over them)
  funnel    ``Ledger.funnel`` for the last day, 7 and 30 days, and the three together
  page      the status page, ``GET /`` through its WSGI app: the health, the three
            funnels, 30 days of volume per goal (and the 4 weeks before, to judge
            them), 30 days of match rates, the recent runs and failures, rendered

and prints the seconds of each round, their median against the baseline's, and the
spread of the rounds. Seeding 1,000,000 conversions takes minutes (the record step at
that size); ``--sqlite-file`` and ``--pg-schema`` keep a seeded ledger for the next run.

    .venv/bin/python bench/report.py --conversions 1000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

PG_URL = os.environ.get("CONVSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DESTINATIONS = ("google", "metrica", "vk")
#: per destination: the share (of 1000) of conversions planned as skipped, and its code
SKIPPED = {
    "google": (300, "no_identifier"),
    "metrica": (400, "no_identifier"),
    "vk": (750, "no_identifier"),
}
#: per destination, the states of deliveries older than a day: (up to this of 1000, state, code)
SETTLED = {
    "google": [
        (880, "delivered", None),
        (920, "rejected", "INVALID_GCLID"),
        (950, "rejected", "expired_event"),
        (970, "deferred", "RESOURCE_EXHAUSTED"),
        (985, "uncertain", "upload_unclear"),
        (1000, "pending", None),
    ],
    "metrica": [
        (600, "matched", None),
        (850, "unmatched", "linkage_failure"),
        (920, "delivered", None),
        (960, "rejected", "outside_matching_window"),
        (980, "uncertain", "upload_unclear"),
        (1000, "deferred", "quota"),
    ],
    "vk": [
        (950, "delivered", None),
        (980, "rejected", "event_too_old"),
        (1000, "uncertain", "no_receipt"),
    ],
}
#: the states of the last day's deliveries
FRESH = [(500, "pending", None), (550, "sending", None), (1000, "delivered", None)]
#: the token a seeded ledger keeps the moment its data is relative to in
STAMP = "bench-report"
WINDOWS = (("1d", timedelta(days=1)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))


def seed(url: str, n: int, days: int, now: datetime) -> None:
    """Record ``n`` conversions over ``days`` through the ledger, a chunk per hour; a day
    after each chunk, settle its deliveries and record adjustments of 1 % of its purchases."""
    from convsync.store.ledger import Ledger

    chunks = days * 24
    per_chunk = -(-n // chunks)
    start = now - timedelta(days=days)
    from convsync.store.engine import create, parse_url

    t0 = time.perf_counter()
    # the ledger's own settings (SQLite: no sync to disk per commit)
    opened = create(parse_url(url), read_only=False)
    engine = opened.engine
    #: the last delivery id of each chunk: a chunk's deliveries are an id range
    last_ids = [0]
    with Ledger.open(url) as ledger:
        for chunk in range(chunks):
            at = start + timedelta(hours=chunk, minutes=30)
            numbers = range(chunk * per_chunk, min(n, (chunk + 1) * per_chunk))
            record_hour(ledger, f"run-{chunk}", numbers, at)
            if chunk >= 24:
                with engine.begin() as connection:
                    settle(connection, last_ids[chunk - 24], last_ids[chunk - 23], SETTLED)
                adjust(ledger, f"run-{chunk}", numbers.start - 24 * per_chunk, per_chunk, at)
            with engine.connect() as connection:
                last_ids.append(
                    connection.exec_driver_sql("SELECT max(id) FROM deliveries").scalar_one()
                )
            if chunk % 120 == 0:
                print(
                    f"  recorded {numbers.start:,} conversions ({time.perf_counter() - t0:.0f}s)",
                    file=sys.stderr,
                )
    with engine.begin() as connection:
        fresh = dict.fromkeys(DESTINATIONS, FRESH)
        settle(connection, last_ids[chunks - 24], last_ids[chunks], fresh)
        add_uploads(connection, start, chunks)
    if engine.dialect.name == "postgresql":
        # what autovacuum does to a ledger that has settled down
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    opened.dispose()
    print(f"  seeded in {time.perf_counter() - t0:.0f}s", file=sys.stderr)


def record_hour(ledger: Any, run_id: str, numbers: range, at: datetime) -> None:
    """One run recording conversions ``numbers`` (70 % purchases of ``shop``, 30 % leads of
    ``crm``) with their deliveries as the goal rules plan them."""
    from convsync.core.model import Conversion, DeliveryState, Identifiers, PlannedDelivery

    ledger.start_run(run_id=run_id, trigger="schedule", started_at=at)
    pulled = {}
    for source, goal, share in (("shop", "purchase", range(7)), ("crm", "lead", range(7, 10))):
        made = [
            Conversion(
                key=f"c{i}",
                source=source,
                record_id=str(i),
                goal=goal,
                order_id=f"A-{i}",
                occurred_at=at - timedelta(minutes=10),
                value=None,
                currency=None,
                ids=Identifiers(gclid=f"EAIaIQobChMI{i:012d}"),
            )
            for i in numbers
            if i % 10 in share
        ]
        planned = [
            PlannedDelivery(c.key, goal, d)
            if _spread(int(c.record_id), d) >= SKIPPED[d][0]
            else PlannedDelivery(c.key, goal, d, DeliveryState.SKIPPED, SKIPPED[d][1], "no id")
            for c in made
            for d in DESTINATIONS
        ]
        ledger.record_chunk(
            run_id=run_id,
            source=source,
            conversions=made,
            deliveries=planned,
            rejections=[],
            cursor=None,
            files_done=[],
            now=at,
        )
        pulled[source] = {"pulled": len(made) * 3 // 2}  # a third of the records map to none
    summary = {"sources": pulled}
    ledger.finish_run(
        run_id=run_id, status="ok", finished_at=at + timedelta(minutes=1), summary=summary
    )


def _spread(i: int, destination: str) -> int:
    """A number in 0..999 that spreads conversion ``i`` evenly, differently per destination."""
    return (i * 7919 + DESTINATIONS.index(destination) * 104729) % 1000


def adjust(ledger: Any, run_id: str, first: int, count: int, at: datetime) -> None:
    """Retractions of 1 % of the purchases among conversions ``first``… (``count``)."""
    from convsync.core.model import AdjustmentCandidate, AdjustmentKind

    candidates = [
        AdjustmentCandidate(f"c{i}", "purchase", AdjustmentKind.RETRACTION, ("google", "metrica"))
        for i in range(first, first + count)
        if i % 100 == 0
    ]
    ledger.record_chunk(
        run_id=run_id,
        source="shop",
        conversions=[],
        deliveries=[],
        rejections=[],
        cursor=None,
        files_done=[],
        now=at,
        adjustments=candidates,
    )


def _cases(buckets: list[tuple[int, str, str | None]], column: str) -> str:
    parts = []
    for upper, state, code in buckets:
        value = {"state": f"'{state}'", "code": f"'{code}'" if code else "NULL"}[column]
        parts.append(f"WHEN (id * 2654435761) % 1000 < {upper} THEN {value}")
    return "CASE " + " ".join(parts) + " END"


Buckets = dict[str, list[tuple[int, str, str | None]]]


def settle(connection: Any, after_id: int, last_id: int, buckets: Buckets) -> None:
    """Move the pending deliveries of ids ``after_id``+1…``last_id`` to states drawn from
    ``buckets`` (per destination: up to this share of 1000, state, code)."""
    for destination, chosen in buckets.items():
        connection.execute(
            sa.text(
                f"UPDATE deliveries SET state = {_cases(chosen, 'state')}, "
                f"code = {_cases(chosen, 'code')} "
                "WHERE id > :a AND id <= :b AND destination = :d AND state = 'pending'"
            ),
            {"a": after_id, "b": last_id, "d": destination},
        )


def add_uploads(connection: Any, start: datetime, chunks: int) -> None:
    """One Metrica upload record per chunk, final with its verdict."""
    from convsync.store.schema import uploads

    connection.execute(
        uploads.insert(),
        [
            {
                "destination": "metrica",
                "batch_id": f"b{chunk}",
                "external_id": str(chunk),
                "status": "LINKAGE_FAILURE",
                "rows": 500,
                "details": {"linked_quantity": 400, "verdict": "matched"},
                "final": True,
                "run_id": f"run-{chunk}",
                "created_at": start + timedelta(hours=chunk, minutes=31),
                "updated_at": start + timedelta(hours=chunk, minutes=50),
            }
            for chunk in range(chunks)
        ],
    )


def reused_now(url: str) -> datetime | None:
    """The moment a kept ledger was seeded relative to (None: not seeded yet); opening it
    upgrades it to this code's schema, timed (what the upgrade costs)."""
    from convsync.store.ledger import Ledger

    t0 = time.perf_counter()
    with Ledger.open(url) as ledger:
        kept = ledger.load_token(STAMP)
    if kept is None:
        return None
    print(f"  reused, opened (and upgraded) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return datetime.fromisoformat(kept["now"])


def prepared(url: str, args: argparse.Namespace, now: datetime) -> datetime:
    """The ledger at ``url`` seeded (or reused): the moment its data is relative to."""
    from convsync.store.ledger import Ledger

    kept = reused_now(url)
    if kept is not None:
        return kept
    seed(url, args.conversions, args.days, now)
    with Ledger.open(url) as ledger:
        ledger.save_token(STAMP, {"now": now.isoformat()}, now)
    return now


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    call()  # warm: the status page is read again and again
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(url: str, repeat: int, now: datetime) -> dict[str, float]:
    """One round: the median seconds of each query."""
    from convsync.store.ledger import Ledger

    engine = sa.create_engine(url)

    def baseline() -> object:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM deliveries").scalar_one()

    results = {"baseline": median_seconds(baseline, repeat)}
    engine.dispose()
    with Ledger.open(url, read_only=True) as ledger:
        for name, span in WINDOWS:
            funnel = partial(ledger.funnel, now - span)
            results[f"funnel {name}"] = median_seconds(funnel, repeat)

        def status_page() -> object:
            return [ledger.funnel(now - span) for _, span in WINDOWS]

        results["1d+7d+30d"] = median_seconds(status_page, repeat)
        results["page"] = median_seconds(page_client(ledger, now), repeat)
    return results


#: the seeded goals and destinations as a config (the status page reads their names)
CONFIG = """\
timezone: Europe/Moscow
sources:
  shop: {type: csv, path: "orders/*.csv", id: order_id, time: created_at, fields: {gclid: gclid}}
  crm: {type: csv, path: "leads/*.csv", id: lead_id, time: created_at, fields: {gclid: gclid}}
destinations:
  google:
    type: google_ads
    customer_id: "123-456-7890"
    auth: {client_id: cid, client_secret: "${S}", refresh_token: "${S}"}
  metrica: {type: yandex_metrica, counter_id: 12345678, token: "${S}"}
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  purchase:
    source: shop
    send: {google: {conversion_action: "1"}, metrica: {target: p}, vk: {goal: p}}
  lead:
    source: crm
    send: {google: {conversion_action: "2"}, metrica: {target: l}, vk: {goal: l}}
"""


def page_client(ledger: Any, now: datetime) -> Callable[[], object]:
    """A GET of the status page, as ``convsync run`` serves it, as of ``now``."""
    from werkzeug.test import Client

    from convsync.config.loader import parse_config
    from convsync.service.healthz import assess
    from convsync.service.statuspage.data import gather
    from convsync.service.statuspage.endpoint import HealthApp
    from convsync.service.statuspage.render import render

    app = parse_config(CONFIG, Path("bench.yaml"), {"S": "bench-secret"}).app

    def status() -> dict[str, Any]:
        return assess(app, ledger, now, running=True)

    def page(health: Any, lang: Any) -> str:
        return render(gather(app, ledger, health, now), lang)

    client = Client(HealthApp(status, page=page))

    def get() -> object:
        response = client.get("/")
        assert response.status_code == 200, response.text
        return response.text

    return get


def report(database: str, url: str, rounds: list[dict[str, float]]) -> None:
    """Each query's seconds per round, their median against the baseline's, and the
    spread of the rounds."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM deliveries").scalar_one()
    engine.dispose()
    print(f"\n{database}: {count:,} deliveries; seconds per round (each the median of the calls)")
    rounds_header = f"{'rounds':>{8 * len(rounds)}}"
    print(f"{'query':<12} {rounds_header} {'median':>8} {'× baseline':>11} {'spread':>7}")
    base = statistics.median(r["baseline"] for r in rounds)
    for name in rounds[0]:
        times = [r[name] for r in rounds]
        mid = statistics.median(times)
        shown = "".join(f"{t:>8.3f}" for t in times)
        spread = (max(times) - min(times)) / mid
        print(f"{name:<12} {shown} {mid:>8.3f} {mid / base:>10.1f}x {spread:>6.0%}")


@contextmanager
def pg_schema(name: str | None) -> Iterator[str | None]:
    """A schema on the PostgreSQL server (None when it is unreachable): ``name``, made if
    missing and kept, or a fresh one dropped after."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    schema = name or f"bench_report_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable ({str(exc.orig).strip().splitlines()[0]}): skipped")
        admin.dispose()
        yield None
        return
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        if name is None:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5, help="calls per query and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--sqlite-file", type=Path, help="keep the SQLite ledger here; one seeded before is reused"
    )
    parser.add_argument(
        "--pg-schema", help="keep the PostgreSQL ledger in this schema; one seeded before is reused"
    )
    args = parser.parse_args()
    from convsync.core.logging import configure_logging

    configure_logging("json", "ERROR", stream=open(os.devnull, "w"))  # noqa: SIM115 (lives for the process)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    print(f"{args.conversions:,} conversions over {args.days} days, 3 destinations")
    if "sqlite" in args.databases:
        with tempfile.TemporaryDirectory(prefix="convsync-bench-") as tmp:
            url = f"sqlite:///{args.sqlite_file or Path(tmp) / 'ledger.db'}"
            seeded = prepared(url, args, now)
            report("SQLite", url, [measure(url, args.repeat, seeded) for _ in range(args.rounds)])
    if "postgresql" in args.databases:
        with pg_schema(args.pg_schema) as url:
            if url is not None:
                seeded = prepared(url, args, now)
                rounds = [measure(url, args.repeat, seeded) for _ in range(args.rounds)]
                report("PostgreSQL", url, rounds)


if __name__ == "__main__":
    main()
