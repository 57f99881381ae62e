"""What the Metrica destination tests share: the fixed clock, targets, and conversions
and rows built as the worker builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from convsync.core.model import Conversion, Identifiers, OutboundRow, OutcomeKind, RowOutcome
from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.destinations.yandex_metrica.config import MetricaTarget

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
MSK = timezone(timedelta(hours=3))
OCCURRED = datetime(2026, 11, 20, 14, 3, tzinfo=MSK)
BATCH = "5f1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f"

PURCHASE = MetricaTarget(target="offline_purchase")
CALL = MetricaTarget.model_validate(
    {"type": "calls", "call_fields": {"TalkDuration": "talk", "CallMissed": "missed"}}
)


def conversion(i: int, **changes: Any) -> Conversion:
    fields: dict[str, Any] = {
        "key": f"c-{i}",
        "source": "shop",
        "record_id": str(1000 + i),
        "goal": "purchase",
        "order_id": f"A-{1000 + i}",
        "occurred_at": OCCURRED,
        "value": Decimal("1500.00"),
        "currency": "RUB",
        "ids": Identifiers(metrica_client_id=f"17000000001234{i:05d}"),
    }
    fields.update(changes)
    return Conversion(**fields)


def call(i: int, **changes: Any) -> Conversion:
    base = {"goal": "call", "value": None, "attributes": {"talk": "1:05", "missed": "0"}}
    return conversion(i, **{**base, **changes})


def rows_for(
    destination: MetricaDestination,
    conversions: list[Conversion],
    target: MetricaTarget = PURCHASE,
    *,
    batch_id: str = BATCH,
    first_id: int = 1,
) -> list[OutboundRow]:
    return [
        OutboundRow(first_id + i, c, destination.build(c, target, NOW), batch_id=batch_id)
        for i, c in enumerate(conversions)
    ]


def kinds(outcomes: list[RowOutcome]) -> list[tuple[OutcomeKind, str | None]]:
    return [(o.kind, o.code) for o in outcomes]
