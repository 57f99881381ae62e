"""What the Google Ads destination tests share: the fixed clock, and conversions and
rows built as the worker builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from convsync.core.model import (
    Adjustment,
    AdjustmentKind,
    Conversion,
    Identifiers,
    OutboundRow,
    OutcomeKind,
    RowOutcome,
)
from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.destinations.google_ads.config import GoogleAdsTarget
from tests.google_ads_fake import CUSTOMER_ID

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
MSK = timezone(timedelta(hours=3))
OCCURRED = datetime(2026, 11, 20, 14, 3, tzinfo=MSK)
ACTION = f"customers/{CUSTOMER_ID}/conversionActions/987654321"
EMAIL_SHA256 = "a" * 64
PHONE_SHA256 = "b" * 64
#: midnight in Los Angeles after NOW (01:00 PST on Nov 21)
QUOTA_RESET = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

LATER = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

PLAIN = GoogleAdsTarget(conversion_action=987654321, custom_variables={7: "plan"})
EC4L = GoogleAdsTarget(conversion_action=987654321, enhanced_for_leads=True)


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
        "ids": Identifiers(gclid=f"Cj0KCQiA2-2eBhClARIsAGLQ2Rl{i:06d}"),
        "consent": "GRANTED",
        "attributes": {"plan": "gold"},
    }
    fields.update(changes)
    return Conversion(**fields)


def rows_for(
    destination: GoogleAdsDestination,
    conversions: list[Conversion],
    target: GoogleAdsTarget = PLAIN,
) -> list[OutboundRow]:
    return [
        OutboundRow(i + 1, c, destination.build(c, target, NOW)) for i, c in enumerate(conversions)
    ]


def adjustment_rows(
    destination: GoogleAdsDestination, pairs: list[tuple[Conversion, Adjustment]]
) -> list[OutboundRow]:
    return [
        OutboundRow(100 + i, c, destination.build_adjustment(c, a, PLAIN, LATER), adjustment=a)
        for i, (c, a) in enumerate(pairs)
    ]


def kinds(outcomes: list[RowOutcome]) -> list[tuple[OutcomeKind, str | None]]:
    return [(o.kind, o.code) for o in outcomes]


def retraction(at: datetime = datetime(2026, 11, 22, 10, 0, tzinfo=MSK)) -> Adjustment:
    return Adjustment(AdjustmentKind.RETRACTION, at)


def restatement(value: str, at: datetime = datetime(2026, 11, 22, 10, 0, tzinfo=MSK)) -> Adjustment:
    return Adjustment(AdjustmentKind.RESTATEMENT, at, Decimal(value), "USD")
