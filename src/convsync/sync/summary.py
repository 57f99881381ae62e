"""What a sync run is asked to do (``SyncOptions``) and what it did (``RunSummary``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from convsync.core.model import DEGRADED, FAILED, INTERRUPTED, OK


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    #: record as usual, then check every due delivery with the platform (validate-only)
    #: instead of sending it
    validate: bool = False
    output: Path | None = None  # dry-run plan / validation results (JSON lines); "-": stdout
    sources: tuple[str, ...] = ()  # only these sources (default: all)
    goals: tuple[str, ...] = ()  # only these goals (default: all)
    trigger: str = "once"


#: how many examples (order ids, file:line) a summary shows per reason
EXAMPLES_SHOWN = 3


@dataclass
class Tally:
    """Rows held back for one reason: how many, the first few of them, the first
    message (a platform's words may differ a little from row to row)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    message: str = ""

    def add(self, example: str, message: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES_SHOWN:
            self.examples.append(example)
        self.message = self.message or message


@dataclass
class RunSummary:
    run_id: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    sources: dict[str, Counter[str]] = field(default_factory=dict)
    goals: dict[str, Counter[str]] = field(default_factory=dict)
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    #: --validate: per destination, how many due rows were valid, rejected, …
    validation: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_errors: list[str] = field(default_factory=list)
    ledger: str = ""  # the ledger's URL, password masked
    #: source records rejected, per (source, code)
    rejected_records: dict[tuple[str, str], Tally] = field(default_factory=dict)
    #: dry run: deliveries not sent, per (destination, goal, kind, code)
    held: dict[tuple[str, str, str, str], Tally] = field(default_factory=dict)
    #: what left the run incomplete without stopping it (a source glob that matches no
    #: file, an empty file): the run is ``degraded``
    warnings: list[str] = field(default_factory=list)
    #: risky defaults met, counted per notice code (times without an offset read as UTC,
    #: phones without a country code dropped): advice, not a failure
    notices: Counter[str] = field(default_factory=Counter)
    risky_defaults: list[str] = field(default_factory=list)  # the notices, in words

    def conclude(self, *, interrupted: bool) -> str:
        """The run's status from what happened, in the one set of status words:
        ``failed`` when the run could do nothing of a part (a source the config does not
        fit) or no destination could deliver (every one stopped); ``degraded`` when it
        ran but something needs a look (a destination stopped while others delivered, a
        rejected record or delivery, a warning: a source without input, a backlog older
        than ``health.max_pending_age``, a source silent longer than
        ``health.max_source_silence``); else ``ok``."""
        parts = {**self.destinations, **self.validation}
        stopped = [name for name, d in parts.items() if d.get("stopped") or d.get("error")]
        if interrupted:
            self.status = INTERRUPTED
        elif self.user_errors or (stopped and len(stopped) == len(parts)):
            self.status = FAILED
        elif stopped or self.warnings or self._rejected():
            self.status = DEGRADED
        else:
            self.status = OK
        return self.status

    def _rejected(self) -> bool:
        counts = (*self.sources.values(), *self.plan.values(), *self.validation.values())
        return any(c.get("rejected") for c in (*counts, *self.destinations.values()))

    @property
    def exit_code(self) -> int:
        """0 only for ``ok``; 2 when the user must fix a config or a file; else 1."""
        if self.status == OK:
            return 0
        return 2 if self.user_errors else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "sources": {k: dict(v) for k, v in self.sources.items()},
            "goals": {k: dict(v) for k, v in self.goals.items()},
            "destinations": self.destinations,
            **({"warnings": self.warnings} if self.warnings else {}),
            **({"notices": dict(self.notices)} if self.notices else {}),
            **({"validation": self.validation} if self.validation else {}),
        }
