"""The ledger: what was pulled, what is owed to each platform, and what became of it.

Names load on first use: a mapping process imports ``store.recording`` and must not
pay for Alembic and the rest of the Ledger's machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from convsync.store.ledger import (
        FailureRow,
        FunnelRow,
        Ledger,
        LedgerReadOnlyError,
        RecordCounts,
        RunRow,
    )

__all__ = ["FailureRow", "FunnelRow", "Ledger", "LedgerReadOnlyError", "RecordCounts", "RunRow"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("convsync.store.ledger"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
