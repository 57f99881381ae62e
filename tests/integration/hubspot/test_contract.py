"""The shared source contract, kept by the HubSpot source over the fake API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from convsync.core.model import RawRecord, SourceState
from tests.hubspot_fake import FakeHubSpot, fake_hubspot
from tests.unit.sources.contract import CaseFactory, ContractCase, SourceContract, Variant

from .conftest import NOW, build, seed


@dataclass
class HubSpotCase(ContractCase):
    #: deal id → its hs_lastmodifieddate
    modified: dict[str, datetime] = field(default_factory=dict)


@pytest.fixture
def contract_case() -> Iterator[CaseFactory]:
    servers: list[FakeHubSpot] = []

    def make(variant: Variant, chunk_size: int) -> ContractCase:
        cm = fake_hubspot()
        fake = cm.__enter__()
        servers.append(fake)
        cleanups.append(cm)
        ids = set(seed(fake.state, 7))
        pii = [c[k] for c in fake.state.contacts.values() for k in ("email", "phone")]
        if variant == "bad":
            # a won deal whose close date is a contact's e-mail (a bad property mapping)
            seed(fake.state, 1, start=8, closedate="buyer8@example.com",
                 modified=NOW - timedelta(hours=2))  # fmt: skip
            pii.append("buyer8@example.com")
        modified = {
            i: datetime.fromisoformat(str(d["hs_lastmodifieddate"]))
            for i, d in fake.state.deals.items()
        }
        return HubSpotCase(build(fake, chunk_size), ids, pii, [fake.state.token], None, modified)

    cleanups: list[object] = []
    yield make
    for cm in cleanups:
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]


class TestHubSpotContract(SourceContract):
    """Deals changed a day ago: outside the lookback of a cursor saved now, so a second
    pull finds nothing again; a restart after a chunk re-reads the deals changed within
    the lookback (10 minutes) before that chunk's cursor."""

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        return datetime.fromisoformat(cursor["modified"])

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        assert isinstance(case, HubSpotCase) and state.cursor is not None
        since = self.cursor_position(state.cursor) - timedelta(minutes=10)
        return {r.record_id for r in seen if case.modified[r.record_id] >= since}
