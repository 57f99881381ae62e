"""What the destination benches share: a bench order as a mapped conversion, and one
timed sync run. Imported by the bench scripts (their folder is on ``sys.path``)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any


def order_conversion(i: int, occurred_at: datetime, ids: Any) -> Any:
    """Bench order ``A-<i>`` of the ``purchase`` goal, without value, with ``ids``."""
    from convsync.model import Conversion

    return Conversion(
        key=str(i),
        source="shop",
        record_id=str(i),
        goal="purchase",
        order_id=f"A-{i}",
        occurred_at=occurred_at,
        value=None,
        currency=None,
        ids=ids,
    )


def timed_sync(
    config: Path, env: dict[str, str], ledger_file: Path, destination: str
) -> tuple[float, dict[str, Any]]:
    """One whole sync run on a SQLite ledger: (seconds, the destination's summary)."""
    from convsync.config_loader import load_config
    from convsync.logging import configure_logging
    from convsync.pipeline import SyncPipeline
    from convsync.run_summary import SyncOptions
    from convsync.store.ledger import Ledger

    configure_logging("json", "WARNING")
    loaded = load_config(config, env=env)
    with Ledger.open(f"sqlite:///{ledger_file}") as ledger:
        t0 = time.perf_counter()
        summary = SyncPipeline(loaded, ledger).run(SyncOptions())
        seconds = time.perf_counter() - t0
    return seconds, summary.destinations[destination]
