"""Pull → map → prepare rows, in this process or in a second one.

The record step is bound by SQLite; mapping (parsing, normalising, hashing) is Python.
Threads cannot overlap them (binding rows holds the GIL), so where a core and memory
are to spare (``CONVSYNC_MAP_PROCESS_MIN_BYTES`` set), a large backlog is mapped in a
child process that sends prepared rows, while this process writes them. It is off by
default: the child holds its own ~120 MB of imports and data, and the pickling costs
CPU, so on a small VM (one core, little memory) one process is the better choice.
Prepared rows, not the model's dataclasses, cross the process boundary: pickling a
chunk of dataclasses costs more than the overlap gains.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel
from sqlalchemy.engine import Dialect, make_url

from convsync.config.models import LoadedConfig
from convsync.core import sealing
from convsync.core.errors import ConvsyncError, UserError
from convsync.core.identity import contact_in
from convsync.core.model import AdjustmentCandidate, FileMark, RecordRejection, SourceState
from convsync.core.tokens import TokenStore
from convsync.destinations import new_destination
from convsync.destinations.base import Destination
from convsync.sources import load_source_class
from convsync.sources.base import PulledChunk, Source, SourceContext
from convsync.store.recording import PreparedChunk, prepare_chunk
from convsync.sync.goals import GoalMapper, MappedChunk
from convsync.sync.notices import pull_with_notices
from convsync.sync.plan import PlanEntry, plan_conversion

AnyDestination = Destination[BaseModel, BaseModel]


def make_source(
    loaded: LoadedConfig, name: str, chunk_size: int = 5000, tokens: TokenStore | None = None
) -> Source[Any]:
    cfg = loaded.app.sources[name]
    tz = ZoneInfo(cfg.timezone or loaded.app.timezone)
    context = SourceContext(
        timezone=tz, base_dir=loaded.base_dir, chunk_size=chunk_size, tokens=tokens
    )
    return load_source_class(cfg.type)(name, cfg, context)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MapJob:
    """Everything a mapping process needs (picklable)."""

    loaded: LoadedConfig
    source: str
    goals: tuple[str, ...]
    chunk_size: int
    state: SourceState
    run_id: str
    dialect: str  # "sqlite+pysqlite", "postgresql+psycopg": rows are prepared for it
    log_format: str = "json"
    log_level: str = "INFO"
    #: "record": prepared ledger rows (here or in a mapping process); "plan": dry-run
    #: plan entries, in this process (with JSON lines when ``plan_lines``)
    mode: Literal["record", "plan"] = "record"
    plan_lines: bool = False
    #: this process's key for match signals (``sealing``), taken where the job is made:
    #: rows the child seals must open in this process and the next
    seal_key: str = field(default_factory=sealing.current_key, repr=False)


@dataclass(slots=True)
class ReadyChunk:
    """A pulled chunk, mapped, its rows prepared for the ledger."""

    pulled: int
    rejections: list[RecordRejection]
    mapped: Counter[str]  # conversions per goal
    cursor: Mapping[str, Any] | None
    files_done: list[FileMark]
    prepared: PreparedChunk = field(repr=False)
    warnings: list[str] = field(default_factory=list)  # PulledChunk.warnings
    notices: Counter[str] = field(default_factory=Counter)  # the source's and the mapping's


def _mapped(
    job: MapJob, destinations: Mapping[str, AnyDestination], tokens: TokenStore | None
) -> Iterator[tuple[PulledChunk, MappedChunk]]:
    """The source's chunks with their goal mapping (nothing when no goal reads it); a
    plan's chunks without planned deliveries: the plan's entries say the same."""
    mapper = GoalMapper(job.loaded, job.source, destinations, job.goals or None)
    if not mapper.rules:
        return
    source = make_source(job.loaded, job.source, job.chunk_size, tokens)
    plan = job.mode == "record"
    for chunk in pull_with_notices(source, job.loaded.app, job.state):
        yield chunk, mapper.map(chunk.records, plan=plan)


def _without_contacts(rejections: Sequence[RecordRejection], job: MapJob) -> list[RecordRejection]:
    """A source's own rejections (a bad time, a bad row) without a record id that is an
    e-mail or a phone: like the goal rules' (``identity_in_wrong_column``), they never
    keep one."""
    region = job.loaded.app.phone_region
    return [
        dataclasses.replace(r, record_id=None)
        if r.record_id and contact_in(r.record_id, "id", region)
        else r
        for r in rejections
    ]


def ready_chunks(
    job: MapJob,
    destinations: Mapping[str, AnyDestination],
    dialect: Dialect,
    clock: Callable[[], datetime],
    tokens: TokenStore | None = None,
) -> Iterator[ReadyChunk]:
    for chunk, mapped in _mapped(job, destinations, tokens):
        prepared = prepare_chunk(
            mapped.conversions,
            mapped.deliveries,
            dialect=dialect,
            run_id=job.run_id,
            now=clock(),
            adjustments=mapped.adjustments,
        )
        yield ReadyChunk(
            pulled=len(chunk.records) + len(chunk.rejections),
            rejections=[*_without_contacts(chunk.rejections, job), *mapped.rejections],
            mapped=Counter(c.goal for c in mapped.conversions),
            cursor=chunk.cursor,
            files_done=chunk.files_done,
            prepared=prepared,
            warnings=chunk.warnings,
            notices=chunk.notices + mapped.notices,
        )


@dataclass(slots=True)
class PlannedChunk:
    """A pulled chunk, mapped, each conversion's dry-run plan entries made."""

    pulled: int
    rejections: list[RecordRejection]
    mapped: Counter[str]  # conversions per goal
    #: (conversion key, goal, its plan entries)
    conversions: list[tuple[str, str, list[PlanEntry]]]
    #: records that may adjust conversions recorded before
    adjustments: list[AdjustmentCandidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # PulledChunk.warnings
    notices: Counter[str] = field(default_factory=Counter)  # the source's and the mapping's


def planned_chunks(
    job: MapJob,
    destinations: Mapping[str, AnyDestination],
    clock: Callable[[], datetime],
    tokens: TokenStore | None = None,
) -> Iterator[PlannedChunk]:
    for chunk, mapped in _mapped(job, destinations, tokens):
        now = clock()
        planned = []
        for c in mapped.conversions:
            targets = job.loaded.targets[c.goal]
            entries = plan_conversion(c, targets, destinations, now, with_line=job.plan_lines)
            planned.append((c.key, c.goal, entries))
        yield PlannedChunk(
            pulled=len(chunk.records) + len(chunk.rejections),
            rejections=[*_without_contacts(chunk.rejections, job), *mapped.rejections],
            mapped=Counter(c.goal for c in mapped.conversions),
            conversions=planned,
            adjustments=mapped.adjustments,
            warnings=chunk.warnings,
            notices=chunk.notices + mapped.notices,
        )


class MappingFailed(ConvsyncError):
    """The mapping process ended with an unexpected error (its traceback is the text)."""


def _put(out: multiprocessing.Queue[tuple[str, Any]], item: tuple[str, Any]) -> None:
    """Hand an item over; give up (exit) if the parent died: nobody would ever read it."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            out.put(item, timeout=1.0)
        except queue.Full:
            if parent is not None and not parent.is_alive():
                raise SystemExit(1) from None
        else:
            return


def _child_main(job: MapJob, out: multiprocessing.Queue[tuple[str, Any]]) -> None:
    from convsync.core.logging import configure_logging, register_secret

    configure_logging(job.log_format, job.log_level)
    sealing.configure(job.seal_key)
    for secret in (*job.loaded.secrets, job.seal_key):
        register_secret(secret)
    structlog.contextvars.bind_contextvars(run_id=job.run_id, process="mapping")
    destinations = {
        name: new_destination(name, cfg) for name, cfg in job.loaded.app.destinations.items()
    }

    def clock() -> datetime:
        return datetime.now(UTC)

    try:
        dialect = make_url(f"{job.dialect}://").get_dialect()()
        for ready in ready_chunks(job, destinations, dialect, clock):
            _put(out, ("chunk", ready))
        _put(out, ("done", None))
    except UserError as exc:
        _put(out, ("user_error", str(exc)))
    except Exception:  # noqa: BLE001 (the child process's top-level handler: the parent re-raises it)
        _put(out, ("error", traceback.format_exc()))


class MappingProcess:
    """Iterates the ``ReadyChunk``s a child process maps for the record step (a dry run
    maps in its own process); at most one waits in the pipe."""

    def __init__(self, job: MapJob) -> None:
        if job.mode != "record":
            raise ValueError("a mapping process prepares ledger rows only")
        context = multiprocessing.get_context("spawn")  # no fork: the parent has threads
        self._queue: multiprocessing.Queue[tuple[str, Any]] = context.Queue(maxsize=1)
        self._process = context.Process(
            target=_child_main, args=(job, self._queue), name="convsync-mapping", daemon=True
        )

    def __iter__(self) -> Iterator[ReadyChunk]:
        self._process.start()
        while True:
            try:
                kind, payload = self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    raise MappingFailed(
                        f"the mapping process ended (exit code {self._process.exitcode}) "
                        "without finishing"
                    ) from None
                continue
            if kind == "chunk":
                yield payload
            elif kind == "done":
                return
            elif kind == "user_error":
                raise UserError(payload)
            else:
                raise MappingFailed(f"the mapping process failed:\n{payload}")

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        if self._process.pid is not None:
            self._process.join(timeout=10)
        self._queue.close()
