"""What the fake Google Ads account remembers, and how it judges each uploaded row.

Accepted click conversions are kept by ``(conversion_action, order_id)`` and by
``(conversion_action, click id, conversion_date_time)``, so a replay answers
ORDER_ID_ALREADY_IN_USE / CLICK_CONVERSION_ALREADY_EXISTS as Google does. Adjustments find
their conversion by order id: CONVERSION_NOT_FOUND, CONVERSION_ALREADY_RETRACTED,
RESTATEMENT_ALREADY_EXISTS, MORE_RECENT_RESTATEMENT_FOUND. A validate-only request is
judged the same way but changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from google.ads.googleads.v26.services.types import conversion_adjustment_upload_service as adj
from google.ads.googleads.v26.services.types import conversion_upload_service as up

from .faults import Err

UPLOAD = "conversion_upload_error"
ADJUST = "conversion_adjustment_upload_error"


def parse_time(text: str) -> datetime:
    """``2026-11-20 14:03:00+03:00`` (the API's format) as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S%z")


def click_of(conversion: up.ClickConversion) -> str | None:
    for name in ("gclid", "gbraid", "wbraid"):
        value = getattr(conversion, name)
        if value:
            return f"{name}:{value}"
    return None


@dataclass
class StoredConversion:
    conversion: up.ClickConversion
    retracted: bool = False
    #: (adjustment time, new value, currency) of each restatement, in arrival order
    restatements: list[tuple[datetime, float, str]] = field(default_factory=list)

    @property
    def value(self) -> float:
        if self.restatements:
            return max(self.restatements)[1]
        return self.conversion.conversion_value


class AccountState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conversions: dict[tuple[str, str], StoredConversion] = {}
        self.click_keys: set[tuple[str, str, str]] = set()
        #: conversion actions that exist; None: every action exists
        self.conversion_actions: set[str] | None = None
        #: hashed identifiers that match no click: an EC4L row with only these gets
        #: CLICK_NOT_FOUND (the warning Google says to ignore) and is not recorded
        self.unmatched_identifiers: set[str] = set()

    # --- click conversions ---

    def upload_clicks(
        self, conversions: list[up.ClickConversion], validate_only: bool
    ) -> list[list[Err]]:
        """Errors per row (empty: accepted, and recorded unless validate_only)."""
        seen_orders: set[str] = set()
        seen_clicks: set[tuple[str, str, str]] = set()
        out: list[list[Err]] = []
        for conversion in conversions:
            errors = self._click_errors(conversion, seen_orders, seen_clicks)
            out.append(errors)
            if not errors and not validate_only:
                action = conversion.conversion_action
                self.conversions[(action, conversion.order_id)] = StoredConversion(conversion)
                click = click_of(conversion)
                if click:
                    self.click_keys.add((action, click, conversion.conversion_date_time))
        return out

    def _click_errors(
        self,
        conversion: up.ClickConversion,
        seen_orders: set[str],
        seen_clicks: set[tuple[str, str, str]],
    ) -> list[Err]:
        action = conversion.conversion_action
        if self.conversion_actions is not None and action not in self.conversion_actions:
            return [Err(UPLOAD, "NO_CONVERSION_ACTION_FOUND", field_path=("conversion_action",))]
        if conversion.gbraid and conversion.wbraid:
            return [Err(UPLOAD, "GBRAID_WBRAID_BOTH_SET", field_path=("wbraid",))]
        click = click_of(conversion)
        hashes = {i.hashed_email or i.hashed_phone_number for i in conversion.user_identifiers}
        if click is None and not hashes:
            return [Err("request_error", "REQUIRED_FIELD_MISSING", field_path=("gclid",))]
        errors: list[Err] = []
        order = conversion.order_id
        if order:
            if order in seen_orders:
                errors.append(Err(UPLOAD, "DUPLICATE_ORDER_ID", field_path=("order_id",)))
            elif (action, order) in self.conversions:
                errors.append(Err(UPLOAD, "ORDER_ID_ALREADY_IN_USE", field_path=("order_id",)))
            seen_orders.add(order)
        if click is not None:
            key = (action, click, conversion.conversion_date_time)
            if key in seen_clicks:
                errors.append(Err(UPLOAD, "DUPLICATE_CLICK_CONVERSION_IN_REQUEST"))
            elif key in self.click_keys:
                errors.append(Err(UPLOAD, "CLICK_CONVERSION_ALREADY_EXISTS"))
            seen_clicks.add(key)
        elif hashes <= self.unmatched_identifiers:
            errors.append(Err(UPLOAD, "CLICK_NOT_FOUND", field_path=("user_identifiers",)))
        return errors

    # --- adjustments ---

    def upload_adjustments(
        self, adjustments: list[adj.ConversionAdjustment], validate_only: bool
    ) -> list[list[Err]]:
        out: list[list[Err]] = []
        for adjustment in adjustments:
            errors, apply = self._adjustment_errors(adjustment)
            out.append(errors)
            if not errors and not validate_only and apply is not None:
                apply()
        return out

    def _adjustment_errors(
        self, adjustment: adj.ConversionAdjustment
    ) -> tuple[list[Err], Callable[[], None] | None]:
        kind = adjustment.adjustment_type.name
        if not adjustment.order_id:
            return [Err("request_error", "REQUIRED_FIELD_MISSING", field_path=("order_id",))], None
        stored = self.conversions.get((adjustment.conversion_action, adjustment.order_id))
        if stored is None:
            return [Err(ADJUST, "CONVERSION_NOT_FOUND", field_path=("order_id",))], None
        at = parse_time(adjustment.adjustment_date_time)
        if at <= parse_time(stored.conversion.conversion_date_time):
            return [Err(ADJUST, "ADJUSTMENT_PRECEDES_CONVERSION")], None
        if stored.retracted:
            return [Err(ADJUST, "CONVERSION_ALREADY_RETRACTED")], None
        if kind == "RETRACTION":

            def retract() -> None:
                stored.retracted = True

            return [], retract
        if kind != "RESTATEMENT":
            return [Err("request_error", "INVALID_ENUM_VALUE")], None
        times = [t for t, _, _ in stored.restatements]
        if at in times:
            return [Err(ADJUST, "RESTATEMENT_ALREADY_EXISTS")], None
        if times and max(times) > at:
            return [Err(ADJUST, "MORE_RECENT_RESTATEMENT_FOUND")], None
        value = adjustment.restatement_value

        def restate() -> None:
            stored.restatements.append((at, value.adjusted_value, value.currency_code))

        return [], restate
