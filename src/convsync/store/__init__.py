"""The ledger: what was pulled, what is owed to each platform, and what became of it."""

from __future__ import annotations

from convsync.store.ledger import (
    FailureRow,
    FunnelRow,
    Ledger,
    LedgerReadOnlyError,
    RecordCounts,
    RunRow,
)

__all__ = ["FailureRow", "FunnelRow", "Ledger", "LedgerReadOnlyError", "RecordCounts", "RunRow"]
