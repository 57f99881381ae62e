"""Progress of a sync run while it runs: records pulled per source, rows sent per
destination, their rate, and percent and ETA where the size of the work is known.

One small interface (``ProgressReporter``: ``start_run``, ``begin``, ``advance``,
``end``, ``stop_run``) with three forms: a live ``rich`` display on a terminal
(``ProgressDisplay``), a ``progress`` log line every ``interval`` seconds anywhere else
(``ProgressLog``: ``docker logs``), and nothing at all (the base class: tests and
pipelines built without a reporter). The pipeline advances the counts once per chunk
and the destinations once per settled batch, never per record; the display refreshes
on its own timer.

How many records a pull will read is known only roughly, and only for CSV sources: the
bytes of the files not read yet over the bytes per line at the head and the end of the
largest file (``estimate_records``). It is shown as an estimate (``~``, ``estimated:
true``), and once the count passes it, it is dropped rather than shown past 100 %.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import structlog
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.file_proxy import FileProxy
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from convsync.core.logging import logs_written_to
from convsync.core.model import SourceState
from convsync.sources.base import Source
from convsync.sources.csv import CsvSource

log = structlog.get_logger("convsync.progress")

Stage = Literal["pull", "send"]

#: per stage: the log line's key for the name, and what is counted
_STAGE_KEYS: dict[Stage, tuple[str, str]] = {
    "pull": ("source", "records"),
    "send": ("destination", "rows"),
}

#: the longest bar of the live display
_BAR_WIDTH = 30

#: read at the head and at the end of a CSV file to learn its bytes per line (ids and
#: times grow longer further down a file)
_SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ProgressReading:
    """One stage of one source or destination, as it stands."""

    stage: Stage
    name: str
    done: int
    #: how many in all, when known; None once an estimate is passed
    expected: int | None
    estimated: bool
    elapsed_s: float
    finished: bool

    @property
    def rate_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def percent(self) -> float | None:
        return 100 * self.done / self.expected if self.expected else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate_per_s
        if self.expected is None or rate <= 0:
            return None
        return (self.expected - self.done) / rate

    def log_fields(self) -> dict[str, Any]:
        name_key, unit = _STAGE_KEYS[self.stage]
        fields: dict[str, Any] = {
            "stage": self.stage,
            name_key: self.name,
            unit: self.done,
            "rate_per_s": round(self.rate_per_s, 1),
            "elapsed_s": round(self.elapsed_s, 1),
        }
        if self.expected is not None:
            fields["expected"] = self.expected
            if self.estimated:
                fields["estimated"] = True
        if (percent := self.percent) is not None:
            fields["percent"] = round(percent, 1)
        if (eta := self.eta_s) is not None:
            fields["eta_s"] = round(eta)
        return fields


@dataclass(slots=True)
class _Count:
    stage: Stage
    name: str
    started: float
    expected: int | None
    estimated: bool
    done: int = 0
    ended: float | None = None

    def read(self, now: float) -> ProgressReading:
        until = now if self.ended is None else self.ended
        expected = self.expected
        if expected is not None and self.done > expected:
            expected = None  # an estimate passed: the rest is unknown
        return ProgressReading(
            self.stage,
            self.name,
            self.done,
            expected,
            self.estimated,
            max(until - self.started, 0.0),
            self.ended is not None,
        )


class ProgressReporter:
    """Reports nothing: for tests and anything run quietly."""

    def start_run(self) -> None:
        """A run begins: the counts of an earlier run are dropped."""

    def stop_run(self) -> None:
        """The run is over (also after an error): nothing is shown any more."""

    def begin(
        self, stage: Stage, name: str, *, expected: int | None = None, estimated: bool = False
    ) -> None:
        """``name`` (a source, a destination) starts ``stage``; ``expected``: how many
        records or rows it will count, when known (``estimated``: roughly)."""

    def expect(self, stage: Stage, name: str, more: int) -> None:
        """``name`` now knows it has about ``more`` still to do (a destination, once it
        has counted its due rows)."""

    def advance(self, stage: Stage, name: str, count: int) -> None:
        """``count`` more done; one writer at a time per stage and name."""

    def end(self, stage: Stage, name: str) -> None:
        """``name`` is done with ``stage``."""


NO_PROGRESS = ProgressReporter()


class _CountingReporter(ProgressReporter):
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # destinations begin on threads of their own
        self._counts: dict[tuple[Stage, str], _Count] = {}

    def start_run(self) -> None:
        with self._lock:
            self._counts = {}

    def begin(
        self, stage: Stage, name: str, *, expected: int | None = None, estimated: bool = False
    ) -> None:
        count = _Count(stage, name, self._clock(), expected, estimated)
        with self._lock:
            self._counts[(stage, name)] = count

    def expect(self, stage: Stage, name: str, more: int) -> None:
        count = self._counts[(stage, name)]
        # about: a row deferred and due again within the run is counted twice
        count.expected, count.estimated = count.done + more, True

    def advance(self, stage: Stage, name: str, count: int) -> None:
        self._counts[(stage, name)].done += count

    def end(self, stage: Stage, name: str) -> None:
        self._counts[(stage, name)].ended = self._clock()

    def readings(self, now: float) -> list[ProgressReading]:
        with self._lock:
            counts = list(self._counts.values())
        return [count.read(now) for count in counts]


class ProgressLog(_CountingReporter):
    """A ``progress`` line per source or destination at work every ``interval``
    seconds; none in a run shorter than that. Lines come when a count advances and the
    interval is up, or from a timer when nothing advances (a slow request, a retry's
    wait), so a long run never goes silent."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self._interval = interval
        self._emitting = threading.Lock()
        self._last = 0.0
        self._stopped = threading.Event()
        self._timer: threading.Thread | None = None

    def start_run(self) -> None:
        super().start_run()
        self._last = self._clock()
        self._stopped = threading.Event()
        # the timer's lines carry the run's context (run_id), bound before this call
        context = contextvars.copy_context()
        self._timer = threading.Thread(
            target=context.run, args=(self._tick,), name="progress-log", daemon=True
        )
        self._timer.start()

    def stop_run(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None

    def advance(self, stage: Stage, name: str, count: int) -> None:
        super().advance(stage, name, count)
        self._log_if_due()

    def _tick(self) -> None:
        while not self._stopped.wait(self._until_due()):
            self._log_if_due()

    def _until_due(self) -> float:
        return min(self._interval, max(self._last + self._interval - self._clock(), 0.0))

    def _log_if_due(self) -> None:
        with self._emitting:
            now = self._clock()
            if now - self._last < self._interval:
                return
            self._last = now
            for reading in self.readings(now):
                if not reading.finished:
                    log.info("progress", **reading.log_fields())


class ProgressDisplay(_CountingReporter):
    """A live table on ``console`` (stderr, a terminal): per source and destination a
    bar, the count, the rate, percent and ETA where known. While it is shown, log lines
    are printed through the same console, above the table."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.console = console
        self._shown = ExitStack()

    def start_run(self) -> None:
        super().start_run()
        live = Live(
            console=self.console,
            get_renderable=self.table,
            transient=True,
            # stdout carries the dry-run plan (--output -): never into this console
            redirect_stdout=False,
            redirect_stderr=False,
        )
        proxy = FileProxy(self.console, self.console.file)
        self._shown.enter_context(logs_written_to(cast(TextIO, proxy)))
        live.start()
        self._shown.callback(live.stop)  # first on close: the last frame, then the logs

    def stop_run(self) -> None:
        self._shown.close()

    def table(self) -> RenderableType:
        readings = self.readings(self._clock())
        rows = [_cells(reading) for reading in readings]
        text_width = sum(max(cell_len(row[i]) for row in rows) for i in range(5)) if rows else 0
        # the bar takes what the text leaves of the line: a line of the table never wraps
        bar_width = min(_BAR_WIDTH, max(4, self.console.width - text_width - 2 * 5))
        grid = Table.grid(padding=(0, 2))
        for _ in range(6):
            grid.add_column(no_wrap=True)
        for reading, (stage, name, *numbers) in zip(readings, rows, strict=True):
            grid.add_row(stage, Text(name, style="bold"), _bar(reading, bar_width), *numbers)
        return grid


def _cells(reading: ProgressReading) -> tuple[str, str, str, str, str]:
    """The table's text of one reading: stage, name, count, rate, percent and ETA."""
    count = f"{reading.done:,}"
    if reading.expected is not None and not reading.finished:
        count += f" / {'~' if reading.estimated else ''}{reading.expected:,}"
    if reading.finished:
        tail = f"done in {_duration(reading.elapsed_s)}"
    elif reading.percent is not None and reading.eta_s is not None:
        tail = f"{reading.percent:.0f}%  ETA {_duration(reading.eta_s)}"
    else:
        tail = f"{_duration(reading.elapsed_s)} elapsed"
    unit = _STAGE_KEYS[reading.stage][1]
    return (
        reading.stage,
        reading.name,
        f"{count} {unit}",
        f"{reading.rate_per_s:,.0f}/s",
        tail,
    )


def _bar(reading: ProgressReading, width: int) -> ProgressBar:
    if reading.finished:
        return ProgressBar(total=1, completed=1, width=width)
    # without a total it pulses: work going on, its size unknown
    return ProgressBar(total=reading.expected, completed=reading.done, width=width)


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def progress_on_stderr() -> ProgressReporter:
    """The live display when stderr is a terminal that can redraw; log lines otherwise."""
    console = Console(stderr=True)
    if sys.stderr.isatty() and not console.is_dumb_terminal:
        return ProgressDisplay(console)
    return ProgressLog()


def estimate_records(source: Source[Any], state: SourceState) -> int | None:
    """Roughly how many records the next pull of ``source`` reads: the bytes of its
    backlog over the bytes per line in its largest file (its head and its end). CSV
    sources only (others cannot tell their backlog); None when there is nothing to go
    by."""
    if not isinstance(source, CsvSource):
        return None
    backlog = source.backlog_bytes(state)
    if not backlog:
        return None
    sizes = []
    for _, path in source.matching_files():
        try:
            sizes.append((path.stat().st_size, path))
        except OSError:
            continue  # the pull reports it
    if not sizes:
        return None
    try:
        sample = _sample(max(sizes)[1])
    except OSError:
        return None
    lines = sample.count(b"\n")
    if not lines:
        return None
    return max(1, round(backlog * lines / len(sample)))


def _sample(path: Path) -> bytes:
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        if size <= 2 * _SAMPLE_BYTES:
            return file.read()
        head = file.read(_SAMPLE_BYTES)
        file.seek(size - _SAMPLE_BYTES)
        return head + file.read(_SAMPLE_BYTES)
