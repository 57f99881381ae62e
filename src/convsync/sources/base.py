"""The Source contract: what every source connector provides to the pipeline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from convsync.core.model import FileMark, RawRecord, RecordRejection, SourceState
from convsync.core.tokens import TokenStore


@dataclass(slots=True)
class PulledChunk:
    """A slice of a pull, recorded by the pipeline in one transaction.

    ``cursor`` (if not None) and ``files_done`` are saved in the same transaction as the
    chunk's conversions, so a crash before commit only means a re-pull.
    """

    records: list[RawRecord] = field(default_factory=list)
    rejections: list[RecordRejection] = field(default_factory=list)
    cursor: Mapping[str, Any] | None = None
    files_done: list[FileMark] = field(default_factory=list)
    #: problems that leave the run incomplete without stopping it (a glob that matches
    #: no file, an empty file): each makes the run ``degraded``
    warnings: list[str] = field(default_factory=list)
    #: risky defaults met, counted per notice code (``RunSummary.notices``)
    notices: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source needs from its surroundings."""

    timezone: ZoneInfo
    base_dir: Path  # relative paths in the config are relative to the config file
    chunk_size: int = 5000
    #: where tokens that rotate are kept between runs (the ledger); ``None`` where
    #: there is none (a dry run, a mapping process, ``convsync validate``)
    tokens: TokenStore | None = None


ConfigT = TypeVar("ConfigT", bound=BaseModel)


class Source(ABC, Generic[ConfigT]):
    """One configured source. Subclasses set ``type`` and implement ``pull``."""

    type: ClassVar[str]

    def __init__(self, name: str, config: ConfigT, context: SourceContext) -> None:
        self.name = name
        self.config = config
        self.context = context

    def check(self) -> tuple[list[str], list[str]]:
        """``(problems, warnings)`` found without pulling (``convsync validate``):
        problems will stop a sync; warnings leave it incomplete (no input yet)."""
        return [], []

    def backlog_bytes(self, state: SourceState) -> int | None:
        """Roughly how much input the next pull reads, if the source can tell cheaply;
        a large backlog is mapped in a second process."""
        return None

    @abstractmethod
    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        """Yield records changed since ``state`` in chunks of about ``chunk_size``.

        Must stream (constant memory) and never move a cursor past what was seen
        when the pull started.
        """
