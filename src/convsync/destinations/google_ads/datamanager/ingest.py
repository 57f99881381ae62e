"""Sending one batch through ``IngestEvents`` so that one bad row never holds back the
others, although the API fails a whole request for one invalid event (fail-fast).

- A refusal whose violations name events rejects just those rows, with Google's reason
  and a hint; the rest of the request is sent again at once, without them.
- Violations that name a request destination reject that conversion action's rows.
- A refusal that names no row (an ``INVALID_ARGUMENT`` without a usable field path) is
  halved, and each half sent, until the rows at fault are alone: one bad row among 2,000
  costs 1 + 2 × 11 requests. Halving stops after ``bisect_budget`` refused halves
  (enough for a few bad rows); the rows still not isolated are rejected with what Google
  said, for an operator to look at (``convsync retry`` sends them again).
- A failure of the call itself (quota, outage, credentials) ends the batch: rows already
  accepted keep their outcome, the others get the failure's (transient: retried by the
  worker; the destination stopped: raised, or deferred when part of the batch went).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as core_exceptions

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import OutboundRow, RowOutcome
from convsync.destinations.google_ads.client import Addresses
from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.destinations.google_ads.datamanager import classify, request
from convsync.destinations.google_ads.datamanager.api import (
    IngestEventsRequest,
    IngestEventsResponse,
)
from convsync.destinations.google_ads.datamanager.failures import CallFailure, Violation, decode

#: a batch whose destination stopped after part of it went: the rest waits this long
HELD_FOR = timedelta(minutes=15)

Send = Callable[[IngestEventsRequest], IngestEventsResponse]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request Google took: its id and the rows (batch positions) of each destination."""

    request_id: str
    rows: dict[str, tuple[int, ...]]  # reference → positions


@dataclass(slots=True)
class BatchResult:
    outcomes: list[RowOutcome]
    accepted: list[Accepted] = field(default_factory=list)
    #: the destination stopped after some rows were settled (the others wait)
    stopped: DestinationUnavailable | None = None


def bisect_budget(rows: int) -> int:
    """Refused halves allowed while isolating rows: two bad rows' worth of levels."""
    return 2 * max(1, math.ceil(math.log2(max(rows, 2)))) + 2


class BatchSender:
    """Sends the rows of one batch (one account) with as many requests as it takes."""

    def __init__(
        self,
        config: GoogleAdsConfig,
        send: Send,
        *,
        destination: str,
        now: datetime,
        validate_only: bool,
        secrets: Sequence[str] = (),
        addresses: Addresses | None = None,
    ) -> None:
        self.config = config
        self.addresses = addresses
        self.send = send
        self.destination = destination
        self.now = now
        self.validate_only = validate_only
        self.secrets = secrets

    def run(self, rows: Sequence[OutboundRow]) -> BatchResult:
        payloads = [row.payload for row in rows]
        outcomes: list[RowOutcome | None] = [None] * len(rows)
        result = BatchResult([])
        queue: deque[tuple[int, ...]] = deque([tuple(range(len(rows)))])
        budget = bisect_budget(len(rows))
        while queue:
            group = queue.popleft()
            for part in request.parts(payloads, group):
                try:
                    response = self.send(
                        request.ingest_request(
                            self.config, payloads, part, validate_only=self.validate_only
                        )
                    )
                except core_exceptions.GoogleAPICallError as exc:
                    failure = decode(exc, self.secrets)
                    if self._reject_named(failure, part, rows, outcomes):
                        rest = tuple(i for i in part.indexes if outcomes[i] is None)
                        if rest:
                            queue.append(rest)  # again at once, without the rows at fault
                        continue
                    error = classify.call_error(
                        failure,
                        destination=self.destination,
                        customer_id=self.config.customer_id,
                        now=self.now,
                        addresses=self.addresses,
                    )
                    if error is None:  # names no row: halve, or give the rows up
                        budget -= 1
                        self._isolate(failure, part, outcomes, queue, budget)
                        continue
                    self._end(error, outcomes, result)
                    queue.clear()
                    break
                for i in part.indexes:
                    outcomes[i] = (
                        RowOutcome.delivered("valid")
                        if self.validate_only
                        else RowOutcome.delivered()
                    )
                if not self.validate_only:
                    result.accepted.append(_accepted(response, part, payloads))
        result.outcomes = [o for o in outcomes if o is not None]
        assert len(result.outcomes) == len(rows), "every row of the batch has its outcome"
        return result

    def _reject_named(
        self,
        failure: CallFailure,
        part: request.Part,
        rows: Sequence[OutboundRow],
        outcomes: list[RowOutcome | None],
    ) -> bool:
        """Reject the rows the violations name (events, or all events of a destination);
        whether any was."""
        if failure.status != "INVALID_ARGUMENT":
            return False
        named: dict[int, list[Violation]] = {}
        for event, violations in failure.events.items():
            if 0 <= event < len(part.indexes):
                named.setdefault(part.indexes[event], []).extend(violations)
        for destination, violations in failure.destinations.items():
            if not 0 <= destination < len(part.references):
                continue
            if any(v.reason in classify.ACCOUNT_REASONS for v in violations):
                return False  # the account's problem: the call's error stops it
            name = part.references[destination]
            for i in part.indexes:
                if request.reference(rows[i].payload) == name:
                    named.setdefault(i, []).extend(violations)
        for i, violations in named.items():
            outcomes[i] = self._rejected(rows[i], violations, failure.request_id)
        return bool(named)

    def _rejected(
        self, row: OutboundRow, violations: Sequence[Violation], request_id: str | None
    ) -> RowOutcome:
        names = {
            "goal": row.conversion.goal,
            "source": row.conversion.source,
            "destination": self.destination,
            "customer_id": self.config.customer_id,
        }
        parts = []
        for violation in violations:
            text = violation.label
            hint = classify.hint_for(violation)
            if hint:
                hint = hint.format(**names)
                text = f"{text.rstrip('.')}. {hint[0].upper()}{hint[1:]}"
            parts.append(text)
        message = " | ".join(parts)
        if request_id:
            message += f" (Data Manager API request id {request_id})"
        return RowOutcome.rejected(classify.violation_code(violations[0]), message)

    def _isolate(
        self,
        failure: CallFailure,
        part: request.Part,
        outcomes: list[RowOutcome | None],
        queue: deque[tuple[int, ...]],
        budget: int,
    ) -> None:
        indexes = part.indexes
        if len(indexes) > 1 and budget >= 0:
            half = len(indexes) // 2
            queue.extend((indexes[:half], indexes[half:]))
            return
        alone = len(indexes) == 1
        said = "; ".join(v.label for v in failure.violations) or failure.label
        message = (
            f"The Data Manager API refused the request: {said}"
            + (f" (request id {failure.request_id})" if failure.request_id else "")
            + (
                "; it named no event, and this row alone was refused."
                if alone
                else f"; it named no event, and the rows at fault could not be isolated among "
                f"these {len(indexes)}. Check them, then `convsync retry`."
            )
        )
        first = failure.violations[0].reason if failure.violations else ""
        code = (first or failure.reason or failure.status).lower()
        for i in indexes:
            outcomes[i] = RowOutcome.rejected(code, message)

    def _end(
        self, error: Exception, outcomes: list[RowOutcome | None], result: BatchResult
    ) -> None:
        """A failure of the call: every row not settled yet gets its outcome. A stopped
        destination is raised when no row is settled (all stay pending); otherwise the
        rest waits, and ``result.stopped`` tells the destination to stop."""
        if isinstance(error, DestinationUnavailable):
            if all(o is None for o in outcomes):
                raise error
            result.stopped = error
            outcome = RowOutcome.deferred(
                error.code, error.message, error.retry_at or self.now + HELD_FOR
            )
        elif isinstance(error, TransientError):
            outcome = RowOutcome.transient(error.code, str(error), error.retry_after)
        elif isinstance(error, PermanentError):
            outcome = RowOutcome.rejected(error.code, error.message)
        else:
            raise error
        for i, settled in enumerate(outcomes):
            if settled is None:
                outcomes[i] = outcome


def _accepted(response: Any, part: request.Part, payloads: Sequence[Any]) -> Accepted:
    by_reference: dict[str, list[int]] = {}
    for i in part.indexes:
        by_reference.setdefault(request.reference(payloads[i]), []).append(i)
    return Accepted(
        str(response.request_id), {name: tuple(rows) for name, rows in by_reference.items()}
    )
