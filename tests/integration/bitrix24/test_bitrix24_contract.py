"""The shared source contract, kept by the Bitrix24 source against the fake portal.

The data: wins 5 minutes apart and a 10-minute lookback, so a pull from a saved state
re-reads the wins of the last 10 minutes before that state's latest win."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest

from convsync.core.model import RawRecord, SourceState
from tests.bitrix24_fake import fake_bitrix24
from tests.unit.sources.contract import CaseFactory, ContractCase, SourceContract, Variant

from .conftest import EMAILS, PHONES, seed, source_for

LOOKBACK = timedelta(minutes=10)


class TestBitrix24Contract(SourceContract):
    times: dict[str, datetime]

    @pytest.fixture
    def contract_case(self) -> Iterator[CaseFactory]:
        with ExitStack() as stack:

            def build(variant: Variant, chunk_size: int) -> ContractCase:
                fake = stack.enter_context(fake_bitrix24())
                ids = set(seed(fake.portal, 7, spacing=5))
                if variant == "bad":
                    # a win whose time is not a time, and one whose deal is gone
                    fake.portal.add_win(90, "yesterday", contact={"EMAIL": [{"VALUE": EMAILS[0]}]})
                    fake.portal.add_win(91, "2026-11-20T11:00:00+03:00")
                    del fake.portal.deals["91"]
                    ids |= set(seed(fake.portal, 2, start=100, day=21, spacing=5))
                self.times = {
                    row["OWNER_ID"]: datetime.fromisoformat(row["CREATED_TIME"])
                    for row in fake.portal.history
                    if row["CREATED_TIME"][:1].isdigit()
                }
                source = source_for(fake, chunk_size=chunk_size, lookback="10m")
                last = max(self.times[i] for i in ids)
                return ContractCase(
                    source,
                    ids,
                    pii=[*EMAILS, *PHONES],
                    secrets=[fake.portal.code, fake.webhook_url],
                    lookback_ids={i for i in ids if self.times[i] >= last - LOOKBACK},
                )

            yield build

    def allowed_repull(self, case: ContractCase) -> set[str]:
        last = max(self.times[i] for i in case.expected_ids)
        return {i for i in case.expected_ids if self.times[i] >= last - LOOKBACK}

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        assert state.cursor is not None
        moment = datetime.fromisoformat(state.cursor["time"])
        return {i for i in case.expected_ids if self.times[i] >= moment - LOOKBACK}

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        return (cursor["time"] or "", cursor["history_id"])
