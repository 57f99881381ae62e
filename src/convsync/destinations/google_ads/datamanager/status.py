"""What Google did with each accepted request: the upload record convsync keeps of it, when
to ask ``RetrieveRequestStatus`` again, and what a final status means.

An accepted request is processed later — Google says "can take up to 24 hours", often 30
minutes. Each request is kept as one upload per conversion action it held (its request
destination), because Google reports the status per destination: the record names its
rows (``delivery_ids``), so a verdict touches exactly the rows of that request and action.
The reconcile step of later runs asks about due records — 30 minutes after the request,
then every 39, 51 and 60 minutes (Google's example: ×1.3, at most an hour) — and gives up
after 26 hours (status ``UNKNOWN``; the rows stay ``delivered``).

Final statuses:

- ``SUCCESS``: every event processed without an error → the rows become ``matched``;
- ``FAILED``: every event failed → ``unmatched`` with Google's reason (its code lower-cased)
  and what to do; but a failure for duplicates only (``DUPLICATE_TRANSACTION_ID``: a
  re-send of rows Google already had) leaves them ``delivered``;
- ``PARTIAL_SUCCESS``: some events failed — Google gives counts per reason, not which —
  so the rows stay ``delivered`` and the upload carries the counts and an explanation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from convsync.core.model import DeliveryState, UploadRecord
from convsync.destinations.followup import CheckSchedule

SCHEDULE = CheckSchedule(
    delays=(
        timedelta(minutes=30),
        timedelta(minutes=39),
        timedelta(minutes=51),
        timedelta(minutes=60),
    ),
    give_up_after=timedelta(hours=26),
)
PROCESSING = "PROCESSING"
GIVEN_UP = "UNKNOWN"
FINAL_STATUSES = frozenset({"SUCCESS", "FAILED", "PARTIAL_SUCCESS"})

_PREFIX = "PROCESSING_ERROR_REASON_"
#: processing errors that mean "Google had this already" (a re-send after a crash)
DUPLICATES = frozenset({"DUPLICATE_TRANSACTION_ID", "DUPLICATE_GCLID"})

#: processing error reason (without its prefix) → what a person can do about it
REASON_HINTS: dict[str, str] = {
    "CLICK_NOT_FOUND": "Google found no click for these click ids: check that they come from "
    "ads of this account and are captured unchanged",
    "INVALID_CLICK": "the clicks did not come from a Google Ads campaign of this account",
    "INVALID_OPERATING_ACCOUNT_FOR_CLICK": "the clicks belong to another account: customer_id "
    "must be the account that owns the conversion actions",
    "TOO_RECENT_CLICK": "the conversions were sent too soon after their clicks",
    "CONVERSION_PRECEDES_CLICK": "the conversion time is before the click: check the "
    "source's time field and timezone",
    "EVENT_TOO_OLD": "the conversions are older than Google takes",
    "DENIED_CONSENT": "the users (or the account's default) denied ad_user_data consent",
    "NO_CONSENT": "the account has not given consent for the Ads core platform services "
    "(accept the customer data terms in Google Ads)",
    "UNKNOWN_CONSENT": "Google could not tell the users' consent: map ad_user_data_consent in "
    "the source, or set consent on the destination",
    "DESTINATION_ACCOUNT_ENHANCED_CONVERSIONS_TERMS_NOT_SIGNED": "accept the enhanced "
    "conversions terms in Google Ads (Goals → Settings)",
    "INVALID_CUSTOM_VARIABLE": "check custom_variables of the goal: names as Google Ads shows them",
    "CUSTOM_VARIABLE_NOT_ENABLED": "enable the custom variables in Google Ads",
    "INVALID_GCLID": "the gclids could not be decoded: check how the source captures them",
    "INVALID_GBRAID": "the gbraids could not be decoded",
    "INVALID_WBRAID": "the wbraids could not be decoded",
    "ONE_PER_CLICK_CONVERSION_ACTION_NOT_PERMITTED_WITH_BRAID": "a one-per-click conversion "
    "action takes no gbraid or wbraid",
    "EXTERNAL_ATTRIBUTION_DATA_MISSING": "the conversion action uses external attribution, "
    "which convsync does not send",
    "INTERNAL_ERROR": "Google failed processing them; send them again later (`convsync retry`)",
    "DUPLICATE_TRANSACTION_ID": "Google already had conversions with these order ids",
    "DUPLICATE_GCLID": "Google already had conversions with these clicks and times",
}


def new_records(
    *,
    destination: str,
    request_id: str,
    rows: Mapping[str, Sequence[tuple[int, str]]],
    batch_id: str | None,
    now: datetime,
) -> list[UploadRecord]:
    """The records of a request Google accepted: one per conversion action, with its
    rows as ``(delivery id, goal)``."""
    return [
        UploadRecord(
            destination=destination,
            batch_id=f"{request_id}:{action}",
            external_id=request_id,
            status=PROCESSING,
            rows=len(action_rows),
            details={
                "conversion_action": action,
                "goals": sorted({goal for _, goal in action_rows}),
                "uploaded_at": now.isoformat(),
                "checks": 0,
                **({"batch": batch_id} if batch_id else {}),
            },
            next_check_at=SCHEDULE.first_check(now),
            delivery_ids=tuple(delivery_id for delivery_id, _ in action_rows),
        )
        for action, action_rows in rows.items()
    ]


def follow_up(record: UploadRecord, status: Any | None, now: datetime) -> UploadRecord:
    """The record after one check; ``status`` is the RequestStatusPerDestination of its
    conversion action (None: Google's answer had none for it)."""
    checks = int(record.details.get("checks", 0)) + 1
    details: dict[str, Any] = {**record.details, "checks": checks}
    name = status.request_status.name if status is not None else "REQUEST_STATUS_UNKNOWN"
    details["last_status"] = name
    if status is not None:
        details.update(_counts(status))
    if name in FINAL_STATUSES:
        return _judged(record, details, name)
    next_check = SCHEDULE.next_check(checks, details, now)
    if next_check is None:
        return record.finished(
            GIVEN_UP,
            details,
            f"Google had not finished processing request {record.external_id} after "
            f"{int(SCHEDULE.give_up_after.total_seconds() // 3600)} hours (last status {name}); "
            "convsync stopped asking. The rows stay delivered.",
        )
    return dataclasses.replace(record, status=PROCESSING, details=details, next_check_at=next_check)


def given_up(record: UploadRecord, reason: str, now: datetime) -> UploadRecord:
    """Final without a verdict: Google refused to report on the request."""
    details = {**record.details, "checks": int(record.details.get("checks", 0)) + 1}
    return record.finished(
        GIVEN_UP,
        details,
        f"Google refused to report on request {record.external_id} ({reason}); convsync "
        "stopped asking. The rows stay delivered.",
    )


def _counts(status: Any) -> dict[str, Any]:
    """Google's counts of one destination: records, errors and warnings by reason."""
    out: dict[str, Any] = {"records": int(status.events_ingestion_status.record_count)}
    errors = {
        c.reason.name.removeprefix(_PREFIX): int(c.record_count)
        for c in status.error_info.error_counts
    }
    warnings = {
        c.reason.name.removeprefix("PROCESSING_WARNING_REASON_"): int(c.record_count)
        for c in status.warning_info.warning_counts
    }
    if errors:
        out["errors"] = errors
    if warnings:
        out["warnings"] = warnings
    return out


def _judged(record: UploadRecord, details: dict[str, Any], status: str) -> UploadRecord:
    errors: dict[str, int] = dict(details.get("errors") or {})
    rows = record.rows
    action = details.get("conversion_action", "?")
    if status == "SUCCESS":
        return record.finished(status, details, None, DeliveryState.MATCHED)
    explained = _explained(errors)
    if status == "FAILED":
        if errors and set(errors) <= DUPLICATES:
            message = (
                f"Google already had the {rows} conversions of request {record.external_id} "
                f"(conversion action {action}): {explained}. They were uploaded before (a "
                "re-send after an interrupted run) and count once."
            )
            return record.finished(status, details, message)
        code = next(iter(errors)).lower() if len(errors) == 1 else "processing_failed"
        message = (
            f"Google could not use any of the {rows} conversions of request "
            f"{record.external_id} (conversion action {action}): {explained or 'no reason given'}."
        )
        return record.finished(status, details, message, DeliveryState.UNMATCHED, code)
    failed = sum(errors.values())
    message = (
        f"Google could not use {failed} of the {rows} conversions of request "
        f"{record.external_id} (conversion action {action}): {explained}. It does not say "
        "which; the others count."
    )
    return record.finished(status, details, message)


def _explained(errors: Mapping[str, int]) -> str:
    return "; ".join(
        f"{count} {reason}" + (f" ({REASON_HINTS[reason]})" if reason in REASON_HINTS else "")
        for reason, count in sorted(errors.items(), key=lambda item: -item[1])
    )
