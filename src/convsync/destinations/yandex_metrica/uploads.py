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

An upload whose answer was lost (a timeout, a dropped connection, a 5xx after the file
went out) while Metrica's list of uploads would not say whether it has the file is kept
as a record of status ``UNCLEAR`` (``unclear_record``): the comment it is found by, since
when its fate is unclear and how many look-ups failed. Its rows wait in ``sending``
(see ``convsync.sync.delivery``). The next look-up waits as long as the upload has been
unclear — at least 5 minutes, at most 6 hours (``next_lookup``); after 3 days and at
least 3 failed look-ups convsync stops looking (``given_up_unclear``): the rows become
``uncertain``, for a person to check in Metrica and ``convsync retry --uncertain``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from convsync.core.model import NOT_STORED, UNCLEAR, DeliveryState, UploadRecord
from convsync.destinations.followup import CheckSchedule, uploaded_at
from convsync.destinations.yandex_metrica.client import Uploading

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

#: an upload of unclear fate is looked up again after as long as it has been unclear,
#: within these bounds
LOOKUP_WAIT = (timedelta(minutes=5), timedelta(hours=6))
#: … and given up on (its rows ``uncertain``) once this long has passed since its fate
#: became unclear, after at least LOOKUPS_AT_LEAST failed look-ups
LOOK_FOR = timedelta(days=3)
LOOKUPS_AT_LEAST = 3


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


# --- uploads of unclear fate -----------------------------------------------------------


@dataclass(slots=True)
class Unclear:
    """What convsync knows of an upload whose answer was lost.

    ``key`` is the batch id its record is kept under (the claim's ``batch_id``, with
    ``-calls`` for the calls file of a mixed batch) — the found upload's record keeps it.
    """

    key: str
    batch_id: str
    comment: str
    calls: bool
    mixed: bool
    since: datetime
    error: str
    lookups: int = 0
    lookup_error: str | None = None

    @classmethod
    def of(cls, record: UploadRecord, now: datetime) -> Unclear:
        """The upload of an ``UNCLEAR`` record, as an earlier run left it."""
        details = record.details
        return cls(
            key=record.batch_id,
            batch_id=str(details.get("batch") or record.batch_id),
            comment=str(details.get("comment") or ""),
            calls=details.get("type") == "CALLS",
            mixed=bool(details.get("mixed_batch")),
            since=uploaded_at({"uploaded_at": details.get("unclear_since")}, now),
            error=str(details.get("error") or ""),
            lookups=int(details.get("lookups") or 0),
            lookup_error=details.get("lookup_error"),
        )


def next_lookup(unclear: Unclear, now: datetime) -> datetime | None:
    """When to look for the upload again; None when it is time to stop looking."""
    deadline = unclear.since + LOOK_FOR
    if now >= deadline and unclear.lookups >= LOOKUPS_AT_LEAST:
        return None
    shortest, longest = LOOKUP_WAIT
    at = now + min(max(now - unclear.since, shortest), longest)
    return deadline if now < deadline < at else at  # one look-up at the deadline


def unclear_record(
    unclear: Unclear,
    *,
    destination: str,
    goals: Sequence[str],
    look_again_at: datetime,
) -> UploadRecord:
    """The record of an upload of unclear fate whose rows wait for ``look_again_at``."""
    return UploadRecord(
        destination=destination,
        batch_id=unclear.key,
        external_id="",  # Metrica's id, once a look-up finds it
        status=UNCLEAR,
        rows=len(goals),
        details=_unclear_details(unclear, goals),
        message=unclear_message(unclear),
        next_check_at=look_again_at,
    )


def not_stored_record(
    unclear: Unclear, *, destination: str, goals: Sequence[str], now: datetime
) -> UploadRecord:
    """Final: the list of uploads answered without the comment (the rows are sent
    again; the record of the new upload takes this one's place)."""
    details = {**_unclear_details(unclear, goals), "ruled_out_at": now.isoformat()}
    return UploadRecord(destination, unclear.key, "", NOT_STORED, len(goals), details, final=True)


def given_up_unclear(
    unclear: Unclear, *, destination: str, goals: Sequence[str], counter_id: int
) -> tuple[UploadRecord, str]:
    """Final, after days of failed look-ups: the record and the rows' message."""
    message = (
        f"Metrica may have stored the upload with comment {unclear.comment} (its answer "
        f"was lost: {unclear.error}; unclear since {unclear.since:%Y-%m-%d %H:%M} UTC), "
        f"but its list of uploads did not say for {LOOK_FOR.days} days ({unclear.lookups} "
        f"look-ups; last: {unclear.lookup_error or 'no answer'}), so convsync stopped "
        "looking and did not send these rows again. Look for that comment among the "
        f"uploads of counter {counter_id} in Metrica (counter settings → Upload data): if "
        "it is there, the rows arrived; if not, `convsync retry --uncertain --destination "
        f"{destination}` sends them."
    )
    details = {**_unclear_details(unclear, goals), "verdict": DeliveryState.UNCERTAIN.value}
    record = UploadRecord(destination, unclear.key, "", UNCLEAR, len(goals), details)
    return record.finished(GIVEN_UP, details, message), message


def unclear_message(unclear: Unclear) -> str:
    """Why the rows of an upload of unclear fate wait (``convsync failures``)."""
    looked = (
        f"; its list of uploads did not answer either ({unclear.lookups} look-up"
        f"{'s' if unclear.lookups != 1 else ''}; last: {unclear.lookup_error})"
        if unclear.lookups
        else ""
    )
    return (
        f"Metrica may have stored the upload with comment {unclear.comment} but its "
        f"answer was lost ({unclear.error}; unclear since {unclear.since:%Y-%m-%d %H:%M} "
        f"UTC){looked}. These rows wait and go in no other file until a look-up finds the "
        "upload (then they are delivered) or rules it out (then they are sent again under "
        f"the same comment); after {LOOK_FOR.days} days without an answer they become "
        "uncertain."
    )


def _unclear_details(unclear: Unclear, goals: Sequence[str]) -> dict[str, Any]:
    details: dict[str, Any] = {
        "comment": unclear.comment,
        "type": "CALLS" if unclear.calls else "BASIC",
        "batch": unclear.batch_id,
        "mixed_batch": unclear.mixed,
        "goals": sorted(set(goals)),
        "unclear_since": unclear.since.isoformat(),
        "lookups": unclear.lookups,
        "error": unclear.error,
    }
    if unclear.lookup_error:
        details["lookup_error"] = unclear.lookup_error
    return details
