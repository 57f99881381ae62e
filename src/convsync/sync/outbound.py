"""Pre-flight of claimed rows: the payload of each row that may leave, and the
transition of each that may not (yet). Shared by the deliver step and ``--validate``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel

from convsync.core.errors import RowDeferred, RowRejected, RowSkipped
from convsync.core.model import ClaimedDelivery, DeliveryState, OutboundRow, Transition
from convsync.destinations.base import Destination

_SENT = frozenset({DeliveryState.DELIVERED, DeliveryState.MATCHED, DeliveryState.UNMATCHED})
_NEVER_SENT = frozenset({DeliveryState.REJECTED, DeliveryState.SKIPPED})
_PROCESSED = frozenset({DeliveryState.MATCHED, DeliveryState.UNMATCHED})


def prepare(
    dest: Destination[BaseModel, BaseModel],
    targets: Mapping[str, Mapping[str, BaseModel]],
    rows: Sequence[ClaimedDelivery],
    now: datetime,
    *,
    wait: timedelta,
) -> tuple[list[OutboundRow], list[Transition]]:
    """Build every payload; rows the platform would refuse never leave.

    ``wait`` is how long a row waits that cannot go yet for a reason of convsync's own
    (its goal no longer sends here, its conversion is not delivered yet).
    """
    outbound: list[OutboundRow] = []
    transitions: list[Transition] = []
    for row in rows:
        target = targets.get(row.goal, {}).get(dest.name)
        if target is None:
            transitions.append(
                Transition(
                    row.delivery_id,
                    DeliveryState.DEFERRED,
                    "target_not_configured",
                    f"goal {row.goal!r} no longer sends to {dest.name!r} in the config",
                    retry_at=now + wait,
                )
            )
            continue
        held = _held_adjustment(row, now + wait)
        if held is not None:
            transitions.append(held)
            continue
        try:
            if row.adjustment is None:
                payload = dest.build(row.conversion, target, now)
            else:
                payload = dest.build_adjustment(row.conversion, row.adjustment, target, now)
        except RowRejected as exc:
            transitions.append(
                Transition(row.delivery_id, DeliveryState.REJECTED, exc.code, exc.message)
            )
            continue
        except RowSkipped as exc:
            transitions.append(
                Transition(row.delivery_id, DeliveryState.SKIPPED, exc.code, exc.message)
            )
            continue
        except RowDeferred as exc:
            transitions.append(
                Transition(
                    row.delivery_id,
                    DeliveryState.DEFERRED,
                    exc.code,
                    exc.message,
                    retry_at=exc.retry_at,
                )
            )
            continue
        too_soon = _too_soon(row, now, dest.adjustment_delay)
        if too_soon is not None:
            transitions.append(too_soon)
            continue
        outbound.append(
            OutboundRow(
                row.delivery_id,
                row.conversion,
                payload,
                row.attempts,
                row.adjustment,
                row.batch_id,
            )
        )
    return outbound, transitions


def _held_adjustment(row: ClaimedDelivery, retry_at: datetime) -> Transition | None:
    """An adjustment goes only after the conversion it changes was delivered there."""
    if row.adjustment is None or row.base_state in _SENT:
        return None
    what = row.adjustment.kind.value
    if row.base_state in _NEVER_SENT:
        return Transition(
            row.delivery_id,
            DeliveryState.SKIPPED,
            "conversion_not_delivered",
            f"the conversion this {what} changes was never delivered here "
            f"({row.base_state}), so there is nothing to adjust",
        )
    state = "not planned" if row.base_state is None else row.base_state.value
    return Transition(
        row.delivery_id,
        DeliveryState.DEFERRED,
        "waiting_for_conversion",
        f"the conversion this {what} changes is not delivered yet ({state}); "
        "the adjustment follows once it is",
        retry_at=retry_at,
    )


def _too_soon(row: ClaimedDelivery, now: datetime, delay: timedelta) -> Transition | None:
    """Where the platform processes uploads later, an adjustment that can go still waits
    ``delay`` after its conversion's delivery, so that it cannot overtake it there — unless
    the platform already said it processed the conversion (matched or unmatched)."""
    if row.adjustment is None or not delay or row.base_changed_at is None:
        return None
    if row.base_state in _PROCESSED:
        return None
    ready = row.base_changed_at + delay
    if now >= ready:
        return None
    what = row.adjustment.kind.value
    delivered = f"{row.base_changed_at:%Y-%m-%d %H:%M}"
    hours = int(delay.total_seconds() // 3600)
    return Transition(
        row.delivery_id,
        DeliveryState.DEFERRED,
        "waiting_for_processing",
        f"the conversion this {what} changes was delivered at {delivered} UTC and the "
        f"platform takes up to {hours} hours to process it; the {what} follows then, so "
        "that it cannot overtake its conversion",
        retry_at=ready,
    )
