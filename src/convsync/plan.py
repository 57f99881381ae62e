"""The dry-run plan: one JSON object per planned delivery, ordered by destination, then
conversion time (a public contract, see DESIGN.md), written with constant memory."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from convsync.model import Conversion

_SCHEMA = "CREATE TABLE plan (dest TEXT, at REAL, seq INTEGER, line TEXT)"


class PlanWriter:
    """Collects plan lines; rows are sorted on disk (a temporary SQLite file), so a plan
    of millions of rows does not have to fit in memory."""

    def __init__(self, output: Path | None) -> None:
        self.output = output
        self.counts: dict[tuple[str, str], Counter[str]] = {}
        self._seq = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, float, int, str]] = []
        if output is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="convsync-plan-")
            self._db = sqlite3.connect(Path(self._tmp.name) / "plan.db")
            self._db.execute(_SCHEMA)

    def add(
        self,
        *,
        destination: str,
        type_name: str,
        conversion: Conversion,
        payload: Mapping[str, Any] | None = None,
        rejected: Mapping[str, str] | None = None,
        deferred: Mapping[str, str] | None = None,
        queued: bool = False,
    ) -> None:
        """One planned delivery: its payload, or why pre-flight holds it back."""
        kind = "rejected" if rejected else "deferred" if deferred else "send"
        key = (destination, conversion.goal)
        self.counts.setdefault(key, Counter())[kind] += 1
        if self._db is None:
            return
        line: dict[str, Any] = {
            "destination": destination,
            "type": type_name,
            "goal": conversion.goal,
            "conversion_key": conversion.key,
        }
        if queued:
            line["queued"] = True  # planned by an earlier run, due now
        if rejected:
            line["rejected"] = dict(rejected)
        elif deferred:
            line["deferred"] = dict(deferred)
        else:
            line["payload"] = payload
        self._seq += 1
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        self._pending.append((destination, conversion.occurred_at.timestamp(), self._seq, text))
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
