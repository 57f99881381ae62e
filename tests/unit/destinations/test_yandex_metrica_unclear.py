"""yandex_metrica uploads of unclear fate (the answer lost, the list of uploads silent):
when they are looked up again, their records, and when convsync stops looking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from convsync.core.model import NOT_STORED, UNCLEAR
from convsync.destinations.yandex_metrica import uploads
from convsync.destinations.yandex_metrica.uploads import (
    LOOK_FOR,
    Unclear,
    given_up_unclear,
    next_lookup,
    not_stored_record,
    unclear_record,
)

SINCE = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
COMMENT = "5f1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f"


def unclear(**changes: object) -> Unclear:
    fields: dict[str, object] = {
        "key": COMMENT,
        "batch_id": COMMENT,
        "comment": COMMENT,
        "calls": False,
        "mixed": False,
        "since": SINCE,
        "error": "Metrica answered 504 timeout: Query execution time exceeded",
    }
    fields.update(changes)
    return Unclear(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("elapsed", "wait"),
    [
        (timedelta(0), timedelta(minutes=5)),  # just unclear: at least 5 minutes
        (timedelta(seconds=40), timedelta(minutes=5)),  # after the run's quick tries
        (timedelta(minutes=20), timedelta(minutes=20)),  # as long as it has been unclear
        (timedelta(hours=2), timedelta(hours=2)),
        (timedelta(hours=30), timedelta(hours=6)),  # at most 6 hours
    ],
)
def test_the_next_lookup_waits_as_long_as_the_upload_has_been_unclear(
    elapsed: timedelta, wait: timedelta
) -> None:
    now = SINCE + elapsed
    assert next_lookup(unclear(lookups=1), now) == now + wait


def test_the_last_lookup_is_at_the_deadline_and_then_it_gives_up() -> None:
    now = SINCE + LOOK_FOR - timedelta(hours=1)
    assert next_lookup(unclear(lookups=12), now) == SINCE + LOOK_FOR
    assert next_lookup(unclear(lookups=13), SINCE + LOOK_FOR) is None


def test_it_never_gives_up_before_a_few_lookups_failed() -> None:
    # convsync was down for the three days: it still looks a few times first
    late = SINCE + LOOK_FOR + timedelta(days=1)
    assert next_lookup(unclear(lookups=1), late) == late + timedelta(hours=6)
    assert next_lookup(unclear(lookups=uploads.LOOKUPS_AT_LEAST), late) is None


def test_lookups_over_three_days_are_bounded() -> None:
    now, lookups = SINCE + timedelta(seconds=30), 1
    while (at := next_lookup(unclear(lookups=lookups), now)) is not None:
        now, lookups = at, lookups + 1
    assert now == SINCE + LOOK_FOR
    assert 12 <= lookups <= 20


def test_the_record_keeps_what_a_later_run_needs() -> None:
    before = unclear(
        key=f"{COMMENT}-calls",
        comment=f"{COMMENT}calls",
        calls=True,
        mixed=True,
        lookups=2,
        lookup_error="Metrica answered 503 backend_error: Backend error",
    )
    record = unclear_record(
        before,
        destination="metrica",
        goals=["call", "call"],
        look_again_at=SINCE + timedelta(minutes=20),
    )
    assert (record.batch_id, record.external_id, record.status, record.final) == (
        f"{COMMENT}-calls",
        "",
        UNCLEAR,
        False,
    )
    assert (record.rows, record.next_check_at) == (2, SINCE + timedelta(minutes=20))
    assert record.details["batch"] == COMMENT and record.details["type"] == "CALLS"
    assert Unclear.of(record, SINCE + timedelta(days=1)) == before
    message = record.message or ""
    assert f"comment {COMMENT}calls" in message and "504 timeout" in message
    assert "2 look-ups; last: Metrica answered 503 backend_error" in message
    assert "go in no other file" in message


def test_an_upload_not_in_the_list_is_final_and_replaceable() -> None:
    record = not_stored_record(
        unclear(), destination="metrica", goals=["purchase"], now=SINCE + timedelta(hours=1)
    )
    assert (record.status, record.final, record.message) == (NOT_STORED, True, None)
    assert record.details["ruled_out_at"] == (SINCE + timedelta(hours=1)).isoformat()


def test_giving_up_says_where_to_look_and_how_to_send_again() -> None:
    record, message = given_up_unclear(
        unclear(lookups=14, lookup_error="Metrica answered 503 backend_error: Backend error"),
        destination="metrica",
        goals=["purchase"] * 3,
        counter_id=24681357,
    )
    assert (record.status, record.final, record.next_check_at) == ("UNKNOWN", True, None)
    assert record.message == message
    # its rows are listed themselves (uncertain, with this message): not the upload too
    assert record.details["verdict"] == "uncertain"
    assert f"comment {COMMENT}" in message and "counter 24681357" in message
    assert "14 look-ups" in message
    assert "convsync retry --uncertain --destination metrica" in message
