"""The record step's adjustments: records that change a conversion already recorded.

The map step only knows that a record *would* retract or restate a conversion of its
goal; here the conversion is looked up and the candidate is judged against what the
ledger holds:

* no such conversion recorded: nothing to adjust (a refund of an order never sent);
* the conversion is already retracted: a retraction is final, nothing more is sent;
* a restatement whose value and currency equal the conversion's current ones (its own
  or the latest restatement's): nothing changed;
* otherwise a new adjustment row (a ``conversions`` row with ``adjusts_id``) with one
  pending delivery per destination that takes adjustments and holds the conversion's
  own delivery (not skipped). An older adjustment of the same conversion that has not
  left yet (pending or deferred) is superseded: only the newest state needs to go.

Adjustments are rare next to conversions, so they are written row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.identity import conversion_key
from convsync.core.model import (
    CLOCK_SKEW_MARGIN,
    AdjustmentCandidate,
    AdjustmentKind,
    Conversion,
    DeliveryState,
    Transition,
)
from convsync.store.claims import apply
from convsync.store.rows import (
    CONVERSION_COLUMNS,
    ID,
    KEY,
    batches,
    conversion_from_row,
    one_of,
)
from convsync.store.schema import conversions, deliveries

_NOT_SENT = (DeliveryState.PENDING.value, DeliveryState.DEFERRED.value)


@dataclass(slots=True)
class _Base:
    """A recorded conversion and what its adjustments so far made of it."""

    id: int
    conversion: Conversion
    #: the columns an adjustment row copies from it, as stored
    copied: dict[str, Any]
    value: Decimal | None
    currency: str | None
    retracted: bool = False
    adjustments: int = 0
    #: destination → state of the conversion's own delivery there
    delivered_to: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlannedAdjustment:
    """An adjustment the ledger would record: of ``conversion``, to ``destinations``."""

    conversion: Conversion
    base_id: int
    kind: AdjustmentKind
    value: Decimal | None
    currency: str | None
    destinations: tuple[str, ...]
    sequence: int  # 1 for the conversion's first adjustment, and so on
    #: destination → state of the conversion's own delivery there
    base_states: Mapping[str, DeliveryState]
    #: the conversion's columns an adjustment row copies, as stored
    base_columns: Mapping[str, Any]


def judge(
    connection: Connection, candidates: Sequence[AdjustmentCandidate]
) -> list[PlannedAdjustment]:
    """The adjustments ``candidates`` make, in their order; reads only."""
    if not candidates:
        return []
    bases = _bases(connection, {c.conversion_key for c in candidates})
    planned: list[PlannedAdjustment] = []
    for candidate in candidates:
        base = bases.get(candidate.conversion_key)
        if base is None or base.retracted:
            continue
        if candidate.kind is AdjustmentKind.RESTATEMENT:
            if candidate.value is None:
                continue
            currency = candidate.currency or base.currency
            if _same_amount(candidate.value, base.value) and currency == base.currency:
                continue
            base.value, base.currency = candidate.value, currency
        else:
            base.retracted = True
            currency = None
        targets = tuple(
            d
            for d in candidate.destinations
            if base.delivered_to.get(d, DeliveryState.SKIPPED.value) != DeliveryState.SKIPPED.value
        )
        if not targets:
            continue
        base.adjustments += 1
        planned.append(
            PlannedAdjustment(
                conversion=base.conversion,
                base_id=base.id,
                kind=candidate.kind,
                value=candidate.value if candidate.kind is AdjustmentKind.RESTATEMENT else None,
                currency=currency,
                destinations=targets,
                sequence=base.adjustments,
                base_states={d: DeliveryState(base.delivered_to[d]) for d in targets},
                base_columns=base.copied,
            )
        )
    return planned


def record_adjustments(
    connection: Connection,
    candidates: Sequence[AdjustmentCandidate],
    *,
    run_id: str,
    now: datetime,
) -> int:
    """Judge ``candidates`` and write the adjustments they make; returns how many."""
    planned = judge(connection, candidates)
    for adjustment in planned:
        base_key = adjustment.conversion.key
        _supersede(connection, adjustment, run_id=run_id, now=now)
        values = dict(adjustment.base_columns)
        values.update(
            key=conversion_key("adjustment", base_key, str(adjustment.sequence)),
            value=None if adjustment.value is None else str(adjustment.value),
            currency=adjustment.currency,
            recorded_at=adjustment_time(now),
            run_id=run_id,
            adjusts_id=adjustment.base_id,
            adjustment=adjustment.kind.value,
        )
        adjustment_id = connection.execute(
            conversions.insert().values(values).returning(conversions.c.id)
        ).scalar_one()
        connection.execute(
            deliveries.insert(),
            [
                {
                    "conversion_id": adjustment_id,
                    "goal": adjustment.conversion.goal,
                    "destination": destination,
                    "state": DeliveryState.PENDING.value,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for destination in adjustment.destinations
            ],
        )
    return len(planned)


def adjustment_time(now: datetime) -> datetime:
    """An adjustment's time: when the change was seen, a margin back, so that a platform
    whose clock is a little behind ours never finds it in its future."""
    return now - CLOCK_SKEW_MARGIN


def _same_amount(a: Decimal | None, b: Decimal | None) -> bool:
    return a == b if a is not None and b is not None else a is b


#: what an adjustment row copies from its conversion (the rest is its own). Not
#: ``sealed``: an adjustment's delivery reads its conversion's row (``b_`` columns), so
#: the personal data stays in one row and goes when that conversion is settled.
_COPIED = (
    "source", "record_id", "goal", "order_id", "occurred_at", "utc_offset_min", "ids",
    "consent", "attributes",
)  # fmt: skip


def _bases(connection: Connection, keys: set[str]) -> dict[str, _Base]:
    """The recorded conversions of ``keys`` with their adjustments and deliveries."""
    bases: dict[str, _Base] = {}
    for keys_batch in batches(connection, sorted(keys)):
        query = sa.select(conversions.c.id, *CONVERSION_COLUMNS).where(
            one_of(connection, conversions.c.key, keys_batch, KEY),
            conversions.c.adjusts_id.is_(None),
        )
        for row in connection.execute(query).mappings():
            conversion = conversion_from_row(row)
            bases[conversion.key] = _Base(
                id=row["id"],
                conversion=conversion,
                copied={name: row[f"c_{name}"] for name in _COPIED},
                value=conversion.value,
                currency=conversion.currency,
            )
    by_id = {base.id: base for base in bases.values()}
    for batch in batches(connection, sorted(by_id)):
        history = (
            sa.select(
                conversions.c.adjusts_id,
                conversions.c.adjustment,
                conversions.c.value,
                conversions.c.currency,
            )
            .where(one_of(connection, conversions.c.adjusts_id, batch, ID))
            .order_by(conversions.c.id)
        )
        for adjusts_id, kind, value, currency in connection.execute(history):
            base = by_id[adjusts_id]
            base.adjustments += 1
            if kind == AdjustmentKind.RETRACTION.value:
                base.retracted = True
            else:
                base.value = None if value is None else Decimal(value)
                base.currency = currency
        own = sa.select(
            deliveries.c.conversion_id, deliveries.c.destination, deliveries.c.state
        ).where(one_of(connection, deliveries.c.conversion_id, batch, ID))
        for conversion_id, destination, state in connection.execute(own):
            by_id[conversion_id].delivered_to[destination] = state
    return bases


def _supersede(
    connection: Connection, adjustment: PlannedAdjustment, *, run_id: str, now: datetime
) -> None:
    """Earlier adjustments of the conversion that have not left: the new one replaces them."""
    query = (
        sa.select(deliveries.c.id)
        .join_from(deliveries, conversions, deliveries.c.conversion_id == conversions.c.id)
        .where(
            conversions.c.adjusts_id == adjustment.base_id,
            deliveries.c.destination.in_(adjustment.destinations),
            deliveries.c.state.in_(_NOT_SENT),
        )
    )
    ids = list(connection.execute(query).scalars())
    what = "retraction" if adjustment.kind is AdjustmentKind.RETRACTION else "restatement"
    apply(
        connection,
        [
            Transition(
                delivery_id,
                DeliveryState.SKIPPED,
                "superseded",
                f"a later {what} of the same conversion replaces this adjustment",
            )
            for delivery_id in ids
        ],
        run_id=run_id,
        now=now,
    )
