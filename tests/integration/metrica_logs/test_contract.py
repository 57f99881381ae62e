"""The shared source contract, kept by the Metrica Logs source over the fake API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from convsync.core.model import RawRecord, SourceState
from tests.metrica_logs_fake import FakeMetricaLogs, fake_metrica_logs
from tests.unit.sources.contract import CaseFactory, ContractCase, SourceContract, Variant

from .conftest import build, goal_time, record_id, seed

LOOKBACK = 1


@dataclass
class LogsCase(ContractCase):
    #: record id → the day (counter time) of its visit
    days: dict[str, date] = field(default_factory=dict)


@pytest.fixture
def contract_case() -> Iterator[CaseFactory]:
    cleanups: list[Any] = []

    def make(variant: Variant, chunk_size: int) -> ContractCase:
        cm = fake_metrica_logs()
        fake: FakeMetricaLogs = cm.__enter__()
        cleanups.append(cm)
        days: dict[str, date] = {}
        # 7 visits over 4 days (two requests of 2 days each), e-mails in their URLs
        for n, back in zip(range(1, 8), (5, 5, 4, 3, 3, 2, 2), strict=True):
            for visit in seed(fake.state, 1, start=n, days_back=back):
                days[record_id(visit)] = visit.day
        pii = [f"buyer{n}@example.com" for n in range(1, 8)]
        if variant == "bad":
            # a goal time that is an e-mail (the reason must not quote it)
            (broken,) = seed(fake.state, 1, start=8, days_back=3)
            broken.goals = [(111, "buyer8@example.com", 0, "", "")]
            pii.append("buyer8@example.com")
        source = build(fake, chunk_size, lookback_days=LOOKBACK, max_days_per_request=2,
                       start_date=(fake.state.today() - timedelta(days=5)).isoformat())  # fmt: skip
        return LogsCase(source, set(days), pii, [fake.state.token], None, days)

    yield make
    for cm in cleanups:
        cm.__exit__(None, None, None)


class TestMetricaLogsContract(SourceContract):
    """Visits 5 … 2 days back, read in requests of 2 days; the lookback re-reads one day
    before the cursor, but a pull from the final state is fresh and sends nothing."""

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        return date.fromisoformat(cursor["date"])

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        assert isinstance(case, LogsCase)
        cursor = state.cursor or {}
        if "pulled_at" in cursor:
            return set()
        if not cursor:
            return {r.record_id for r in seen}
        since = date.fromisoformat(cursor["date"]) - timedelta(days=LOOKBACK - 1)
        return {r.record_id for r in seen if case.days[r.record_id] >= since}


def test_goal_time_helper_writes_utc_plus_3() -> None:
    # the helper the contract data is built with (keeps the fixture honest)
    from datetime import datetime

    from tests.metrica_logs_fake import LogsState

    state = LogsState(time_zone_name="Asia/Yekaterinburg")
    assert goal_time(state, datetime(2026, 11, 20, 12, 0), 5) == "2026-11-20 10:05:00"
