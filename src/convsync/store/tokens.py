"""The ledger as the token store connectors keep their tokens in (``core/tokens.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from convsync.store.ledger import Ledger


class LedgerTokens:
    """The ledger as a token store (table ``tokens``)."""

    def __init__(self, ledger: Ledger, clock: Callable[[], datetime]) -> None:
        self.ledger = ledger
        self.clock = clock

    def load(self, name: str) -> dict[str, Any] | None:
        return self.ledger.load_token(name)

    def save(self, name: str, data: Mapping[str, Any]) -> None:
        self.ledger.save_token(name, data, self.clock())
