"""``convsync report`` as a script or a person reads it: JSON, CSV and the table, each the
funnel of the window asked for."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from convsync.core.model import DeliveryState, PlannedDelivery, Transition, UploadRecord
from convsync.store import Ledger
from convsync.store.funnel import CSV_COLUMNS, report_json
from tests.integration.store.factory import NOW, conversion
from tests.integration.test_cli import convsync

S = DeliveryState
SINCE, UNTIL = "2026-11-20", "2026-11-20T18:00:00+00:00"
LEASE = timedelta(minutes=5)


@pytest.fixture
def ledger_file(tmp_path: Path) -> str:
    """purchases p0–p2 at NOW: google delivered ×2 and rejected; metrica matched,
    unmatched (upload verdicts) and skipped; one lead the day after (outside the window)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    purchases = [conversion(f"p{i}") for i in range(3)]
    planned = [PlannedDelivery(c.key, "purchase", "google") for c in purchases]
    planned += [PlannedDelivery(c.key, "purchase", "metrica") for c in purchases[:2]]
    planned.append(
        PlannedDelivery(purchases[2].key, "purchase", "metrica", S.SKIPPED, "no_identifier")
    )
    lead = conversion("l0", goal="lead", source="crm")
    with Ledger.open(url) as ledger:
        ledger.start_run(run_id="r", trigger="once", started_at=NOW)
        for made, deliveries, at in (
            (purchases, planned, NOW),
            ([lead], [PlannedDelivery(lead.key, "lead", "google")], NOW + timedelta(days=1)),
        ):
            ledger.record_chunk(
                run_id="r",
                source=made[0].source,
                conversions=made,
                deliveries=deliveries,
                rejections=[],
                cursor=None,
                files_done=[],
                now=at,
            )
        summary = {"sources": {"shop": {"pulled": 4}}}
        ledger.finish_run(run_id="r", status="ok", finished_at=NOW, summary=summary)
        google = ledger.claim(
            destination="google", limit=3, lease=LEASE, batch_id="g", run_id="r", now=NOW
        )
        ledger.apply(
            [
                Transition(google[0].delivery_id, S.DELIVERED),
                Transition(google[1].delivery_id, S.DELIVERED),
                Transition(google[2].delivery_id, S.REJECTED, "INVALID_GCLID", "bad gclid"),
            ],
            run_id="r",
            now=NOW,
        )
        for batch, verdict in (("m1", S.MATCHED), ("m2", S.UNMATCHED)):
            [claimed] = ledger.claim(
                destination="metrica", limit=1, lease=LEASE, batch_id=batch, run_id="r", now=NOW
            )
            upload = UploadRecord("metrica", batch, f"up-{batch}", "UPLOADED", 1)
            delivered = [Transition(claimed.delivery_id, S.DELIVERED)]
            ledger.apply(delivered, run_id="r", now=NOW, uploads=[upload])
            final = replace(upload, status="PROCESSED", final=True, verdict=verdict)
            ledger.update_uploads([final], run_id="r", now=NOW + timedelta(minutes=30))
    return url


def _report(tmp_path: Path, url: str, *args: str) -> str:
    done = convsync("--database-url", url, "report", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_json_is_the_funnel_of_the_window(tmp_path: Path, ledger_file: str) -> None:
    out = _report(tmp_path, ledger_file, "--since", SINCE, "--until", UNTIL, "--format", "json")
    document = json.loads(out)  # stdout holds the one object: no log line mixed in
    since, until = (
        datetime.fromisoformat("2026-11-20T00:00:00+00:00"),
        datetime.fromisoformat(UNTIL),
    )
    with Ledger.open(ledger_file, read_only=True) as ledger:
        expected = report_json(ledger.funnel(since, until), ledger.recent_uploads(since))
    assert document == json.loads(json.dumps(expected))
    assert (document["since"], document["until"], document["sources"]) == (
        "2026-11-20T00:00:00+00:00",
        UNTIL,
        {"shop": 4},
    )
    google, metrica = document["goals"]
    assert (google["destination"], google["planned"], google["accepted"]) == ("google", 3, 2)
    assert (google["rejected_by_code"], google["match_rate"]) == ({"INVALID_GCLID": 1}, None)
    assert (metrica["matched"], metrica["unmatched"], metrica["match_rate"]) == (1, 1, 0.5)
    assert (metrica["skipped_by_code"], metrica["reports_matching"]) == ({"no_identifier": 1}, True)
    assert [u["batch_id"] for u in document["uploads"]] == ["m2", "m1"]


def test_csv_has_a_row_per_goal_and_destination(tmp_path: Path, ledger_file: str) -> None:
    out = _report(tmp_path, ledger_file, "--since", SINCE, "--until", UNTIL, "--format", "csv")
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = {r["destination"]: r for r in reader}
    assert set(rows) == {"google", "metrica"}
    assert (rows["google"]["sent"], rows["google"]["rejected_by_code"]) == ("2", "INVALID_GCLID=1")
    assert (rows["google"]["match_rate"], rows["google"]["reports_matching"]) == ("", "false")
    assert (rows["metrica"]["match_rate"], rows["metrica"]["skipped_by_code"]) == (
        "0.5",
        "no_identifier=1",
    )


def test_the_table_shows_the_goal_rows_within_100_columns(tmp_path: Path, ledger_file: str) -> None:
    out = _report(tmp_path, ledger_file, "--since", SINCE, "--until", UNTIL)
    assert "Funnel, 2026-11-20 00:00 to 2026-11-20 18:00 UTC" in out
    table = [line for line in out.splitlines() if line.startswith(("goal → ", "purchase → "))]
    assert all(len(line) <= 100 for line in table)
    assert [row.split()[3:] for row in table[1:]] == [
        # pulled conversions planned sent accepted matched rate waiting rejected skipped
        ["4", "3", "3", "2", "2", "—", "—", "0", "1", "0"],
        ["4", "3", "2", "2", "2", "1", "50.0%", "0", "0", "1"],
    ]
    assert "purchase → google: rejected INVALID_GCLID 1" in out
    assert "—: matches not reported by google (the platform does not tell)" in out
    assert "Pulled: shop 4" in out
    assert "metrica up-m1: PROCESSED, 1 row" in out

    empty = _report(tmp_path, ledger_file, "--since", "2026-11-25")
    assert "No conversions recorded in this window." in empty


def test_a_window_that_ends_before_it_starts_or_a_bad_format_is_refused(
    tmp_path: Path, ledger_file: str
) -> None:
    backwards = convsync(
        "--database-url", ledger_file, "report", "--since", "1d", "--until", "2d", cwd=tmp_path
    )
    assert backwards.returncode == 2 and "--until 2d is not after --since 1d" in backwards.stderr
    bad_until = convsync("--database-url", ledger_file, "report", "--until", "7", cwd=tmp_path)
    assert bad_until.returncode == 2 and "--until 7: a window needs a unit" in bad_until.stderr
    bad_format = convsync("--database-url", ledger_file, "report", "--format", "xml", cwd=tmp_path)
    assert bad_format.returncode == 2 and "xml" in bad_format.stderr
    assert "Traceback" not in backwards.stderr + bad_until.stderr + bad_format.stderr
