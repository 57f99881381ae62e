"""The record step: conversions, planned deliveries, rejections, cursor and files in one go."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from convsync.core.model import (
    Conversion,
    DeliveryState,
    FileMark,
    Identifiers,
    PlannedDelivery,
    RecordRejection,
)
from convsync.store import Ledger, RecordCounts, recording
from convsync.store.schema import deliveries, record_rejections

from .factory import NOW, conversion, plan


def _record(
    ledger: Ledger,
    conversions: list[Conversion],
    *,
    destinations: tuple[str, ...] = ("google", "metrica"),
    skipped: tuple[str, ...] = (),
    rejections: list[RecordRejection] | None = None,
    cursor: dict[str, object] | None = None,
    files: list[FileMark] | None = None,
    run_id: str = "r1",
    now: datetime = NOW,
) -> RecordCounts:
    return ledger.record_chunk(
        run_id=run_id,
        source="shop",
        conversions=conversions,
        deliveries=plan(conversions, destinations, skipped=skipped),
        rejections=rejections or [],
        cursor=cursor,
        files_done=files or [],
        now=now,
    )


def _claim_all(ledger: Ledger, destination: str = "google") -> list[Conversion]:
    claimed = ledger.claim(
        destination=destination,
        limit=10_000,
        lease=timedelta(minutes=5),
        batch_id="b",
        run_id="r",
        now=NOW,
    )
    return [c.conversion for c in claimed]


def _count(db: Engine, table: sa.Table) -> int:
    with db.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_conversion_reads_back_equal_in_its_own_offset(ledger: Ledger) -> None:
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    written = [
        conversion("msk"),
        conversion("npt", occurred_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=kathmandu)),
        conversion(
            "neg",
            occurred_at=datetime(
                2026, 6, 1, 23, 59, tzinfo=timezone(-timedelta(hours=3, minutes=30))
            ),
        ),
        conversion("utc", occurred_at=datetime(2026, 6, 1, tzinfo=UTC), value=None),
        conversion("big", value=Decimal("12345678901234567890.0100")),
        conversion("bare", ids=Identifiers()),
    ]
    _record(ledger, written)
    read = {c.key: c for c in _claim_all(ledger)}
    for original in written:
        back = read[original.key]
        assert back == original
        assert back.occurred_at.utcoffset() == original.occurred_at.utcoffset()
        assert back.occurred_at.isoformat() == original.occurred_at.isoformat()
        assert str(back.value) == str(original.value)  # 10.50 stays 10.50, not 10.5


def test_dedupes_within_a_chunk_and_across_calls(ledger: Ledger, db: Engine) -> None:
    a, b, c = conversion("a"), conversion("b"), conversion("c")
    first = _record(ledger, [a, b, a, b, a], skipped=("vk",))
    assert first == RecordCounts(new_conversions=2, pending=4, skipped=2, rejections=0)
    second = _record(ledger, [b, c, c], skipped=("vk",))
    assert second == RecordCounts(new_conversions=1, pending=2, skipped=1, rejections=0)
    again = _record(ledger, [a, b, c], skipped=("vk",))
    assert again == RecordCounts()
    assert ledger.existing_keys([a.key, b.key, c.key, "nope"]) == {a.key, b.key, c.key}
    assert _count(db, deliveries) == 9


def test_deliveries_are_planned_only_for_new_conversions(ledger: Ledger) -> None:
    a = conversion("a")
    _record(ledger, [a], destinations=("google",))
    # a later chunk plans a new destination for the already-recorded conversion: ignored
    counts = _record(ledger, [a], destinations=("google", "vk"))
    assert counts.new_conversions == 0
    assert ledger.delivery_states([a.key]) == {(a.key, "google"): DeliveryState.PENDING}


def test_a_delivery_planned_twice_is_written_once(ledger: Ledger) -> None:
    a = conversion("a")
    counts = ledger.record_chunk(
        run_id="r1",
        source="shop",
        conversions=[a],
        deliveries=plan([a], ("google", "google")),
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW,
    )
    assert counts.pending == 1
    assert len(_claim_all(ledger)) == 1


def test_skipped_deliveries_keep_their_code_and_are_never_claimed(ledger: Ledger) -> None:
    a = conversion("a")
    _record(ledger, [a], destinations=(), skipped=("vk",))
    assert ledger.delivery_states([a.key]) == {(a.key, "vk"): DeliveryState.SKIPPED}
    assert _claim_all(ledger, "vk") == []
    [row] = ledger.funnel(NOW - timedelta(days=1))
    assert row.skipped_by_code == {"no_identifier": 1}


def test_rejections_are_upserted_not_duplicated(ledger: Ledger, db: Engine) -> None:
    bad = RecordRejection("shop", "orders.csv:17", "created_at", "bad_time", "not a date", "17")
    other = RecordRejection("shop", "orders.csv:18", None, "no_id", "empty id")
    first = _record(ledger, [], rejections=[bad, other, bad], run_id="r1")
    assert first.rejections == 2
    later = NOW + timedelta(hours=1)
    _record(ledger, [], rejections=[bad], run_id="r2", now=later)
    assert _count(db, record_rejections) == 2
    with db.connect() as connection:
        row = connection.execute(
            sa.select(record_rejections).where(record_rejections.c.origin == "orders.csv:17")
        ).one()
    assert (row.run_id, row.first_seen_at, row.last_seen_at) == ("r2", NOW, later)
    assert ledger.rejection_count("r1") == 1
    assert ledger.rejection_count("r2") == 1


def test_cursor_and_files_are_saved_and_replaced(ledger: Ledger) -> None:
    assert ledger.source_state("shop").cursor is None
    assert ledger.source_state("shop").files == {}
    f1 = FileMark("orders/a.csv", 100, 1_700_000_000_123_456_789)
    _record(ledger, [], cursor={"updated_since": "2026-11-19T00:00:00+00:00"}, files=[f1])
    f1b = FileMark("orders/a.csv", 200, 1_800_000_000_000_000_001)
    f2 = FileMark("orders/b.csv", 5, 7)
    _record(ledger, [], cursor={"updated_since": "2026-11-20T00:00:00+00:00"}, files=[f1b, f2])
    _record(ledger, [], cursor=None)  # None keeps the saved cursor
    state = ledger.source_state("shop")
    assert state.cursor == {"updated_since": "2026-11-20T00:00:00+00:00"}
    assert state.files == {"orders/a.csv": f1b, "orders/b.csv": f2}
    assert ledger.source_state("other").cursor is None


def test_a_failure_mid_chunk_leaves_nothing(
    ledger: Ledger, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    # everything before the files step has been written inside the transaction by then
    monkeypatch.setattr(recording, "_save_files", explode)
    a = conversion("a")
    bad = RecordRejection("shop", "orders.csv:2", None, "no_id", "empty id")
    with pytest.raises(RuntimeError, match="disk full"):
        _record(ledger, [a], rejections=[bad], cursor={"pos": 1}, files=[FileMark("x", 1, 1)])
    assert ledger.existing_keys([a.key]) == set()
    assert ledger.source_state("shop").cursor is None
    assert _count(db, deliveries) == 0
    assert _count(db, record_rejections) == 0
    monkeypatch.undo()
    assert _record(ledger, [a]).new_conversions == 1  # and the ledger still works


def test_existing_keys_beyond_one_in_list(ledger: Ledger) -> None:
    written = [conversion(str(i)) for i in range(1_234)]
    _record(ledger, written, destinations=())
    asked = [c.key for c in written[::2]] + [f"missing-{i}" for i in range(600)]
    assert ledger.existing_keys(asked) == {c.key for c in written[::2]}


def test_naive_datetimes_are_refused(ledger: Ledger) -> None:
    naive = conversion("n", occurred_at=datetime(2026, 11, 20, 12, 0))
    with pytest.raises(ValueError, match="naive"):
        _record(ledger, [naive])
    with pytest.raises(ValueError, match="naive"):
        _record(ledger, [conversion("ok")], now=datetime(2026, 11, 20, 12, 0))
    assert ledger.existing_keys([conversion("n").key, conversion("ok").key]) == set()


_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=40,
)
_IDS = st.builds(
    Identifiers,
    gclid=st.none() | _TEXT,
    yclid=st.none() | _TEXT,
    metrica_client_id=st.none() | _TEXT,
    vk_click_id=st.none() | _TEXT,
    email_sha256=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
)


@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    offset_min=st.integers(min_value=-14 * 60, max_value=14 * 60),
    value=st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=4),
    ids=_IDS,
    record_id=_TEXT,
    consent=st.sampled_from([None, "GRANTED", "DENIED"]),
)
@settings(
    max_examples=40,
    deadline=None,
    # one ledger for all examples: each example writes its own key and destination
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_any_conversion_reads_back_equal(
    ledger: Ledger,
    moment: datetime,
    offset_min: int,
    value: Decimal | None,
    ids: Identifiers,
    record_id: str,
    consent: str | None,
) -> None:
    written = conversion(
        record_id,
        occurred_at=moment.replace(tzinfo=timezone(timedelta(minutes=offset_min))),
        value=value,
        ids=ids,
    )
    written = dataclasses.replace(written, consent=consent, key=uuid.uuid4().hex)
    destination = f"d-{written.key}"
    ledger.record_chunk(
        run_id="r1",
        source="shop",
        conversions=[written],
        deliveries=[PlannedDelivery(written.key, written.goal, destination)],
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW,
    )
    [claimed] = ledger.claim(
        destination=destination,
        limit=5,
        lease=timedelta(minutes=1),
        batch_id="b",
        run_id="r1",
        now=NOW,
    )
    back = claimed.conversion
    assert back == written
    assert back.occurred_at.utcoffset() == written.occurred_at.utcoffset()
    assert str(back.value) == str(written.value)
