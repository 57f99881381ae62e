"""Builders for ledger tests (importable by the worker processes of the concurrency tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from convsync.core.model import Conversion, DeliveryState, Identifiers, PlannedDelivery

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MSK = timezone(timedelta(hours=3))


def key_of(record_id: str, goal: str = "purchase", source: str = "shop") -> str:
    return hashlib.sha256(f"{source}|{record_id}|{goal}".encode()).hexdigest()


def conversion(
    record_id: str,
    *,
    goal: str = "purchase",
    source: str = "shop",
    occurred_at: datetime | None = None,
    value: Decimal | None = Decimal("1500.50"),
    ids: Identifiers | None = None,
) -> Conversion:
    return Conversion(
        key=key_of(record_id, goal, source),
        source=source,
        record_id=record_id,
        goal=goal,
        order_id=f"order-{record_id}",
        occurred_at=occurred_at or datetime(2026, 11, 20, 14, 3, 7, 123456, tzinfo=MSK),
        value=value,
        currency="RUB",
        ids=ids or Identifiers(gclid=f"gclid-{record_id}", email_sha256="e" * 64),
        consent="GRANTED",
    )


def plan(
    conversions: Iterable[Conversion],
    destinations: Iterable[str] = ("google",),
    *,
    skipped: Iterable[str] = (),
) -> list[PlannedDelivery]:
    out: list[PlannedDelivery] = []
    skip = list(skipped)
    dests = list(destinations)
    for c in conversions:
        out.extend(PlannedDelivery(c.key, c.goal, d) for d in dests)
        out.extend(
            PlannedDelivery(c.key, c.goal, d, DeliveryState.SKIPPED, "no_identifier", "no id")
            for d in skip
        )
    return out
