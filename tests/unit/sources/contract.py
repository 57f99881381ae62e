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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from convsync.model import RawRecord, RecordRejection
from convsync.sources.base import FileMark, PulledChunk, Source, SourceState

Variant = Literal["good", "bad"]


@dataclass
class ContractCase:
    source: Source[Any]
    expected_ids: set[str]
    pii: list[str] = field(default_factory=list)


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


class SourceContract:
    def allowed_repull(self, case: ContractCase) -> set[str]:
        """Ids a pull from the saved state may yield again (a cursor's lookback)."""
        return set()

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
