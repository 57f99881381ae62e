"""The dry-run plan: one JSON object per planned delivery, ordered by destination, then
conversion time (a public contract, see DESIGN.md), written with constant memory."""

from __future__ import annotations

import functools
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from convsync.core.errors import RowDeferred, RowProblem, RowSkipped
from convsync.core.jsontext import dumps
from convsync.core.model import (
    Adjustment,
    ClaimedDelivery,
    Conversion,
    DeliveryState,
    Transition,
    no_identifier,
)
from convsync.destinations.base import Destination
from convsync.sync.outbound import prepare
from convsync.sync.summary import Tally

_SCHEMA = "CREATE TABLE plan (dest TEXT, at REAL, seq INTEGER, line TEXT)"


#: one planned delivery: (destination, goal, conversion time as a Unix timestamp,
#: kind — "send", "deferred", "rejected" or "skipped" —, its JSON line or None when no
#: plan file is written, the order id, and for a row not sent its code and message). A
#: plain tuple: it crosses from a mapping process cheaply.
PlanEntry = tuple[str, str, float, str, str | None, str, tuple[str, str] | None]


def plan_entry(
    dest: Destination[Any, Any],
    conversion: Conversion,
    target: BaseModel,
    now: datetime,
    *,
    queued: bool,
    with_line: bool,
) -> PlanEntry:
    """What would happen to one delivery: the exact payload, or why pre-flight holds it."""
    try:
        payload = dest.build(conversion, target, now)
    except RowProblem as exc:
        return _entry(dest, conversion, None, exc, queued=queued, with_line=with_line)
    return _entry(dest, conversion, None, payload, queued=queued, with_line=with_line)


def row_entry(
    dest: Destination[Any, Any],
    row: ClaimedDelivery,
    targets: Mapping[str, Mapping[str, BaseModel]],
    now: datetime,
    *,
    wait: timedelta,
    queued: bool,
    with_line: bool,
) -> PlanEntry:
    """The entry of a ledger row (a queued delivery, or an adjustment), through the same
    pre-flight the deliver step runs."""
    outbound, held = prepare(dest, targets, [row], now, wait=wait)
    outcome: Mapping[str, Any] | Transition = outbound[0].payload if outbound else held[0]
    return _entry(dest, row.conversion, row.adjustment, outcome, queued=queued, with_line=with_line)


def _entry(
    dest: Destination[Any, Any],
    conversion: Conversion,
    adjustment: Adjustment | None,
    outcome: Mapping[str, Any] | RowProblem | Transition,
    *,
    queued: bool,
    with_line: bool,
) -> PlanEntry:
    line: dict[str, Any] = {
        "destination": dest.name,
        "type": dest.type,
        "goal": conversion.goal,
        "conversion_key": conversion.key,
        "order_id": conversion.order_id,
    }
    if adjustment is not None:
        line["adjustment"] = adjustment.kind.value
    if queued:
        line["queued"] = True  # planned by an earlier run, due now
    reason = None
    if isinstance(outcome, RowProblem | Transition):
        reason = (outcome.code or "", outcome.message or "")
        retry_at = outcome.retry_at if isinstance(outcome, RowDeferred | Transition) else None
        kind = "deferred" if retry_at is not None else "rejected"
        if isinstance(outcome, RowSkipped) or (
            isinstance(outcome, Transition) and outcome.state is DeliveryState.SKIPPED
        ):
            kind = "skipped"
        line[kind] = {"code": outcome.code, "message": outcome.message}
        if retry_at is not None:
            line[kind]["retry_at"] = retry_at.isoformat()
    else:
        kind = "send"
        line["payload"] = dest.shown_payload(outcome)
    text = dumps(line) if with_line else None
    at = conversion.occurred_at.timestamp()
    return (dest.name, conversion.goal, at, kind, text, conversion.order_id, reason)


def plan_conversion(
    conversion: Conversion,
    targets: Mapping[str, BaseModel],
    destinations: Mapping[str, Destination[Any, Any]],
    now: datetime,
    *,
    with_line: bool,
) -> list[PlanEntry]:
    """The entries of a new conversion, one per destination: its payload, why pre-flight
    holds it, or why it is skipped (no identifier the platform can match)."""
    entries: list[PlanEntry] = []
    for dest_name, target in targets.items():
        dest = destinations[dest_name]
        if dest.has_identifier(conversion, target):
            entries.append(
                plan_entry(dest, conversion, target, now, queued=False, with_line=with_line)
            )
        else:
            entries.append(_skipped(dest.name, dest.type, conversion, with_line))
    return entries


def _skipped(name: str, kind: str, conversion: Conversion, with_line: bool) -> PlanEntry:
    """The entry of a conversion no identifier of which the platform can match: the line
    ``_entry`` would write, from a template (often half of a plan's lines)."""
    head, tail, reason = _skipped_template(name, kind, conversion.goal)
    text = None
    if with_line:
        order_id = dumps(conversion.order_id)
        text = f'{head}"conversion_key":"{conversion.key}","order_id":{order_id},{tail}'
    at = conversion.occurred_at.timestamp()
    return (name, conversion.goal, at, "skipped", text, conversion.order_id, reason)


@functools.lru_cache(maxsize=256)
def _skipped_template(name: str, kind: str, goal: str) -> tuple[str, str, tuple[str, str]]:
    code, message = no_identifier(kind)
    head = dumps({"destination": name, "type": kind, "goal": goal})[:-1] + ","
    tail = dumps({"skipped": {"code": code, "message": message}})[1:]
    return head, tail, (code, message)


class PlanWriter:
    """Collects plan lines; rows are sorted on disk (a temporary SQLite file), so a plan
    of millions of rows does not have to fit in memory."""

    def __init__(self, output: Path | None) -> None:
        self.output = output
        self.counts: dict[tuple[str, str], Counter[str]] = {}
        #: rows not sent, per (destination, goal, kind, code)
        self.held: dict[tuple[str, str, str, str], Tally] = {}
        self._seq = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, float, int, str]] = []
        if output is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="convsync-plan-")
            self._db = sqlite3.connect(Path(self._tmp.name) / "plan.db")
            self._db.execute(_SCHEMA)

    @property
    def with_lines(self) -> bool:
        """Whether entries need their JSON line (a plan file is written)."""
        return self._db is not None

    def add(self, entry: PlanEntry) -> None:
        destination, goal, at, kind, line, order_id, reason = entry
        counts = self.counts.get((destination, goal))
        if counts is None:
            counts = self.counts[(destination, goal)] = Counter()
        counts[kind] += 1
        if reason is not None:
            code, message = reason
            held = self.held.get((destination, goal, kind, code))
            if held is None:
                held = self.held[(destination, goal, kind, code)] = Tally()
            held.add(order_id, message)
        if self._db is None or line is None:
            return
        self._seq += 1
        self._pending.append((destination, at, self._seq, line))
        if len(self._pending) >= 10_000:
            self._flush()

    def _flush(self) -> None:
        if self._db is not None and self._pending:
            self._db.executemany("INSERT INTO plan VALUES (?, ?, ?, ?)", self._pending)
            self._pending.clear()

    def finish(self) -> None:
        """Write the ordered plan (to ``output``; ``-`` means stdout)."""
        if self._db is None or self.output is None:
            return
        self._flush()
        rows = self._db.execute("SELECT line FROM plan ORDER BY dest, at, seq")
        if str(self.output) == "-":
            import sys

            self._write(rows, sys.stdout)
        else:
            with self.output.open("w", encoding="utf-8") as out:
                self._write(rows, out)
        self.close()

    @staticmethod
    def _write(rows: sqlite3.Cursor, out: IO[str]) -> None:
        for (line,) in rows:
            out.write(line)
            out.write("\n")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
