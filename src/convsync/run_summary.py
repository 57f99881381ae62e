"""What a sync run is asked to do (``SyncOptions``) and what it did (``RunSummary``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


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

    @property
    def has_failures(self) -> bool:
        if self.status != "ok":
            return True
        if any(c.get("rejected", 0) for c in self.sources.values()):
            return True
        if any(c.get("rejected", 0) for c in self.plan.values()):
            return True
        if any(v.get("rejected") or v.get("stopped") for v in self.validation.values()):
            return True
        return any(d.get("rejected") or d.get("stopped") for d in self.destinations.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "sources": {k: dict(v) for k, v in self.sources.items()},
            "goals": {k: dict(v) for k, v in self.goals.items()},
            "destinations": self.destinations,
            **({"validation": self.validation} if self.validation else {}),
        }
