"""One ConversionAdjustment of UploadConversionAdjustments, as the dry-run shows it, and its
pre-flight: Google takes a retraction or restatement only for a conversion that is at least
24 hours and at most 54 days old, identified by its conversion action and order id."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from convsync.core.errors import RowDeferred, RowRejected
from convsync.core.model import CLOCK_SKEW_MARGIN, Adjustment, AdjustmentKind, Conversion
from convsync.destinations import preflight
from convsync.destinations.google_ads.config import GoogleAdsTarget
from convsync.destinations.google_ads.payload import PLATFORM, format_conversion_date_time

#: "the conversion must be at least 24 hours old" (TOO_RECENT_CONVERSION otherwise) …
MIN_CONVERSION_AGE = timedelta(hours=24)
#: … and at most 54 days old (CONVERSION_EXPIRED)
MAX_CONVERSION_AGE = timedelta(days=54)
#: sent a little after the 24 hours, so that clock skew cannot bounce it as too recent
MIN_AGE_MARGIN = timedelta(minutes=5)

_ADJUSTMENT_TYPES = {
    AdjustmentKind.RETRACTION: "RETRACTION",
    AdjustmentKind.RESTATEMENT: "RESTATEMENT",
}


def build_conversion_adjustment(
    conversion: Conversion,
    adjustment: Adjustment,
    customer_id: str,
    target: GoogleAdsTarget,
    now: datetime,
) -> dict[str, Any]:
    """The ConversionAdjustment for one adjustment; raises RowRejected / RowDeferred.

    Rejections come before deferrals: a row that can never go is not kept waiting.
    """
    preflight.require_aware(conversion.occurred_at, "conversion time")
    preflight.require_aware(adjustment.adjusted_at, "adjustment time")
    preflight.require_aware(now, "now")
    if not conversion.order_id:
        raise RowRejected(
            "missing_order_id",
            "The conversion has no order id, and convsync finds a Google Ads conversion to "
            "adjust by its order id.",
        )
    restatement = _restatement_value(conversion, adjustment)
    check_adjustment_timing(conversion, adjustment, now)

    payload: dict[str, Any] = {
        "adjustment_type": _ADJUSTMENT_TYPES[adjustment.kind],
        "conversion_action": (
            f"customers/{customer_id}/conversionActions/{target.conversion_action}"
        ),
        "order_id": conversion.order_id,
        "adjustment_date_time": format_conversion_date_time(adjustment.adjusted_at),
    }
    if restatement is not None:
        payload["restatement_value"] = restatement
    return payload


def check_adjustment_timing(conversion: Conversion, adjustment: Adjustment, now: datetime) -> None:
    """An adjustment goes after its conversion, within 54 days of it, not from the future,
    and once the conversion is 24 hours old (RowRejected / RowDeferred otherwise)."""
    preflight.require_aware(adjustment.adjusted_at, "adjustment time")
    preflight.require_aware(now, "now")
    if adjustment.adjusted_at <= conversion.occurred_at:
        raise RowRejected(
            "adjustment_precedes_conversion",
            f"The adjustment time {preflight.format_moment(adjustment.adjusted_at)} is not after "
            f"the conversion time {preflight.format_moment(conversion.occurred_at)}; Google Ads "
            "takes only adjustments made after the conversion.",
        )
    preflight.check_not_older_than(
        conversion.occurred_at,
        now,
        max_age=MAX_CONVERSION_AGE,
        code="adjustment_window_closed",
        why=(
            "Google Ads retracts or restates only conversions up to 54 days old, so the change "
            "can no longer be sent."
        ),
    )
    _check_adjustment_not_future(adjustment.adjusted_at, now)
    ready_at = conversion.occurred_at + MIN_CONVERSION_AGE
    if now < ready_at:
        send_after = (ready_at + MIN_AGE_MARGIN).astimezone(UTC)
        raise RowDeferred(
            "too_recent_conversion",
            f"The conversion happened at {preflight.format_moment(conversion.occurred_at)}, "
            f"less than 24 hours ago, and Google Ads adjusts only conversions at least 24 hours "
            f"old; it will be sent after {preflight.format_moment(send_after)}.",
            send_after,
        )


def _restatement_value(conversion: Conversion, adjustment: Adjustment) -> dict[str, Any] | None:
    """``{adjusted_value, currency_code}`` of a restatement (the new total); None otherwise."""
    if adjustment.kind is not AdjustmentKind.RESTATEMENT:
        return None
    if adjustment.value is None:
        raise RowRejected(
            "missing_restatement_value",
            "The restatement has no new value; a Google Ads restatement replaces the "
            "conversion's value, so it needs one (a refund of everything is a retraction).",
        )
    # The new total is checked like any conversion value, in the currency it comes with.
    restated = dataclasses.replace(
        conversion, value=adjustment.value, currency=adjustment.currency or conversion.currency
    )
    value = preflight.checked_value(restated)
    currency = preflight.checked_currency(restated)
    if value is None or currency is None:
        raise RowRejected(
            "missing_currency",
            f"The restatement to {preflight.decimal_text(adjustment.value)} has no currency, "
            "neither its own nor the conversion's; Google Ads needs the currency of every value.",
        )
    return {"adjusted_value": float(value), "currency_code": currency}


def _check_adjustment_not_future(adjusted_at: datetime, now: datetime) -> None:
    """Like a conversion time, an adjustment time is sent only once it is safely past."""
    ahead = adjusted_at - now
    if ahead <= -CLOCK_SKEW_MARGIN:
        return
    if ahead > preflight.FUTURE_DEFER_LIMIT:
        raise RowRejected(
            "future_adjustment_time",
            f"The adjustment time {preflight.format_moment(adjusted_at)} is "
            f"{preflight.format_age(ahead)} in the future; that is almost always a wrong date "
            f"or time zone in the source, so it is not sent to {PLATFORM}.",
        )
    send_after = (adjusted_at + CLOCK_SKEW_MARGIN).astimezone(UTC)
    raise RowDeferred(
        "future_adjustment_time",
        f"The adjustment time {preflight.format_moment(adjusted_at)} is not yet safely in the "
        f"past and {PLATFORM} takes no adjustments from the future; it will be sent after "
        f"{preflight.format_moment(send_after)}.",
        send_after,
    )
