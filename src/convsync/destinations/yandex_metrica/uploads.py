"""Uploads Metrica processes after answering: the record convsync keeps of each, when to
ask about it again, and what its final status means — for the rows (matched or
unmatched) and for a person (the message in ``convsync report`` and ``failures``).

Metrica takes a file at once and processes it within about two hours
(``UPLOADED`` → … → ``PROCESSED`` or ``LINKAGE_FAILURE``). A run never waits for that:
the reconcile step of later runs asks once per due upload, backing off from 5 minutes to
6 hours, and gives up after 3 days (status ``UNKNOWN``, with a message).

A verdict names the delivered rows of the upload's batch; a batch holding both
conversions and calls is two uploads (``<batch>`` and ``<batch>-calls``), and the verdict
of each names only the rows of its own goals (a goal's target is of one kind).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from convsync.destinations.followup import CheckSchedule
from convsync.destinations.yandex_metrica.client import Uploading
from convsync.model import DeliveryState, UploadRecord

FINAL_STATUSES = frozenset({"PROCESSED", "LINKAGE_FAILURE"})
#: wait before the first check, then after each check (the last one repeats); give up
#: after 3 days
SCHEDULE = CheckSchedule(
    delays=(
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=3),
        timedelta(hours=6),
    ),
    give_up_after=timedelta(days=3),
)
GIVEN_UP = "UNKNOWN"

_VISITOR_HINT = (
    "check that ClientId values come from this counter's _ym_uid cookie "
    "(ym({counter}, 'getClientID')), that yclid values come from the landing-page URLs of "
    "Yandex.Direct ads, and that UserId values are the ones the site passes to setUserID; "
    "Metrica links a conversion only to a visit within 21 days before the file is processed"
)

#: the batch id of the calls upload of a batch that also holds conversions
CALLS_BATCH_SUFFIX = "-calls"


def new_record(
    *,
    destination: str,
    batch_id: str,
    uploading: Uploading,
    rows: Sequence[Mapping[str, Any]],
    goals: Sequence[str],
    comment: str,
    mixed_batch: bool,
    now: datetime,
    check_now: bool = False,
) -> UploadRecord:
    """The record of an upload Metrica just took (or that a recovery found)."""
    targets: dict[str, int] = {}
    target_goals: dict[str, set[str]] = {}
    for row, goal in zip(rows, goals, strict=True):
        target = row.get("Target")
        if target is not None:
            targets[target] = targets.get(target, 0) + 1
            target_goals.setdefault(target, set()).add(goal)
    details: dict[str, Any] = {
        **uploading.counts(),
        "type": uploading.type,
        "comment": comment,
        "uploaded_at": now.isoformat(),
        "checks": 0,
        "mixed_batch": mixed_batch,
        "goals": sorted(set(goals)),
        "targets": targets,
        "target_goals": {t: sorted(g) for t, g in target_goals.items()},
    }
    return UploadRecord(
        destination=destination,
        batch_id=batch_id,
        external_id=str(uploading.id),
        status=uploading.status,
        rows=len(rows),
        details=details,
        next_check_at=now if check_now else SCHEDULE.first_check(now),
    )


def follow_up(
    record: UploadRecord, uploading: Uploading | None, *, counter_id: int, now: datetime
) -> UploadRecord:
    """The record after one check: ask again later, or final with counts and verdict."""
    checks = int(record.details.get("checks", 0)) + 1
    details = {**record.details, "checks": checks}
    if uploading is None:
        return _final(
            record,
            details,
            GIVEN_UP,
            f"Metrica no longer knows upload {record.external_id} of counter {counter_id}; "
            "convsync stopped asking about it.",
        )
    details.update(uploading.counts())
    details["last_status"] = uploading.status
    if uploading.status in FINAL_STATUSES:
        return _judged(record, details, uploading.status, counter_id)
    next_check = SCHEDULE.next_check(checks, details, now)
    if next_check is None:
        return _final(
            record,
            details,
            GIVEN_UP,
            f"Metrica had not finished processing upload {record.external_id} after "
            f"{SCHEDULE.give_up_after.days} days (last status {uploading.status}); convsync "
            "stopped asking. Look the upload up in Metrica (counter settings → Upload data).",
        )
    return dataclasses.replace(
        record, status=uploading.status, details=details, next_check_at=next_check
    )


def given_up(record: UploadRecord, reason: str, now: datetime) -> UploadRecord:
    """Final without a verdict: Metrica refused to say (``reason``: its own words)."""
    details = {**record.details, "checks": int(record.details.get("checks", 0)) + 1}
    return _final(
        record,
        details,
        GIVEN_UP,
        f"Metrica refused to report on upload {record.external_id} ({reason}); convsync "
        "stopped asking about it.",
    )


def _judged(
    record: UploadRecord, details: dict[str, Any], status: str, counter_id: int
) -> UploadRecord:
    rows = record.rows
    calls = details.get("type") == "CALLS"
    what = "calls" if calls else "rows"
    hint = _VISITOR_HINT.format(counter=counter_id)
    if status == "LINKAGE_FAILURE":  # no row matched a visitor
        extra = (
            " (static calls still show in Metrica's call reports, unlinked to visits)"
            if calls
            else ""
        )
        failure = (
            f"none of the {rows} {what} of upload {record.external_id} matched a visitor of "
            f"counter {counter_id}{extra}: {hint}."
        )
        return _final(record, details, status, failure, DeliveryState.UNMATCHED, "linkage_failure")

    linked = details.get("linked_quantity")
    goal_missing = int(details.get("goal_not_found_quantity") or 0)
    user_missing = int(details.get("user_not_found_quantity") or 0)
    source, lines = details.get("source_quantity"), details.get("line_quantity")
    problems: list[str] = []
    if goal_missing:
        problems.append(_goal_message(details, goal_missing, rows, counter_id, record.destination))
    if user_missing:
        problems.append(
            f"{user_missing} of {rows} {what} matched no visitor of counter {counter_id}: {hint}"
        )
    if isinstance(source, int) and isinstance(lines, int) and lines < source:
        problems.append(
            f"Metrica accepted {lines} of the file's {source} lines; the others failed its "
            "checks (see the upload in Metrica: counter settings → Upload data)"
        )
    message: str | None = "; ".join(problems) + "." if problems else None
    if not isinstance(linked, int):
        return _final(record, details, status, message)  # no counts to judge by
    if linked >= rows and not problems:
        return _final(record, details, status, None, DeliveryState.MATCHED)
    if linked == 0:
        code = "goal_not_found" if goal_missing else "user_not_found"
        return _final(record, details, status, message, DeliveryState.UNMATCHED, code)
    return _final(record, details, status, message)  # some matched: which, Metrica shows


def _goal_message(
    details: Mapping[str, Any], missing: int, rows: int, counter_id: int, destination: str
) -> str:
    targets: dict[str, int] = dict(details.get("targets") or {})
    # the targets whose rows add up to the count, when only one choice does
    choices = [
        combo
        for size in range(1, min(len(targets), 8) + 1)
        for combo in itertools.combinations(sorted(targets), size)
        if sum(targets[t] for t in combo) == missing
    ]
    named = list(choices[0]) if len(choices) == 1 else sorted(targets)
    identifiers = " or ".join(named) or "(unknown)"
    goals = sorted({g for t in named for g in (details.get("target_goals") or {}).get(t, [])})
    where = ", ".join(f"goals.{goal}.send.{destination}.target" for goal in goals)
    return (
        f"goal identifier not found on counter {counter_id} for {missing} of {rows} rows: "
        f"create a JavaScript-event goal with identifier {identifiers} in Metrica (Goals → "
        f"Add goal → JavaScript event, condition 'matches'), or correct {where or 'the target'}"
    )


def _final(
    record: UploadRecord,
    details: dict[str, Any],
    status: str,
    message: str | None,
    verdict: DeliveryState | None = None,
    code: str | None = None,
) -> UploadRecord:
    final = record.finished(status, details, message, verdict, code)
    if not details.get("mixed_batch"):
        return final
    # the verdict names this kind's rows only: those of its goals, in the claim's batch
    return dataclasses.replace(
        final,
        rows_batch=record.batch_id.removesuffix(CALLS_BATCH_SUFFIX),
        rows_goals=tuple(details.get("goals", ())),
    )
