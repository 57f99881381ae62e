"""What a row's outcome means for its delivery: the state machine's rules for one sent
row (the next state, the retry budget and backoff, a row kept waiting for a look-up of
its upload), and what the deliver step counts of them per destination."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from convsync.config.models import DeliveryConfig
from convsync.core.errors import DestinationUnavailable
from convsync.core.model import DeliveryState, OutboundRow, OutcomeKind, RowOutcome, Transition

_STATE_OF_OUTCOME = {
    OutcomeKind.DELIVERED: DeliveryState.DELIVERED,
    OutcomeKind.REJECTED: DeliveryState.REJECTED,
    OutcomeKind.DEFERRED: DeliveryState.DEFERRED,
    OutcomeKind.UNCERTAIN: DeliveryState.UNCERTAIN,
}
#: outcomes tried again inside the run
RETRIED = frozenset({OutcomeKind.TRANSIENT, OutcomeKind.UNCLEAR})


def transition_of(
    row: OutboundRow, outcome: RowOutcome, now: datetime, config: DeliveryConfig
) -> Transition:
    """The row's next state; ``now`` is when the outcome is known (backoff counts from
    the answer, not from the start of the send)."""
    if outcome.kind is OutcomeKind.UNCLEAR:
        # the upload may be stored: the row stays in its batch, untouchable by claims,
        # until the look-up at retry_at (the recovery step takes it back then)
        look_again = outcome.retry_at or now + config.lease
        return Transition(
            row.delivery_id,
            DeliveryState.SENDING,
            outcome.code,
            outcome.message,
            retry_at=look_again,
            lease_until=look_again,
        )
    if outcome.kind is not OutcomeKind.TRANSIENT:
        return Transition(
            row.delivery_id,
            _STATE_OF_OUTCOME[outcome.kind],
            outcome.code,
            outcome.message,
            retry_at=outcome.retry_at,
        )
    failed = row.attempts + 1
    if failed >= config.max_attempts:
        return Transition(
            row.delivery_id,
            DeliveryState.REJECTED,
            "retries_exhausted",
            f"gave up after {failed} failed attempts; last: {outcome.code}: {outcome.message}",
            count_attempt=True,
        )
    backoff = min(config.retry_backoff * (2**row.attempts), config.max_backoff)
    return Transition(
        row.delivery_id,
        DeliveryState.DEFERRED,
        outcome.code,
        outcome.message,
        retry_at=now + max(backoff, timedelta(seconds=1)),
        count_attempt=True,
    )


def held(delivery_id: int, exc: DestinationUnavailable) -> Transition:
    """A row in hand when its destination stopped: pending again, or deferred to the
    moment the platform named (a daily quota's reset)."""
    if exc.retry_at is None:
        return Transition(delivery_id, DeliveryState.PENDING, "released", "destination stopped")
    return Transition(
        delivery_id, DeliveryState.DEFERRED, exc.code, exc.message, retry_at=exc.retry_at
    )


@dataclass(slots=True)
class DestinationStats:
    """What the deliver step did for one destination in one run."""

    requests: int = 0
    batches: int = 0
    recovered: int = 0
    states: Counter[str] = field(default_factory=Counter)
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None  # why the destination stopped early (code: message)
    uploads: Counter[str] = field(default_factory=Counter)  # reconciled, by status

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": self.requests, "batches": self.batches}
        out.update(sorted(self.states.items()))
        if self.recovered:
            out["recovered"] = self.recovered
        if self.rejected_by_code:
            out["rejected_by_code"] = dict(self.rejected_by_code)
        if self.stopped:
            out["stopped"] = self.stopped
        if self.uploads:
            out["uploads"] = dict(self.uploads)
        return out

    def count(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            # a row kept in sending waits for a look-up of its upload
            self.states["unclear" if t.state is DeliveryState.SENDING else t.state.value] += 1
            if t.state is DeliveryState.REJECTED and t.code:
                self.rejected_by_code[t.code] += 1
