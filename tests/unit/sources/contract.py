"""The contract every source keeps, tested once for all of them.

A source's test module inherits ``SourceContract`` in a ``Test…`` class and provides
one fixture, ``contract_case``: a factory ``(variant, chunk_size) -> ContractCase``
that builds the source over fresh test data each time it is called:

- ``"good"``: only valid records, whose ids are ``expected_ids``;
- ``"bad"``: the same kind of data with at least one broken record (an empty id, a
  time that is not a time); ``expected_ids`` are the valid ones around it.

The test data should hold raw e-mails and phones (listed in ``pii``), and the bad
record should carry one where the source might quote it, so the redaction check bites.

Cursor-based sources re-read a lookback window: override ``allowed_repull`` to say
which ids a second pull may yield again.

Incremental sources (``has_cursor = True``, the default; a source without a cursor,
such as ``csv``, sets ``has_cursor = False``) must also pass the cursor tests:

- every chunk's cursor is JSON-safe (it is saved in the ledger as JSON) and, where
  ``cursor_position`` says how to order cursors, never moves back — within a pull and
  from one pull to the next;
- a restart from the state saved after *any* chunk loses nothing: every record after
  that chunk arrives, and the records that come again are only those
  ``allowed_repull_after`` allows (by default ``allowed_repull``);
- ``ContractCase.lookback_ids``, when set, are the records a second pull must yield
  again (the lookback overlap);
- no ``ContractCase.secrets`` (and no raw ``pii``) in any log line emitted during the
  pull (at DEBUG, through the real logging setup), in origins, reasons or cursors.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pytest
import structlog

from convsync.core.logging import NOISY_LOGGERS, configure_logging
from convsync.core.model import FileMark, RawRecord, RecordRejection, SourceState
from convsync.sources.base import PulledChunk, Source

Variant = Literal["good", "bad"]


@dataclass
class ContractCase:
    source: Source[Any]
    expected_ids: set[str]
    pii: list[str] = field(default_factory=list)
    #: credentials the source was given (tokens, passwords): never in logs or records
    secrets: list[str] = field(default_factory=list)
    #: ids a second pull from the saved state must yield again (the lookback window);
    #: None: not checked
    lookback_ids: set[str] | None = None


CaseFactory = Callable[[Variant, int], ContractCase]


def fold_state(previous: SourceState, chunks: Iterable[PulledChunk]) -> SourceState:
    """The state the pipeline saves after recording ``chunks`` one by one."""
    cursor: Mapping[str, Any] | None = previous.cursor
    files: dict[str, FileMark] = dict(previous.files)
    for chunk in chunks:
        if chunk.cursor is not None:
            cursor = chunk.cursor
        for mark in chunk.files_done:
            files[mark.path] = mark
    return SourceState(cursor=cursor, files=files)


def pull_all(source: Source[Any], state: SourceState | None = None) -> list[PulledChunk]:
    return list(source.pull(state if state is not None else SourceState()))


def records_of(chunks: Iterable[PulledChunk]) -> list[RawRecord]:
    return [record for chunk in chunks for record in chunk.records]


def rejections_of(chunks: Iterable[PulledChunk]) -> list[RecordRejection]:
    return [rejection for chunk in chunks for rejection in chunk.rejections]


def states_after_each_chunk(chunks: Iterable[PulledChunk]) -> list[SourceState]:
    """The state the pipeline has saved after each chunk of a pull from scratch."""
    states: list[SourceState] = []
    state = SourceState()
    for chunk in chunks:
        state = fold_state(state, [chunk])
        states.append(state)
    return states


class SourceContract:
    #: False for a source without a cursor (files manifest only): skips the cursor tests
    has_cursor: ClassVar[bool] = True

    def allowed_repull(self, case: ContractCase) -> set[str]:
        """Ids a pull from the saved state may yield again (a cursor's lookback)."""
        return set()

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        """Ids a pull from ``state`` — saved after the records ``seen`` — may yield again.

        Override when the overlap depends on where the pull stopped (a lookback window
        behind each chunk's cursor); by default ``allowed_repull``.
        """
        return self.allowed_repull(case)

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        """A value ordered as the cursor moves forward, or None if cursors cannot be
        compared (the monotonic checks then rely on behaviour alone)."""
        return None

    @pytest.fixture
    def captured_logs(self) -> Iterator[io.StringIO]:
        """Everything logged (structlog and stdlib, DEBUG and up) as the CLI renders it."""
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
        buf = io.StringIO()
        configure_logging("json", "DEBUG", stream=buf)
        try:
            yield buf
        finally:
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
            for name, lib_level in noisy.items():
                logging.getLogger(name).setLevel(lib_level)
            structlog.reset_defaults()

    def _require_cursor(self) -> None:
        if not self.has_cursor:
            pytest.skip("the source keeps no cursor")

    def test_every_record_arrives_exactly_once(self, contract_case: CaseFactory) -> None:
        case = contract_case("good", 5000)
        chunks = pull_all(case.source)
        counts = Counter(r.record_id for r in records_of(chunks))
        assert set(counts) == case.expected_ids
        assert [i for i, n in counts.items() if n > 1] == []
        assert rejections_of(chunks) == []

    def test_small_chunks_carry_the_same_records(self, contract_case: CaseFactory) -> None:
        case = contract_case("good", 2)
        chunks = pull_all(case.source)
        assert len(chunks) > 1, "the test data should need several chunks of 2"
        assert all(len(c.records) + len(c.rejections) <= 2 for c in chunks)
        assert sorted(r.record_id for r in records_of(chunks)) == sorted(case.expected_ids)

    def test_second_pull_from_saved_state_yields_nothing_new(
        self, contract_case: CaseFactory
    ) -> None:
        case = contract_case("good", 3)
        first = pull_all(case.source)
        state = fold_state(SourceState(), first)
        again = {r.record_id for r in records_of(pull_all(case.source, state))}
        assert again <= self.allowed_repull(case)

    def test_records_are_well_formed(self, contract_case: CaseFactory) -> None:
        case = contract_case("good", 5000)
        records = records_of(pull_all(case.source))
        assert records
        for record in records:
            assert record.source == case.source.name
            assert record.record_id and record.record_id == record.record_id.strip()
            offset = record.occurred_at.utcoffset()
            assert offset is not None, f"{record.origin}: occurred_at is naive"
            assert record.origin
            # empty means absent: a goal rule tests presence, never emptiness
            assert all(value for value in record.fields.values()), record.origin
            assert set(record.fields) <= set(record.columns), record.origin

    def test_bad_record_is_rejected_and_the_rest_goes_on(self, contract_case: CaseFactory) -> None:
        case = contract_case("bad", 5000)
        chunks = pull_all(case.source)
        assert sorted(r.record_id for r in records_of(chunks)) == sorted(case.expected_ids)
        rejections = rejections_of(chunks)
        assert rejections
        for rejection in rejections:
            assert rejection.source == case.source.name
            assert rejection.origin
            assert rejection.code and rejection.code == rejection.code.lower()
            assert " " not in rejection.code
            assert len(rejection.reason.split()) >= 3, rejection.reason

    @pytest.mark.parametrize("variant", ["good", "bad"])
    def test_no_raw_email_or_phone_in_origins_or_reasons(
        self, contract_case: CaseFactory, variant: Variant
    ) -> None:
        case = contract_case(variant, 5000)
        assert case.pii, "the test data should hold the e-mails and phones to look for"
        chunks = pull_all(case.source)
        said = [r.origin for r in records_of(chunks)]
        said += [f"{r.origin} {r.column} {r.reason}" for r in rejections_of(chunks)]
        text = "\n".join(said)
        leaked = [value for value in case.pii if value in text]
        assert leaked == []

    # --- incremental sources ------------------------------------------------------------

    def test_cursors_are_json_safe_and_never_move_back(self, contract_case: CaseFactory) -> None:
        self._require_cursor()
        case = contract_case("good", 2)
        chunks = pull_all(case.source)
        cursors = [c.cursor for c in chunks if c.cursor is not None]
        assert cursors, "an incremental source should hand over a cursor"
        assert chunks[-1].cursor is not None, "the last chunk should carry the final cursor"
        for cursor in cursors:
            assert json.loads(json.dumps(cursor)) == dict(cursor), cursor
        positions = [self.cursor_position(c) for c in cursors]
        if positions[0] is not None:
            assert positions == sorted(positions)

        first = fold_state(SourceState(), chunks)
        second_chunks = pull_all(case.source, first)
        second = fold_state(first, second_chunks)
        assert second.cursor is not None
        if positions[0] is not None:
            assert self.cursor_position(second.cursor) >= positions[-1]
        # a third pull from the second's state: still nothing but the overlap
        third = {r.record_id for r in records_of(pull_all(case.source, second))}
        assert third <= self.allowed_repull(case)

    def test_restart_after_any_chunk_resumes_without_losing_records(
        self, contract_case: CaseFactory
    ) -> None:
        self._require_cursor()
        case = contract_case("good", 2)
        chunks = pull_all(case.source)
        assert len(chunks) > 1, "the test data should need several chunks of 2"
        resumed: list[set[str]] = []
        for k, state in enumerate(states_after_each_chunk(chunks)):
            seen = records_of(chunks[: k + 1])
            seen_ids = {r.record_id for r in seen}
            again = {r.record_id for r in records_of(pull_all(case.source, state))}
            lost = case.expected_ids - seen_ids - again
            assert lost == set(), f"a restart after chunk {k + 1} lost {sorted(lost)}"
            repeated = again & seen_ids
            allowed = self.allowed_repull_after(case, state, seen)
            assert repeated <= allowed, f"after chunk {k + 1}: {sorted(repeated - allowed)}"
            resumed.append(again)
        # a later saved state never reaches further back than an earlier one
        for earlier, later in itertools.pairwise(resumed):
            assert later <= earlier

    def test_lookback_overlap_yields_only_allowed_records(self, contract_case: CaseFactory) -> None:
        self._require_cursor()
        case = contract_case("good", 3)
        state = fold_state(SourceState(), pull_all(case.source))
        again = Counter(r.record_id for r in records_of(pull_all(case.source, state)))
        assert set(again) <= self.allowed_repull(case)
        assert [i for i, n in again.items() if n > 1] == []
        if case.lookback_ids is not None:
            assert case.lookback_ids <= set(again), "the lookback window was not re-read"

    @pytest.mark.parametrize("variant", ["good", "bad"])
    def test_no_secret_or_raw_contact_in_logs_or_cursors(
        self, contract_case: CaseFactory, captured_logs: io.StringIO, variant: Variant
    ) -> None:
        case = contract_case(variant, 2)
        chunks = pull_all(case.source)
        chunks += pull_all(case.source, fold_state(SourceState(), chunks))
        logged = captured_logs.getvalue()
        said = [json.dumps(c.cursor, default=str) for c in chunks if c.cursor is not None]
        said += [r.origin for r in records_of(chunks)]
        said += [f"{r.origin} {r.column} {r.reason}" for r in rejections_of(chunks)]
        text = "\n".join(said)
        for needle in case.secrets:
            assert needle not in logged, f"a secret leaked into the logs: {needle[:3]}…"
            assert needle not in text, f"a secret leaked into a record or cursor: {needle[:3]}…"
        for needle in case.pii:
            assert needle not in logged, f"{needle!r} leaked into the logs"
