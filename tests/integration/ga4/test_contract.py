"""The shared source contract, kept by the GA4 BigQuery source over the fake BigQuery."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from convsync.core.model import RawRecord, SourceState
from convsync.sources.ga4.query import shift
from tests.bigquery_fake import FakeBigQuery, fake_bigquery
from tests.unit.sources.contract import CaseFactory, ContractCase, SourceContract, Variant

from .conftest import build, day, purchase, seed

LOOKBACK = 3


@dataclass
class Ga4Case(ContractCase):
    #: record id → the date suffix of its table
    tables: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def contract_case(tmp_path: Path) -> Iterator[CaseFactory]:
    cleanups: list[Any] = []

    def make(variant: Variant, chunk_size: int) -> ContractCase:
        cm = fake_bigquery(tmp_path)
        fake: FakeBigQuery = cm.__enter__()
        cleanups.append(cm)
        days = [day(-9), day(-8), day(-6), day(-3)]
        placed = seed(fake.state, days)
        pii = [f"buyer{n}@example.com" for n in placed]
        if variant == "bad":
            # an event without a timestamp, carrying the buyer's e-mail
            fake.state.add_event("events_" + day(-8), **purchase(50, day(-8), event_timestamp=None))
            pii.append("buyer50@example.com")
        source = build(fake, chunk_size, lookback_days=LOOKBACK,
                       fields={"email": "event_params.email"})  # fmt: skip
        first = build(fake, lookback_days=LOOKBACK)
        records = [r for c in first.pull(SourceState()) for r in c.records]
        ids = {r.record_id for r in records}
        tables = {r.record_id: r.origin.split(" in events_")[1].split()[0] for r in records}
        lookback = {i for i, t in tables.items() if t >= shift(day(-3), -LOOKBACK)}
        # the fake's secrets: the key, and every access token issued, now and later
        return Ga4Case(source, ids, pii, fake.oauth.secrets, lookback, tables)

    yield make
    for cm in cleanups:
        cm.__exit__(None, None, None)


class TestGa4BigQueryContract(SourceContract):
    """Purchases in four daily tables (9, 8, 6 and 3 days ago); a second pull re-reads
    the tables of the three days before the last one read (6 and 3 days ago)."""

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        return str(cursor["daily"])

    def allowed_repull(self, case: ContractCase) -> set[str]:
        assert isinstance(case, Ga4Case)
        return {i for i, t in case.tables.items() if t >= shift(day(-3), -LOOKBACK)}

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        assert isinstance(case, Ga4Case)
        if state.cursor is None:
            return {r.record_id for r in seen}
        since = shift(str(state.cursor["daily"]), -LOOKBACK)
        return {r.record_id for r in seen if case.tables[r.record_id] >= since}
