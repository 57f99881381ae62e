"""``GET /metrics`` of a real health server after real scheduled runs: the run counters,
the ledger's gauges (on SQLite and PostgreSQL), the webhook totals, and nothing of a
record's data in a label."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from convsync.core.model import OutboundRow, RowOutcome
from convsync.service.metrics import build_registry, count_webhooks
from convsync.service.statuspage.endpoint import HealthApp, HealthEndpoint
from convsync.store.engine import parse_url
from convsync.store.ledger import Ledger
from convsync.store.schema import deliveries
from tests.clock import Clock
from tests.integration.conftest import write_orders
from tests.integration.test_pipeline import crash

from .conftest import Served
from .scrape import scrape

#: three delivered, one refused in pre-flight (``reject-me``), one without a click id
#: (skipped), one whose total is not a number (a rejected record), one not paid
ORDERS = [
    "A-1,2026-11-20 10:01:00,paid,100,RUB,buyer@example.com,+7 916 123-45-67,click1,",
    "A-2,2026-11-20 10:02:00,paid,100,RUB,,,click2,",
    "A-3,2026-11-20 10:03:00,paid,100,RUB,,,click3,",
    "A-4,2026-11-20 10:04:00,paid,100,RUB,,,reject-me,",
    "A-5,2026-11-20 10:05:00,paid,100,RUB,other@example.com,,,",
    "A-6,2026-11-20 10:06:00,paid,lots,RUB,,,click6,",
    "B-1,2026-11-20 10:07:00,new,5,RUB,,,click7,",
]


def paid(n: int) -> list[str]:
    return [f"A-{i},2026-11-20 10:{i:02d}:00,paid,100,RUB,,,click{i}," for i in range(1, n + 1)]


def set_states(ledger_url: str, changes: Sequence[tuple[str, timedelta]], served: Served) -> None:
    """Give the deliveries, in id order, these states, changed this long before now (the
    verdicts a platform's reconcile step would write)."""
    engine = sa.create_engine(parse_url(ledger_url))
    try:
        with engine.begin() as connection:
            ids = connection.execute(sa.select(deliveries.c.id).order_by(deliveries.c.id))
            for delivery_id, (state, ago) in zip(ids.scalars(), changes, strict=False):
                connection.execute(
                    deliveries.update()
                    .where(deliveries.c.id == delivery_id)
                    .values(state=state, updated_at=served.clock.now - ago)
                )
    finally:
        engine.dispose()


def test_deliveries_by_state_match_the_ledger(
    workdir: Path, served: Served, ledger: Ledger
) -> None:
    write_orders(workdir, ORDERS)
    served.scheduler.tick()
    after = served.scrape()

    assert after.series("convsync_deliveries") == {
        ("vk", "purchase", "delivered"): 3,
        ("vk", "purchase", "rejected"): 1,
        ("vk", "purchase", "skipped"): 1,
    }
    (funnel,) = ledger.funnel(served.clock.now - timedelta(days=30))
    assert (funnel.accepted, funnel.rejected, funnel.skipped) == (3, 1, 1)
    assert after.value("convsync_last_delivery_timestamp_seconds", destination="vk") == (
        served.clock.now.timestamp()
    )
    assert after.value("convsync_oldest_due_age_seconds", destination="vk") == 0
    assert after.series("convsync_upload_match_ratio") == {}  # no verdicts yet


def test_runs_are_counted_by_status_with_what_they_settled_and_pulled(
    workdir: Path, served: Served
) -> None:
    before = served.scrape()
    write_orders(workdir, ORDERS)
    served.scheduler.tick()  # degraded: a rejected record and a rejected delivery
    served.scheduler.tick()  # ok: nothing new
    after = served.scrape()

    def added(name: str, **labels: str) -> float:
        return after.count(name, **labels) - before.count(name, **labels)

    assert {s: added("convsync_runs_total", status=s) for s in ("ok", "degraded", "failed")} == {
        "ok": 1,
        "degraded": 1,
        "failed": 0,
    }
    assert added("convsync_run_duration_seconds_count") == 2
    assert added("convsync_run_duration_seconds_bucket", le="+Inf") == 2
    assert after.series("convsync_last_run_status") == {
        ("ok",): 1,
        ("degraded",): 0,
        ("failed",): 0,
        ("interrupted",): 0,
    }
    settled = "convsync_deliveries_settled_total"
    assert added(settled, destination="vk", outcome="delivered", reason="none") == 3
    assert added(settled, destination="vk", outcome="rejected", reason="bad_click_id") == 1
    assert added("convsync_records_pulled_total", source="shop") == 7
    assert added("convsync_records_rejected_total", source="shop", reason="bad_value") == 1


def test_a_run_that_raises_counts_as_failed(workdir: Path, served: Served) -> None:
    before = served.scrape()
    write_orders(workdir, paid(2))
    served.destination.script = crash
    with pytest.raises(KeyError):
        served.scheduler.tick()
    after = served.scrape()

    assert after.count("convsync_runs_total", status="failed") == (
        before.count("convsync_runs_total", status="failed") + 1
    )
    assert after.value("convsync_last_run_status", status="failed") == 1
    assert after.value("convsync_last_run_status", status="ok") == 0


def test_a_deferred_delivery_is_counted_and_its_wait_shows_once_it_is_due(
    workdir: Path, served: Served
) -> None:
    def later(batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        return [RowOutcome.transient("backend_error", "try later") for _ in batch]

    before = served.scrape()
    write_orders(workdir, paid(1))
    served.destination.script = later
    served.scheduler.tick()  # retried once in the run, then deferred for 10 minutes
    deferred = served.scrape()
    served.clock.now += timedelta(minutes=11)
    due = served.scrape()

    settled = "convsync_deliveries_settled_total"
    labels = {"destination": "vk", "outcome": "deferred", "reason": "unknown"}
    assert deferred.count(settled, **labels) - before.count(settled, **labels) == 1
    assert deferred.series("convsync_deliveries") == {("vk", "purchase", "deferred"): 1}
    assert deferred.value("convsync_oldest_due_age_seconds", destination="vk") == 0
    # recorded at the run's start: waiting for 11 minutes now
    assert due.value("convsync_oldest_due_age_seconds", destination="vk") == 11 * 60
    assert due.series("convsync_last_delivery_timestamp_seconds") == {}


def test_match_ratio_counts_the_verdicts_of_the_last_day(
    workdir: Path, served: Served, ledger_url: str
) -> None:
    write_orders(workdir, paid(5))
    served.scheduler.tick()
    hour = timedelta(hours=1)
    set_states(
        ledger_url,
        [
            ("matched", hour),
            ("matched", 2 * hour),
            ("unmatched", 3 * hour),
            ("matched", timedelta(days=2)),  # a verdict of the day before: not in the ratio
            ("matched", timedelta(days=40)),  # out of the gauges' 30 days
        ],
        served,
    )
    after = served.scrape()

    assert after.value("convsync_upload_match_ratio", destination="vk") == pytest.approx(2 / 3)
    assert after.series("convsync_deliveries") == {
        ("vk", "purchase", "matched"): 3,
        ("vk", "purchase", "unmatched"): 1,
    }
    assert after.value("convsync_last_delivery_timestamp_seconds", destination="vk") == (
        (served.clock.now - hour).timestamp()
    )


def test_up_follows_the_scheduler_and_webhook_totals_are_counters(served: Served) -> None:
    assert served.scrape().value("convsync_up") == 1
    served.running.clear()
    assert served.scrape().value("convsync_up") == 0

    totals = {"requests": 5, "transactions": 2}
    count_webhooks(served.registry, lambda: totals)
    first = served.scrape()
    totals["requests"] += 1
    second = served.scrape()
    assert (
        first.value("convsync_webhook_requests_total"),
        first.value("convsync_webhook_transactions_total"),
    ) == (5, 2)
    assert second.value("convsync_webhook_requests_total") == 6


def test_labels_hold_names_and_codes_never_record_data(workdir: Path, served: Served) -> None:
    write_orders(workdir, ORDERS)
    served.scheduler.tick()
    after = served.scrape()

    assert after.label_names() <= {"goal", "destination", "state", "source", "outcome"} | {
        "reason",
        "status",
        "le",
    }
    for leak in ("buyer@", "example.com", "123-45-67", "79161234567", "click1", "A-1"):
        assert leak not in after.text


def test_openmetrics_when_the_scraper_asks_for_it(served: Served) -> None:
    plain = served.scrape()
    assert plain.content_type.startswith("text/plain")
    open_metrics = served.scrape(accept="application/openmetrics-text; version=1.0.0")
    assert open_metrics.content_type.startswith("application/openmetrics-text")
    assert open_metrics.text.endswith("# EOF\n")


def test_a_health_endpoint_without_a_registry_answers_404_for_metrics() -> None:
    server = HealthEndpoint(HealthApp(lambda: {"healthy": True}), "127.0.0.1", 0)
    server.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=30)
        answer.value.close()
        assert answer.value.code == 404
    finally:
        server.stop()


def test_a_ledger_that_cannot_be_read_leaves_the_process_counters(
    sqlite_url: str, tmp_path: Path
) -> None:
    ledger = Ledger.open(sqlite_url)
    registry = build_registry(ledger, ["vk"], running=lambda: True, clock=Clock())
    ledger.close()
    for leftover in tmp_path.glob("ledger.db*"):
        leftover.unlink()  # the next connection finds an empty database: no tables
    server = HealthEndpoint(HealthApp(lambda: {"healthy": False}, metrics=registry), "127.0.0.1", 0)
    server.start()
    try:
        after = scrape(server.port)
    finally:
        server.stop()
        ledger.close()
    assert after.value("convsync_up") == 1
    assert after.value("convsync_runs_total", status="ok") is not None
    assert "convsync_oldest_due_age_seconds" not in after.samples
