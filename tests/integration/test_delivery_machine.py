"""A hypothesis state machine over the delivery machinery: any sequence of platform
answers, crashes and clock jumps never sends a delivered conversion again, never loses
one, and ends with every conversion delivered or explained."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from convsync.config.loader import load_config
from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import OutboundRow, RowOutcome
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncOptions, SyncPipeline

from .conftest import CONFIG, HEADER
from .fakes import ScriptedDestination

ORDERS = [f"A-{i}" for i in range(1, 8)]
ANSWERS = st.sampled_from(
    ["deliver", "row_transient", "row_deferred", "row_rejected", "batch_transient",
     "batch_permanent", "unavailable", "crash", "uncertain_recovery"]
)  # fmt: skip


class Crash(Exception):
    """The process dies between the request and the ledger update."""


class DeliveryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="convsync-sm-"))
        (self.dir / "orders").mkdir()
        (self.dir / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
        rows = "".join(
            f"{o},2026-11-20 10:0{i}:00,paid,10,RUB,,,click{i},\n" for i, o in enumerate(ORDERS)
        )
        (self.dir / "orders" / "a.csv").write_text(HEADER + rows, encoding="utf-8")
        self.ledger = Ledger.open(f"sqlite:///{self.dir / 'ledger.db'}")
        self.loaded = load_config(self.dir / "convsync.yaml", env={})
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        self.answer = "deliver"
        self.delivered: set[str] = set()  # orders the platform has acknowledged
        self.uncertain: set[str] = set()

    def script(self, batch: Sequence[OutboundRow]) -> list[RowOutcome]:
        for row in batch:
            order = str(row.payload["order"])
            assert order not in self.delivered, f"{order} sent again after delivery"
            assert order not in self.uncertain, f"{order} re-sent while uncertain"
        a = self.answer
        if a == "batch_transient":
            raise TransientError("503", retry_after=0.0)
        if a == "batch_permanent":
            raise PermanentError("invalid_uploading", "broken file")
        if a == "unavailable":
            raise DestinationUnavailable("invalid_token", "revoked")
        if a in ("crash", "uncertain_recovery"):
            raise Crash
        out = []
        for i, row in enumerate(batch):
            if a == "deliver" or i % 2:
                out.append(RowOutcome.delivered())
                self.delivered.add(str(row.payload["order"]))
            elif a == "row_transient":
                out.append(RowOutcome.transient("backend_error", "later", retry_after=0.0))
            elif a == "row_deferred":
                out.append(
                    RowOutcome.deferred("too_recent", "later", self.now + timedelta(hours=6))
                )
            else:
                out.append(RowOutcome.rejected("bad", "refused"))
        return out

    def run(self) -> None:
        dest = ScriptedDestination("vk", self.loaded.app.destinations["vk"], self.script)  # type: ignore[arg-type]
        if self.answer == "uncertain_recovery":
            dest.recover_verdicts = self.uncertain_verdicts
        pipeline = SyncPipeline(
            self.loaded,
            self.ledger,
            destinations={"vk": dest},
            clock=lambda: self.now,
            sleep=lambda s: None,
        )
        with contextlib.suppress(Crash):
            pipeline.run(SyncOptions())

    def uncertain_verdicts(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        for row in rows:
            self.uncertain.add(str(row.payload["order"]))
        return [
            RowOutcome(
                kind=__import__(
                    "convsync.core.model", fromlist=["OutcomeKind"]
                ).OutcomeKind.UNCERTAIN
            )
            for _ in rows
        ]

    @rule(answer=ANSWERS)
    def sync(self, answer: str) -> None:
        self.answer = answer
        self.run()

    @rule(minutes=st.integers(min_value=1, max_value=3 * 24 * 60))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @invariant()
    def ledger_agrees_with_the_platform(self) -> None:
        states = self.states()
        for order in self.delivered:
            assert states.get(order) == "delivered", (order, states.get(order))
        for order, state in states.items():
            if state == "delivered":
                assert order in self.delivered

    @rule()
    def everything_settles(self) -> None:
        """With the platform healthy again and time passing, every conversion ends
        delivered or explained (rejected / uncertain) — none is lost."""
        self.answer = "deliver"
        for _ in range(12):
            self.now += timedelta(days=2)
            self.run()
        states = self.states()
        assert set(states) == set(ORDERS)
        assert set(states.values()) <= {"delivered", "rejected", "uncertain"}, states

    def states(self) -> dict[str, str]:
        with sqlite3.connect(self.dir / "ledger.db") as conn:
            return dict(
                conn.execute(
                    "SELECT c.order_id, d.state FROM deliveries d "
                    "JOIN conversions c ON c.id = d.conversion_id"
                ).fetchall()
            )

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestDeliveryMachine = DeliveryMachine.TestCase
TestDeliveryMachine.settings = settings(
    max_examples=30,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
