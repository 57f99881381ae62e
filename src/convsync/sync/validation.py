"""``convsync sync --once --validate``: every due delivery checked by its platform without
being recorded there (Google Ads ``validate_only``), and no delivery changing state.

One JSON line per row goes to the output (a file, or stdout for ``-``):
``{"destination", "type", "goal", "conversion_key", "order_id", ["adjustment"],
"result": "valid" | "rejected" | "deferred" | "skipped" | "transient", ["code", "message"]}``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import structlog
from pydantic import BaseModel

from convsync.config.models import DeliveryConfig
from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import (
    ClaimedDelivery,
    Conversion,
    DeliveryState,
    OutboundRow,
    OutcomeKind,
    RowOutcome,
    Transition,
)
from convsync.core.retry import transient_retry
from convsync.destinations.base import Destination
from convsync.store.ledger import Ledger
from convsync.sync.outbound import prepare

log = structlog.get_logger("convsync.validation")

AnyDestination = Destination[BaseModel, BaseModel]

_RESULT_OF_OUTCOME = {
    OutcomeKind.DELIVERED: "valid",
    OutcomeKind.REJECTED: "rejected",
    OutcomeKind.DEFERRED: "deferred",
    OutcomeKind.TRANSIENT: "transient",
    OutcomeKind.UNCERTAIN: "transient",
    OutcomeKind.UNCLEAR: "transient",
}
_RESULT_OF_STATE = {
    DeliveryState.REJECTED: "rejected",
    DeliveryState.DEFERRED: "deferred",
    DeliveryState.SKIPPED: "skipped",
}


class Validator:
    """Checks the due deliveries of every destination; ``counts`` per destination."""

    def __init__(
        self,
        destinations: Mapping[str, AnyDestination],
        targets: Mapping[str, Mapping[str, BaseModel]],
        ledger: Ledger,
        config: DeliveryConfig,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] | None = None,
        initial_wait: float = 5.0,
    ) -> None:
        self.destinations = destinations
        self.targets = targets
        self.ledger = ledger
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.initial_wait = initial_wait
        self.counts: dict[str, dict[str, Any]] = {}

    def run(self, output: Path | None) -> dict[str, dict[str, Any]]:
        with _opened(output) as out:
            for name, dest in self.destinations.items():
                self.counts[name] = self._destination(name, dest, out)
        return self.counts

    def _destination(self, name: str, dest: AnyDestination, out: IO[str]) -> dict[str, Any]:
        if not dest.supports_validation:
            log.info("destination not validated", destination=name, type=dest.type)
            return {"not_checked": f"{dest.type} has no validate-only mode"}
        counts: Counter[str] = Counter()
        try:
            dest.connect()
            for batch in self._batches(name, dest.max_batch):
                self._check(dest, batch, counts, out)
        except DestinationUnavailable as exc:
            log.warning("destination stopped", destination=name, code=exc.code, reason=exc.message)
            return {**counts, "stopped": f"{exc.code}: {exc.message}"}
        finally:
            dest.close()
        return dict(counts)

    def _batches(self, name: str, size: int) -> Iterator[list[ClaimedDelivery]]:
        batch: list[ClaimedDelivery] = []
        for row in self.ledger.due_deliveries(destination=name, now=self.clock()):
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _check(
        self,
        dest: AnyDestination,
        rows: Sequence[ClaimedDelivery],
        counts: Counter[str],
        out: IO[str],
    ) -> None:
        # conversions and adjustments go in requests of their own, as in the deliver step
        for group in (
            [r for r in rows if r.adjustment is None],
            [r for r in rows if r.adjustment is not None],
        ):
            if not group:
                continue
            by_id = {r.delivery_id: r for r in group}
            outbound, held = prepare(
                dest, self.targets, group, self.clock(), wait=self.config.retry_backoff
            )
            for transition in held:
                self._write(dest, by_id[transition.delivery_id], _held_line(transition), out)
                counts[_RESULT_OF_STATE.get(transition.state, "deferred")] += 1
            for row, outcome in zip(outbound, self._validate(dest, outbound), strict=True):
                result = _RESULT_OF_OUTCOME[outcome.kind]
                counts[result] += 1
                line: dict[str, Any] = {"result": result}
                if outcome.code:
                    line["code"] = outcome.code
                if outcome.message and result != "valid":
                    line["message"] = outcome.message
                self._write(dest, by_id[row.delivery_id], line, out)

    def _validate(self, dest: AnyDestination, rows: list[OutboundRow]) -> list[RowOutcome]:
        if not rows:
            return []
        retrying = transient_retry(
            attempts=self.config.retries_in_run + 1,
            initial_wait=self.initial_wait,
            sleep=self.sleep,
        )
        try:
            for tries in retrying:
                with tries:
                    return dest.validate(rows)
        except TransientError as exc:
            return [RowOutcome.transient(exc.code, str(exc))] * len(rows)
        except PermanentError as exc:
            return [RowOutcome.rejected(exc.code, exc.message)] * len(rows)
        raise AssertionError("unreachable: the retry loop returns or raises")

    @staticmethod
    def _write(
        dest: AnyDestination, row: ClaimedDelivery, result: Mapping[str, Any], out: IO[str]
    ) -> None:
        out.write(json.dumps({**_describe(dest, row), **result}, ensure_ascii=False))
        out.write("\n")


def _describe(dest: AnyDestination, row: ClaimedDelivery) -> dict[str, Any]:
    conversion: Conversion = row.conversion
    line: dict[str, Any] = {
        "destination": dest.name,
        "type": dest.type,
        "goal": row.goal,
        "conversion_key": conversion.key,
        "order_id": conversion.order_id,
    }
    if row.adjustment is not None:
        line["adjustment"] = row.adjustment.kind.value
    return line


def _held_line(transition: Transition) -> dict[str, Any]:
    line: dict[str, Any] = {
        "result": _RESULT_OF_STATE.get(transition.state, "deferred"),
        "code": transition.code,
        "message": transition.message,
    }
    if transition.retry_at is not None:
        line["retry_at"] = transition.retry_at.isoformat()
    return line


@contextmanager
def _opened(output: Path | None) -> Iterator[IO[str]]:
    if output is None or str(output) == "-":
        yield sys.stdout
        return
    with output.open("w", encoding="utf-8") as out:
        yield out
