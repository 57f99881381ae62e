"""The funnel per goal × destination: stages, reasons, match rates, windows, its JSON and
CSV forms, and (SQLite) that every query it runs is an index search."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from convsync.core.model import (
    AdjustmentCandidate,
    AdjustmentKind,
    Conversion,
    DeliveryState,
    PlannedDelivery,
    Transition,
    UploadRecord,
)
from convsync.store import Ledger
from convsync.store.funnel import (
    BY_CODE,
    CSV_COLUMNS,
    PLATFORM,
    SCALARS,
    Funnel,
    FunnelRow,
    csv_row,
    report_json,
)

from .factory import NOW, conversion

S = DeliveryState
LEASE = timedelta(minutes=10)
PURCHASES_AT = NOW - timedelta(hours=2)
LEADS_AT = NOW - timedelta(days=3)
OLD_AT = NOW - timedelta(days=40)
RETRACTED_AT = NOW - timedelta(hours=1)  # the adjustment's own time is a minute before


def _record(
    ledger: Ledger, source: str, made: list[Conversion], planned: list[PlannedDelivery], at: Any
) -> None:
    ledger.record_chunk(
        run_id=f"run-{source}-{at:%j%H}",
        source=source,
        conversions=made,
        deliveries=planned,
        rejections=[],
        cursor=None,
        files_done=[],
        now=at,
    )


def _run(ledger: Ledger, source: str, pulled: int, at: Any) -> None:
    run_id = f"run-{source}-{at:%j%H}"
    ledger.start_run(run_id=run_id, trigger="schedule", started_at=at)
    summary = {"sources": {source: {"pulled": pulled}}}
    ledger.finish_run(run_id=run_id, status="ok", finished_at=at, summary=summary)


def _claim(ledger: Ledger, destination: str, limit: int, batch: str, at: Any) -> list[int]:
    claimed = ledger.claim(
        destination=destination, limit=limit, lease=LEASE, batch_id=batch, run_id="r", now=at
    )
    assert len(claimed) == limit
    return [c.delivery_id for c in claimed]


def _record_scenario(ledger: Ledger) -> None:
    """Through the record step, claims, outcomes and upload verdicts:

    * an old purchase (40 days ago) delivered to google;
    * 4 leads of ``crm`` (3 days ago): google delivered, deferred (no code), 2 skipped;
      vk delivered ×2, uncertain, rejected;
    * 10 purchases of ``shop`` (2 hours ago): google 4 delivered, rejected ×2
      INVALID_GCLID and ×1 without a code, deferred, uncertain, sending; metrica 6
      planned (3 matched and 1 unmatched by upload verdicts, 1 delivered awaiting its
      verdict, 1 sending) and 4 skipped (3 no_identifier, 1 without a code);
    * a retraction of the first purchase (an hour ago): delivered to google, pending
      for metrica.
    """
    old = conversion("old")
    _record(ledger, "shop", [old], [PlannedDelivery(old.key, "purchase", "google")], OLD_AT)
    _run(ledger, "shop", 1, OLD_AT)
    [old_id] = _claim(ledger, "google", 1, "old", OLD_AT)
    ledger.apply([Transition(old_id, S.DELIVERED)], run_id="r", now=OLD_AT)

    leads = [conversion(f"l{i}", goal="lead", source="crm") for i in range(4)]
    skipped = PlannedDelivery(leads[0].key, "lead", "google", S.SKIPPED, "no_identifier", "none")
    planned = [PlannedDelivery(c.key, "lead", "google") for c in leads[:2]]
    planned += [replace(skipped, conversion_key=c.key) for c in leads[2:]]
    planned += [PlannedDelivery(c.key, "lead", "vk") for c in leads]
    _record(ledger, "crm", leads, planned, LEADS_AT)
    _run(ledger, "crm", 5, LEADS_AT)
    g0, g1 = _claim(ledger, "google", 2, "lg", LEADS_AT)
    v0, v1, v2, v3 = _claim(ledger, "vk", 4, "lv", LEADS_AT)
    later = NOW + timedelta(days=1)
    ledger.apply(
        [
            Transition(g0, S.DELIVERED),
            Transition(g1, S.DEFERRED, None, "later", later),
            Transition(v0, S.DELIVERED),
            Transition(v1, S.DELIVERED),
            Transition(v2, S.UNCERTAIN, "no_receipt", "no answer"),
            Transition(v3, S.REJECTED, "event_too_old", "too old"),
        ],
        run_id="r",
        now=LEADS_AT,
    )

    purchases = [conversion(f"p{i}") for i in range(10)]
    planned = [PlannedDelivery(c.key, "purchase", "google") for c in purchases]
    planned += [PlannedDelivery(c.key, "purchase", "metrica") for c in purchases[:6]]
    planned += [
        PlannedDelivery(c.key, "purchase", "metrica", S.SKIPPED, "no_identifier", "no id")
        for c in purchases[6:9]
    ]
    planned.append(PlannedDelivery(purchases[9].key, "purchase", "metrica", S.SKIPPED))
    _record(ledger, "shop", purchases, planned, PURCHASES_AT)
    _run(ledger, "shop", 12, PURCHASES_AT)
    google = _claim(ledger, "google", 10, "pg", PURCHASES_AT)
    ledger.apply(
        [Transition(i, S.DELIVERED) for i in google[:4]]
        + [
            Transition(google[4], S.REJECTED, "INVALID_GCLID", "bad gclid"),
            Transition(google[5], S.REJECTED, "INVALID_GCLID", "bad gclid"),
            Transition(google[6], S.REJECTED, None, "refused"),
            Transition(google[7], S.DEFERRED, "TOO_RECENT_EVENT", "click < 6 h", later),
            Transition(google[8], S.UNCERTAIN, "no_receipt", "no answer"),
        ],  # google[9] stays sending
        run_id="r",
        now=PURCHASES_AT,
    )
    uploads = {}
    for batch, size in (("A", 3), ("B", 1), ("C", 1)):
        ids = _claim(ledger, "metrica", size, batch, PURCHASES_AT)
        uploads[batch] = UploadRecord("metrica", batch, f"up-{batch}", "UPLOADED", size)
        ledger.apply(
            [Transition(i, S.DELIVERED) for i in ids],
            run_id="r",
            now=PURCHASES_AT,
            uploads=[uploads[batch]],
        )
    _claim(ledger, "metrica", 1, "D", PURCHASES_AT)  # stays sending
    judged = NOW - timedelta(minutes=90)
    ledger.update_uploads(
        [
            replace(uploads["A"], status="PROCESSED", final=True, verdict=S.MATCHED),
            replace(
                uploads["B"],
                status="LINKAGE_FAILURE",
                final=True,
                verdict=S.UNMATCHED,
                verdict_code="linkage_failure",
            ),
        ],
        run_id="r",
        now=judged,
    )

    retraction = AdjustmentCandidate(
        purchases[0].key, "purchase", AdjustmentKind.RETRACTION, ("google", "metrica")
    )
    ledger.record_chunk(
        run_id="adjust",
        source="shop",
        conversions=[],
        deliveries=[],
        rejections=[],
        cursor=None,
        files_done=[],
        now=RETRACTED_AT,
        adjustments=[retraction],
    )
    [retracted] = _claim(ledger, "google", 1, "rg", NOW - timedelta(minutes=30))
    ledger.apply([Transition(retracted, S.DELIVERED)], run_id="r", now=NOW)


@pytest.fixture
def scenario(ledger: Ledger) -> Ledger:
    _record_scenario(ledger)
    return ledger


def _rows(funnel: Funnel) -> dict[tuple[str, str, str], FunnelRow]:
    return {(r.goal, r.destination, r.kind): r for r in funnel}


def _stages(row: FunnelRow) -> tuple[int | None, ...]:
    return (
        row.pulled, row.conversions, row.skipped, row.planned, row.sent, row.accepted,
        row.matched, row.unmatched, row.waiting, row.rejected,
    )  # fmt: skip


def test_every_stage_and_reason_of_the_last_day(scenario: Ledger) -> None:
    funnel = scenario.funnel(NOW - timedelta(days=1))
    assert [(r.goal, r.destination, r.kind) for r in funnel] == [
        ("purchase", "google", "conversion"),
        ("purchase", "google", "retraction"),
        ("purchase", "metrica", "conversion"),
        ("purchase", "metrica", "retraction"),
    ]
    rows = _rows(funnel)
    google = rows[("purchase", "google", "conversion")]
    #                         pulled conv skip plan sent acc match unm wait rej
    assert _stages(google) == (12, 10, 0, 10, 5, 4, 0, 0, 2, 3)
    assert google.rejected_by_code == {"INVALID_GCLID": 2, "unknown": 1}
    assert google.deferred_by_code == {"TOO_RECENT_EVENT": 1}
    assert google.uncertain_by_code == {"no_receipt": 1}
    assert (google.pending, google.sending, google.skipped_by_code) == (0, 1, {})
    assert (google.source, google.match_rate, google.reports_matching) == ("shop", None, False)

    metrica = rows[("purchase", "metrica", "conversion")]
    assert _stages(metrica) == (12, 10, 4, 6, 5, 5, 3, 1, 1, 0)
    assert metrica.skipped_by_code == {"no_identifier": 3, "unknown": 1}
    assert (metrica.match_rate, metrica.reports_matching) == (0.75, True)
    assert metrica.rejected_by_code == metrica.deferred_by_code == metrica.uncertain_by_code == {}

    # the retraction's deliveries are on rows of their own, not among the conversions'
    assert _stages(rows[("purchase", "google", "retraction")]) == (12, 1, 0, 1, 1, 1, 0, 0, 0, 0)
    retracted = rows[("purchase", "metrica", "retraction")]
    assert _stages(retracted) == (12, 1, 0, 1, 0, 0, 0, 0, 1, 0)
    assert (retracted.pending, retracted.match_rate, retracted.reports_matching) == (1, None, True)
    assert (funnel.sources, funnel.until) == ({"shop": 12}, None)


def test_a_week_adds_the_leads_and_their_source(scenario: Ledger) -> None:
    rows = _rows(scenario.funnel(NOW - timedelta(days=7)))
    assert len(rows) == 6
    google = rows[("lead", "google", "conversion")]
    assert _stages(google) == (5, 4, 2, 2, 1, 1, 0, 0, 1, 0)
    assert (google.source, google.skipped_by_code, google.deferred_by_code) == (
        "crm",
        {"no_identifier": 2},
        {"unknown": 1},
    )
    vk = rows[("lead", "vk", "conversion")]
    assert _stages(vk) == (5, 4, 0, 4, 3, 2, 0, 0, 0, 1)
    assert (vk.uncertain_by_code, vk.rejected_by_code) == ({"no_receipt": 1}, {"event_too_old": 1})
    assert rows[("purchase", "google", "conversion")].conversions == 10


def test_windows_take_their_start_and_leave_their_end(scenario: Ledger) -> None:
    week_before = scenario.funnel(NOW - timedelta(days=7), NOW - timedelta(days=1))
    assert [(r.goal, r.destination) for r in week_before] == [("lead", "google"), ("lead", "vk")]
    assert week_before.sources == {"crm": 5}

    assert scenario.funnel(LEADS_AT - timedelta(hours=1), LEADS_AT) == []
    at_start = scenario.funnel(LEADS_AT, LEADS_AT + timedelta(microseconds=1))
    assert {r.conversions for r in at_start} == {4}

    everything = _rows(scenario.funnel(NOW - timedelta(days=60)))
    old_too = everything[("purchase", "google", "conversion")]
    assert (old_too.conversions, old_too.planned, old_too.accepted) == (11, 11, 5)
    assert old_too.pulled == 13


def test_an_adjustment_counts_by_its_own_time_never_among_the_conversions(
    scenario: Ledger,
) -> None:
    # recorded a minute before its deliveries were planned: a window between the two
    # holds neither the retraction nor its deliveries as a conversion's
    assert scenario.funnel(RETRACTED_AT - timedelta(seconds=30)) == []
    own = scenario.funnel(RETRACTED_AT - timedelta(minutes=2), RETRACTED_AT)
    assert [(r.destination, r.kind, r.conversions, r.planned) for r in own] == [
        ("google", "retraction", 1, 1),
        ("metrica", "retraction", 1, 1),
    ]


def test_the_json_and_csv_forms_carry_the_rows(scenario: Ledger) -> None:
    since = NOW - timedelta(days=1)
    funnel = scenario.funnel(since)
    document = report_json(funnel, scenario.recent_uploads(since))
    assert list(document) == ["since", "until", "goals", "sources", "uploads"]
    assert (document["since"], document["until"], document["sources"]) == (
        "2026-11-19T12:00:00+00:00",
        None,
        {"shop": 12},
    )
    google, _, metrica, _ = document["goals"]
    assert list(google) == [*SCALARS, *BY_CODE, *PLATFORM]
    assert google["platform_successful"] is None and google["platform_alerts"] == {}
    assert (google["sent"], google["match_rate"], google["reports_matching"]) == (5, None, False)
    assert google["rejected_by_code"] == {"INVALID_GCLID": 2, "unknown": 1}
    assert (metrica["match_rate"], metrica["matched"], metrica["unmatched"]) == (0.75, 3, 1)
    assert {u["batch_id"]: (u["status"], u["final"]) for u in document["uploads"]} == {
        "A": ("PROCESSED", True),
        "B": ("LINKAGE_FAILURE", True),
        "C": ("UPLOADED", False),
    }

    cells = dict(zip(CSV_COLUMNS, csv_row(funnel[0]), strict=True))
    assert (cells["planned"], cells["match_rate"], cells["reports_matching"]) == ("10", "", "false")
    assert cells["rejected_by_code"] == "INVALID_GCLID=2;unknown=1"
    assert cells["skipped_by_code"] == ""
    assert dict(zip(CSV_COLUMNS, csv_row(funnel[2]), strict=True))["match_rate"] == "0.75"


@pytest.fixture
def statements(scenario: Ledger) -> Iterator[list[tuple[str, Any]]]:
    """What the ledger's engine executes while the test runs."""
    seen: list[tuple[str, Any]] = []

    def note(*args: Any) -> None:
        _conn, _cursor, statement, parameters = args[:4]
        seen.append((statement, parameters))

    engine = scenario._engine
    sa.event.listen(engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_every_query_of_the_funnel_searches_an_index(
    scenario: Ledger, statements: list[tuple[str, Any]], db: Engine
) -> None:
    """What keeps the status page fast on millions of deliveries (bench/report.py): no
    query reads a whole table or index, whatever the window."""
    scenario.funnel(NOW - timedelta(days=30), NOW)
    scenario.funnel(NOW - timedelta(days=1))
    plans = []
    with db.connect() as connection:
        for statement, parameters in statements:
            if statement.lstrip().upper().startswith("SELECT"):
                explained = connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", parameters
                )
                plans.extend(row[3] for row in explained)
    assert len(plans) > 20
    assert [p for p in plans if p.startswith("SCAN")] == []
