"""Benchmark of the sql source (SqlSource.pull) on a SQLite file. Not a test.

Writes N synthetic orders into a SQLite file (and, with --pg, into a schema of the
local PostgreSQL server), then measures, each phase in its own process so peak RSS is
its own:
  baseline  a bare sqlite3 cursor iterating the same ordered query, touching every
            column of every row (the floor of any reader of that query); with --pg, a
            psycopg server-side cursor doing the same
  pull      SqlSource.pull over the same rows: records and chunks, nothing else
  dry-run   `convsync sync --once --dry-run` of a config with that source (pull, map,
            plan) — only with --dry-run, it takes a while for 1,000,000 rows
and prints records/s, the time ratio against the baseline and peak RSS.

    .venv/bin/python bench/sql_source.py --records 1000000 [--pg] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

QUERY = "SELECT * FROM orders WHERE updated_at >= :cursor"
ORDERED = (
    "SELECT * FROM (SELECT * FROM orders WHERE updated_at >= ?) AS q ORDER BY updated_at, order_id"
)
PG_URL = os.environ.get("CONVSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CONFIG = """\
timezone: Europe/Moscow
sources:
  shop:
    type: sql
    url: ${{SHOP_DB}}
    query: "{query}"
    id: order_id
    time: created_at
    cursor: updated_at
    start_date: 2020-01-01
    fields: {{status: status, value: total, email: email, phone: phone, gclid: gclid,
             vk_click_id: rb_clickid}}
destinations:
  vk: {{type: vk_ads, pixel_id: 3456789, tracker_url: "http://127.0.0.1:9/tracker"}}
goals:
  purchase:
    source: shop
    when: {{status: paid}}
    value: value
    currency: RUB
    send:
      vk: {{goal: purchase}}
"""


def rows(n: int) -> object:
    start = datetime(2024, 1, 1)
    for i in range(1, n + 1):
        at = (start + timedelta(seconds=i)).isoformat(sep=" ")
        yield (
            i,
            at,
            at,
            "paid" if i % 3 else "new",
            f"{i % 9000 + 100}.50",
            f"buyer{i}@example.com",
            f"+7916{i:07d}",
            f"Cj0KCQ{i:012d}",
            f"rb{i}",
        )


def make_sqlite(path: Path, n: int) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, created_at TEXT, updated_at TEXT, "
        "status TEXT, total TEXT, email TEXT, phone TEXT, gclid TEXT, rb_clickid TEXT)"
    )
    db.execute("CREATE INDEX orders_updated ON orders (updated_at, order_id)")
    db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?)", rows(n))
    db.commit()
    db.close()


def make_pg(n: int) -> tuple[str, str]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        c.exec_driver_sql(
            f'CREATE TABLE "{schema}".orders (order_id bigint PRIMARY KEY, created_at text, '
            "updated_at timestamp, status text, total text, email text, phone text, "
            "gclid text, rb_clickid text)"
        )
        raw = c.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cols = (
                "order_id, created_at, updated_at, status, total, email, phone, gclid, rb_clickid"
            )
            with cur.copy(f'COPY "{schema}".orders ({cols}) FROM STDIN') as copy:
                for r in rows(n):
                    copy.write_row(r)
        c.exec_driver_sql(f'CREATE INDEX ON "{schema}".orders (updated_at, order_id)')
        c.exec_driver_sql(f'ANALYZE "{schema}".orders')
    engine.dispose()
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_pg(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


# --- phases (each run in a child process) -----------------------------------------------


def phase_baseline(url: str) -> int:
    n = 0
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        for row in db.execute(ORDERED, ("2020-01-01 00:00:00",)):
            n += len(row) > 0
        db.close()
        return n
    import psycopg
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    dsn = u.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn, conn.cursor(name="bench") as cur:
        cur.itersize = 2000
        cur.execute(ORDERED.replace("?", "%s"), (datetime(2020, 1, 1),))
        for row in cur:
            n += len(row) > 0
    return n


def phase_pull(url: str) -> int:
    from pydantic import SecretStr

    from convsync.core.model import SourceState
    from convsync.sources.base import SourceContext
    from convsync.sources.sql import SqlSource
    from convsync.sources.sql_config import SqlSourceConfig

    config = SqlSourceConfig(
        type="sql",
        url=SecretStr(url),
        query=QUERY,
        id="order_id",
        time="created_at",
        cursor="updated_at",
        start_date=datetime(2020, 1, 1),
        fields={
            "status": "status",
            "value": "total",
            "email": "email",
            "phone": "phone",
            "gclid": "gclid",
            "vk_click_id": "rb_clickid",
        },
    )
    ctx = SourceContext(ZoneInfo("Europe/Moscow"), Path.cwd())
    n = 0
    for chunk in SqlSource("shop", config, ctx).pull(SourceState()):
        n += len(chunk.records)
    return n


def child(phase: str, url: str) -> None:
    started = time.perf_counter()
    n = phase_baseline(url) if phase == "baseline" else phase_pull(url)
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "records": n, "rss_mb": rss_mb}))


def run_child(phase: str, url: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", phase, "--url", url],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_dry(workdir: Path, url: str) -> dict[str, float]:
    (workdir / "convsync.yaml").write_text(CONFIG.format(query=QUERY), encoding="utf-8")
    exe = Path(sys.executable).with_name("convsync")
    started = time.perf_counter()
    cmd = [str(exe), "--config", "convsync.yaml", "--database-url", "sqlite:///ledger.db"]
    subprocess.run(
        [*cmd, "sync", "--once", "--dry-run"],
        cwd=workdir,
        env={**os.environ, "SHOP_DB": url, "CONVSYNC_LOG_LEVEL": "WARNING"},
        check=False,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "records": -1, "rss_mb": rss_mb}


def report(title: str, results: dict[str, dict[str, float]], n: int) -> None:
    base = results["baseline"]["seconds"]
    print(f"\n{title}: {n:,} rows")
    print(f"{'phase':<10} {'seconds':>9} {'records/s':>11} {'vs base':>9} {'peak RSS':>9}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['seconds']:>9.2f} {n / r['seconds']:>11,.0f} "
            f"{r['seconds'] / base:>8.2f}x {r['rss_mb']:>7.0f}MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help="also PostgreSQL (local server)")
    parser.add_argument("--dry-run", action="store_true", help="also a whole dry-run sync")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url)
        return
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        made = time.perf_counter()
        make_sqlite(workdir / "shop.db", n)
        print(f"wrote {n:,} rows to SQLite in {time.perf_counter() - made:.1f}s")
        url = f"sqlite:///{workdir / 'shop.db'}"
        results = {phase: run_child(phase, url) for phase in ("baseline", "pull")}
        assert results["pull"]["records"] == n, results
        if args.dry_run:
            results["dry-run"] = run_dry(workdir, url)
        report("SQLite", results, n)
    if args.pg:
        schema, pg = make_pg(n)
        try:
            results = {phase: run_child(phase, pg) for phase in ("baseline", "pull")}
            assert results["pull"]["records"] == n, results
            report("PostgreSQL", results, n)
        finally:
            drop_pg(schema)


if __name__ == "__main__":
    main()
