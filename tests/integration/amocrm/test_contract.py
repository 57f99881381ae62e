"""The shared source contract, over the fake amoCRM account (OAuth, a 2-minute
lookback, two leads won inside it)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from convsync.core.model import RawRecord, SourceState
from convsync.core.tokens import MemoryTokens
from tests.amocrm_fake import FakeAmo
from tests.amocrm_fake.server import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH
from tests.unit.sources.contract import CaseFactory, ContractCase, SourceContract, Variant

from .conftest import make_source, now

EMAILS = ["Anna.Petrova@example.ru", "ivan@example.com", "olga@example.org", "petr@example.net"]
PHONES = ["+7 912 345-67-89", "89161234567", "+79030001122", "8 (495) 123-45-67"]
LOOKBACK = 120
OAUTH = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "redirect_uri": "https://example.com/amo",
    "refresh_token": FIRST_REFRESH,
}
# what the fake issues on its first refreshes: never to be logged either
ISSUED = [f"access-token-{n:04d}-issued" for n in (1, 2)]
ISSUED += [f"refresh-token-{n:04d}-rotated" for n in (1, 2)]


class TestAmoCrmContract(SourceContract):
    won_at: dict[str, int]

    def allowed_repull(self, case: ContractCase) -> set[str]:
        return case.lookback_ids or set()

    def allowed_repull_after(
        self, case: ContractCase, state: SourceState, seen: list[RawRecord]
    ) -> set[str]:
        assert state.cursor is not None
        since = int(state.cursor["created_at"]) - LOOKBACK
        return {lead for lead, at in self.won_at.items() if at >= since}

    def cursor_position(self, cursor: Mapping[str, Any]) -> Any:
        return (cursor["created_at"], cursor["id"])

    @pytest.fixture
    def contract_case(self) -> Iterator[CaseFactory]:
        fakes: list[FakeAmo] = []

        def build(variant: Variant, chunk_size: int) -> ContractCase:
            fake = FakeAmo()
            fake.start()
            fakes.append(fake)
            t = now()
            self.won_at = {}
            for i, at in enumerate([t - 3600, t - 3000, t - 30, t - 20]):
                fake.add_won_lead(
                    1000 + i, at, gclid=f"gclid-{i}", vk_click=f"vk{i}",
                    email=EMAILS[i], phone=PHONES[i], contact_id=2000 + i,
                )  # fmt: skip
                self.won_at[str(1000 + i)] = at
            if variant == "bad":
                fake.add_won_lead(1099, t - 3500, with_lead=False)  # deleted since
            source = make_source(
                fake, chunk_size=chunk_size, lookback=f"{LOOKBACK}s", auth=OAUTH,
                tokens=MemoryTokens(),
                fields={"gclid": "lead.GCLID", "vk_click_id": {"field_name": "клик vk"},
                        "email": "contact.email", "phone": "contact.phone"},
            )  # fmt: skip
            return ContractCase(
                source,
                set(self.won_at),
                pii=EMAILS + PHONES,
                secrets=[CLIENT_SECRET, FIRST_REFRESH, *ISSUED],
                lookback_ids={"1002", "1003"},
            )

        yield build
        for fake in fakes:
            fake.stop()
