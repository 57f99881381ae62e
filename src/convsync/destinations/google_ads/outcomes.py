"""From Google's answer to one outcome per row, or to the batch error the worker expects.

- A row with no error is delivered (``valid`` in a validate-only request): success is
  never read from the echoed results, only from the absence of an error at the row.
- A row with errors gets every one of them in its message; the most severe verdict
  (``classify.Verdict``) decides its outcome.
- Errors not attributed to a row apply to every row of the request.
- When the whole request failed, unattributed transient errors raise ``TransientError``,
  unattributed permanent ones ``PermanentError``; errors that name rows reject, defer … just
  those rows and the others are sent again (``not_processed``: nothing of a failed request
  was recorded). Credentials and access errors raise ``DestinationUnavailable`` anywhere,
  and so does a used-up daily quota for a whole request (with ``retry_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import OutboundRow, RowOutcome
from convsync.destinations.google_ads import classify
from convsync.destinations.google_ads.classify import Rule, Verdict
from convsync.destinations.google_ads.failures import ApiError, longest_delay

#: the code of rows deferred because the day's quota is used up
DAILY_QUOTA_CODE = "daily_quota_exhausted"
_UNATTRIBUTED_SUCCESS = Rule(Verdict.TRANSIENT)


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's rows and what the outcomes need to know about it."""

    rows: Sequence[OutboundRow]
    rows_field: str  # "conversions" | "conversion_adjustments"
    now: datetime
    destination: str
    customer_id: str
    validate_only: bool = False
    request_id: str | None = None

    def row(self, index: int | None) -> OutboundRow | None:
        return self.rows[index] if index is not None and 0 <= index < len(self.rows) else None


@dataclass(frozen=True, slots=True)
class _Ruled:
    error: ApiError
    rule: Rule

    @property
    def code(self) -> str:
        return classify.outcome_code(self.error.name, self.rule)


def judge(batch: Batch, errors: Sequence[ApiError], *, request_failed: bool) -> list[RowOutcome]:
    """One outcome per row of ``batch`` from the errors of its request (maybe none)."""
    by_row: dict[int, list[ApiError]] = {}
    unattributed: list[ApiError] = []
    for error in errors:
        if batch.row(error.index) is None:
            unattributed.append(error)
        else:
            assert error.index is not None
            by_row.setdefault(error.index, []).append(error)

    stop = [r for r in _rule_all(batch, errors) if r.rule.verdict is Verdict.UNAVAILABLE]
    if stop:
        raise DestinationUnavailable(stop[0].code, _sentence(batch, None, stop))
    if request_failed and unattributed:
        _raise_for_request(batch, _rule_all(batch, unattributed))

    outcomes: list[RowOutcome] = []
    for index, row in enumerate(batch.rows):
        row_errors = by_row.get(index, []) + unattributed
        if not row_errors and request_failed:
            outcomes.append(
                RowOutcome.transient(
                    "not_processed",
                    "Google Ads refused the request because of other rows of the batch; this "
                    "row was not recorded and is sent again without them.",
                )
            )
        else:
            outcomes.append(_judge_row(batch, row, row_errors))
    return outcomes


def _raise_for_request(batch: Batch, ruled: list[_Ruled]) -> None:
    """Raise for the errors of a failed request that name no row, if they decide it."""
    quota = [r for r in ruled if r.rule.verdict is Verdict.DAILY_QUOTA]
    if quota:
        reset = classify.next_quota_reset(batch.now)
        raise DestinationUnavailable(
            DAILY_QUOTA_CODE,
            f"{_sentence(batch, None, quota)} The daily quota of Google Ads API operations "
            f"is used up; deliveries wait until it resets at {reset:%Y-%m-%d %H:%M} UTC.",
            retry_at=reset,
        )
    worst = max(r.rule.verdict for r in ruled)
    decisive = [r for r in ruled if r.rule.verdict is worst]
    if worst is Verdict.TRANSIENT:
        raise TransientError(
            _sentence(batch, None, ruled),
            retry_after=longest_delay([r.error for r in decisive]),
            code=decisive[0].code,
        )
    if worst is Verdict.REJECT:
        raise PermanentError(decisive[0].code, _sentence(batch, None, ruled))
    # DEFER / DELIVERED for the whole request: applied to every row by the caller.


def _judge_row(batch: Batch, row: OutboundRow, errors: list[ApiError]) -> RowOutcome:
    if not errors:
        return RowOutcome.delivered("valid") if batch.validate_only else RowOutcome.delivered()
    ruled = [_rule(e, row, attributed=batch.row(e.index) is row) for e in errors]
    worst = max(r.rule.verdict for r in ruled)
    decisive = [r for r in ruled if r.rule.verdict is worst]
    code = decisive[0].code
    message = _sentence(batch, row, ruled)
    if worst is Verdict.DELIVERED:
        return RowOutcome.delivered(code, message)
    if worst is Verdict.TRANSIENT:
        return RowOutcome.transient(code, message, longest_delay([r.error for r in decisive]))
    if worst in (Verdict.DEFER, Verdict.DAILY_QUOTA):
        later = [r for r in ruled if r.rule.verdict in (Verdict.DEFER, Verdict.DAILY_QUOTA)]
        return RowOutcome.deferred(code, message, max(_due(batch, row, r) for r in later))
    return RowOutcome.rejected(code, message)


def _due(batch: Batch, row: OutboundRow, ruled: _Ruled) -> datetime:
    if ruled.rule.verdict is Verdict.DAILY_QUOTA:
        return classify.next_quota_reset(batch.now)
    return classify.defer_until(ruled.rule, batch.now, row.conversion.occurred_at)


def _rule(error: ApiError, row: OutboundRow | None, *, attributed: bool = True) -> _Ruled:
    rule = classify.rule_for(
        error.field,
        error.name,
        retry_delay=error.retry_delay,
        # EC4L: the row carries hashed e-mail/phone (see classify.rule_for)
        matched_by_identifiers=row is not None and bool(row.payload.get("user_identifiers")),
    )
    if not attributed and rule.verdict is Verdict.DELIVERED:
        # "already there" that names no row cannot say which rows arrived: never read it
        # as success for all of them; sent again, each row gets its own answer.
        rule = _UNATTRIBUTED_SUCCESS
    return _Ruled(error, rule)


def _rule_all(batch: Batch, errors: Sequence[ApiError]) -> list[_Ruled]:
    return [_rule(e, batch.row(e.index)) for e in errors]


def _sentence(batch: Batch, row: OutboundRow | None, ruled: Sequence[_Ruled]) -> str:
    """``NAME: Google's message. Hint.`` for every error, joined by `` | ``."""
    rows = batch.rows if row is None else [row]
    goals = sorted({r.conversion.goal for r in rows})
    names = {
        "goal": goals[0] if len(goals) == 1 else "<goal>",
        "destination": batch.destination,
        "customer_id": batch.customer_id,
    }
    parts = []
    for r in ruled:
        text = r.error.label.rstrip()
        if r.rule.hint:
            hint = r.rule.hint.format(**names)
            text = f"{text.rstrip('.')}. {hint[0].upper()}{hint[1:]}"
        parts.append(text)
    text = " | ".join(parts)
    if row is None and batch.request_id:
        text += f" (Google Ads request id {batch.request_id})"
    return text
