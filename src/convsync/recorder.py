"""The record step, overlapped with mapping.

Mapping is Python work; writing a chunk is mostly SQLite (which releases the GIL) and
the commit's fsync. Writing chunk N on a second thread while chunk N+1 is mapped uses
the machine's second core. At most one write is in flight, so memory stays bounded and
chunks (and their cursors) commit in the order they were pulled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import TracebackType

from convsync.model import Conversion, PlannedDelivery, RecordRejection
from convsync.sources.base import PulledChunk
from convsync.store.ledger import Ledger, RecordCounts


class ChunkRecorder:
    """Writes chunks of one source, one at a time, behind the mapping."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        run_id: str,
        source: str,
        stats: Counter[str],
        clock: Callable[[], datetime],
        keep_cursor: bool,
    ) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.source = source
        self.stats = stats
        self.clock = clock
        # a goal filter maps only some goals: then the cursor must not move past records
        # that the other goals have not seen yet
        self.keep_cursor = keep_cursor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record")
        self._in_flight: Future[RecordCounts] | None = None

    def submit(
        self,
        chunk: PulledChunk,
        conversions: Sequence[Conversion],
        deliveries: Sequence[PlannedDelivery],
        rejections: Sequence[RecordRejection],
    ) -> None:
        """Queue one chunk; waits for the previous one (and re-raises its error)."""
        self._collect()
        self._in_flight = self._pool.submit(
            self.ledger.record_chunk,
            run_id=self.run_id,
            source=self.source,
            conversions=conversions,
            deliveries=deliveries,
            rejections=rejections,
            cursor=chunk.cursor if self.keep_cursor else None,
            files_done=chunk.files_done if self.keep_cursor else [],
            now=self.clock(),
        )

    def _collect(self) -> None:
        if self._in_flight is None:
            return
        counts = self._in_flight.result()
        self._in_flight = None
        self.stats["new"] += counts.new_conversions
        self.stats["planned"] += counts.pending
        self.stats["skipped"] += counts.skipped

    def __enter__(self) -> ChunkRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                self._collect()
        finally:
            self._pool.shutdown(wait=True)
