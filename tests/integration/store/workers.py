"""Worker processes for the concurrency tests (spawned: each opens its own Ledger)."""

from __future__ import annotations

import time
from datetime import timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from convsync.core.model import DeliveryState, Transition
from convsync.store import Ledger

from .factory import NOW, conversion, plan

START_TIMEOUT_S = 120
UPLOAD_S = 0.003


def claim_until_empty(url: str, name: str, batch: int, start: Barrier, out: Queue[Any]) -> None:
    ledger = Ledger.open(url)
    try:
        start.wait(START_TIMEOUT_S)
        claimed: list[int] = []
        calls = 0
        while rows := ledger.claim(
            destination="google",
            limit=batch,
            lease=timedelta(minutes=10),
            batch_id=f"{name}-{calls}",
            run_id=name,
            now=NOW,
        ):
            claimed.extend(row.delivery_id for row in rows)
            calls += 1
            # the upload: without a pause a SQLite writer that just committed retakes the
            # lock before the other process's busy handler wakes up, and does all the work
            time.sleep(UPLOAD_S)
            ledger.apply(
                [Transition(row.delivery_id, DeliveryState.DELIVERED) for row in rows],
                run_id=name,
                now=NOW,
            )
        out.put((name, claimed))
    finally:
        ledger.close()


def race_for_leases(url: str, name: str, leases: int, start: Barrier, out: Queue[Any]) -> None:
    ledger = Ledger.open(url)
    try:
        start.wait(START_TIMEOUT_S)
        won = [
            lease
            for lease in range(leases)
            if ledger.acquire_lease(f"lease-{lease}", name, timedelta(minutes=5), NOW)
        ]
        out.put((name, won))
    finally:
        ledger.close()


def open_and_record(url: str, name: str, records: int, start: Barrier, out: Queue[Any]) -> None:
    start.wait(START_TIMEOUT_S)
    ledger = Ledger.open(url)  # both processes migrate the fresh database at once
    try:
        # the same conversions from both: each must be recorded (and planned) once
        written = [conversion(str(i)) for i in range(records)]
        counts = ledger.record_chunk(
            run_id=name,
            source="shop",
            conversions=written,
            deliveries=plan(written),
            rejections=[],
            cursor={"by": name},
            files_done=[],
            now=NOW,
        )
        out.put((name, [counts.new_conversions, counts.pending]))
    finally:
        ledger.close()
