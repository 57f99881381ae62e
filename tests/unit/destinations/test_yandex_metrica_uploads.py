"""yandex_metrica: following an upload until Metrica has processed it — when to ask
again, when to give up, and what a final status means for the rows and for a person."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from convsync.core.model import DeliveryState, UploadRecord
from convsync.destinations.yandex_metrica.client import Uploading
from convsync.destinations.yandex_metrica.uploads import SCHEDULE, follow_up, new_record

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
COUNTER = 123


def record(
    targets: list[str] | None = None, *, mixed: bool = False, kind: str = "BASIC"
) -> UploadRecord:
    targets = targets or ["offline_purchase"] * 4
    rows: list[dict[str, Any]] = [
        {"ClientId": str(i), **({"Target": t} if kind == "BASIC" else {}), "DateTime": 1}
        for i, t in enumerate(targets)
    ]
    goals = ["purchase" if t == "offline_purchase" else "lead" for t in targets]
    uploading = Uploading(
        id=77, status="UPLOADED", type=kind, source_quantity=len(rows), line_quantity=len(rows)
    )
    return new_record(
        destination="metrica",
        batch_id="b1",
        uploading=uploading,
        rows=rows,
        goals=goals,
        comment="b1",
        mixed_batch=mixed,
        now=NOW,
    )


def processed(status: str = "PROCESSED", **counts: int) -> Uploading:
    return Uploading(id=77, status=status, source_quantity=4, line_quantity=4, **counts)


def test_a_new_upload_is_first_asked_about_after_five_minutes() -> None:
    new = record()
    assert new.next_check_at == NOW + timedelta(minutes=5)
    assert not new.final and new.status == "UPLOADED" and new.rows == 4
    assert new.details["targets"] == {"offline_purchase": 4}
    assert new.details["source_quantity"] == 4


def test_checks_back_off_to_six_hours_and_give_up_after_three_days() -> None:
    current, now, waits = record(), NOW, []
    while not current.final:
        assert current.next_check_at is not None
        now = current.next_check_at
        current = follow_up(
            current, Uploading(id=77, status="UPLOADED"), counter_id=COUNTER, now=now
        )
        if not current.final:
            assert current.next_check_at is not None
            waits.append(current.next_check_at - now)
    delays = SCHEDULE.delays
    assert waits[:5] == [*delays[1:], delays[-1]]
    assert max(waits) == timedelta(hours=6)
    assert now == NOW + SCHEDULE.give_up_after
    assert current.status == "UNKNOWN" and current.verdict is None
    assert current.message is not None and "after 3 days (last status UPLOADED)" in current.message
    assert current.details["checks"] == len(waits) + 1


def test_all_rows_linked_is_matched() -> None:
    done = follow_up(
        record(), processed(linked_quantity=4, user_not_found_quantity=0, goal_not_found_quantity=0),
        counter_id=COUNTER, now=NOW,
    )  # fmt: skip
    assert done.final and done.status == "PROCESSED" and done.next_check_at is None
    assert done.verdict is DeliveryState.MATCHED and done.message is None
    assert done.details["linked_quantity"] == 4


def test_linkage_failure_is_unmatched_with_what_to_check() -> None:
    done = follow_up(record(), processed("LINKAGE_FAILURE"), counter_id=COUNTER, now=NOW)
    assert done.verdict is DeliveryState.UNMATCHED and done.verdict_code == "linkage_failure"
    assert done.message is not None
    assert done.message.startswith(
        "None of the 4 rows of upload 77 matched a visitor of counter 123"
    )
    assert "_ym_uid" in done.message and "21 days" in done.message
    calls = follow_up(
        record(kind="CALLS"), processed("LINKAGE_FAILURE"), counter_id=COUNTER, now=NOW
    )
    assert calls.message is not None and "static calls still show" in calls.message


def test_a_missing_goal_names_the_identifier_to_create() -> None:
    done = follow_up(
        record(),
        processed(linked_quantity=0, goal_not_found_quantity=4),
        counter_id=COUNTER,
        now=NOW,
    )
    assert done.verdict is DeliveryState.UNMATCHED and done.verdict_code == "goal_not_found"
    assert done.message == (
        "Goal identifier not found on counter 123 for 4 of 4 rows: create a JavaScript-event "
        "goal with identifier offline_purchase in Metrica (Goals → Add goal → JavaScript "
        "event, condition 'matches'), or correct goals.purchase.send.metrica.target."
    )


def test_which_goal_is_missing_is_worked_out_from_the_counts() -> None:
    mixed_targets = ["offline_purchase", "offline_purchase", "offline_purchase", "crm_lead"]
    done = follow_up(
        record(mixed_targets),
        processed(linked_quantity=3, goal_not_found_quantity=1),
        counter_id=COUNTER,
        now=NOW,
    )
    assert done.final and done.verdict is None  # some rows matched: Metrica shows which
    assert done.message is not None
    assert "identifier crm_lead in Metrica" in done.message
    assert "goals.lead.send.metrica.target" in done.message
    ambiguous = follow_up(
        record(["a", "b"]), processed(linked_quantity=1, goal_not_found_quantity=1),
        counter_id=COUNTER, now=NOW,
    )  # fmt: skip
    assert ambiguous.message is not None and "identifier a or b" in ambiguous.message


def test_some_visitors_not_found_keeps_the_rows_delivered_with_the_counts() -> None:
    done = follow_up(
        record(),
        processed(linked_quantity=3, user_not_found_quantity=1),
        counter_id=COUNTER,
        now=NOW,
    )
    assert done.final and done.verdict is None
    assert done.message is not None and done.message.startswith("1 of 4 rows matched no visitor")
    none = follow_up(
        record(),
        processed(linked_quantity=0, user_not_found_quantity=4),
        counter_id=COUNTER,
        now=NOW,
    )
    assert none.verdict is DeliveryState.UNMATCHED and none.verdict_code == "user_not_found"


def test_lines_metrica_left_out_are_reported() -> None:
    uploading = Uploading(
        id=77, status="PROCESSED", source_quantity=4, line_quantity=3, linked_quantity=3
    )
    done = follow_up(record(), uploading, counter_id=COUNTER, now=NOW)
    assert done.verdict is None
    assert done.message is not None and "Metrica accepted 3 of the file's 4 lines" in done.message


@pytest.mark.parametrize(
    ("status", "verdict"),
    [("PROCESSED", DeliveryState.MATCHED), ("LINKAGE_FAILURE", DeliveryState.UNMATCHED)],
)
def test_an_upload_sharing_its_batch_names_only_its_own_goals_rows(
    status: str, verdict: DeliveryState
) -> None:
    calls = record(mixed=True, kind="CALLS")
    calls = dataclasses.replace(calls, batch_id=calls.batch_id + "-calls")
    done = follow_up(calls, processed(status, linked_quantity=4), counter_id=COUNTER, now=NOW)
    assert done.final and done.status == status
    assert done.verdict is verdict
    assert done.rows_batch == calls.batch_id.removesuffix("-calls")
    assert done.rows_goals == tuple(calls.details["goals"])


def test_processed_without_counts_is_final_without_verdict() -> None:
    done = follow_up(
        record(kind="CALLS"), Uploading(id=77, status="PROCESSED"), counter_id=COUNTER, now=NOW
    )
    assert done.final and done.verdict is None and done.message is None


def test_an_upload_metrica_no_longer_knows_is_given_up() -> None:
    done = follow_up(record(), None, counter_id=COUNTER, now=NOW)
    assert done.final and done.status == "UNKNOWN"
    assert (
        done.message
        == "Metrica no longer knows upload 77 of counter 123; convsync stopped asking about it."
    )
