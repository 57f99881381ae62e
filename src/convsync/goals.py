"""Goal rules: a source record → zero or more conversions, and their planned deliveries.

This is the hot path of the map step: rules are compiled once per run, identifiers are
computed once per record and only when some goal matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel

from convsync.config import GoalConfig, LoadedConfig, NotCondition
from convsync.destinations.base import Destination
from convsync.identity import build_identifiers
from convsync.model import (
    AdjustmentCandidate,
    AdjustmentKind,
    Conversion,
    DeliveryState,
    Identifiers,
    PlannedDelivery,
    RawRecord,
    RecordRejection,
)
from convsync.parsing import ParseError, describe_value, normalize_currency, parse_money

_SEP = "\x1f"
_CONSENT = {
    "granted": "GRANTED", "yes": "GRANTED", "true": "GRANTED", "1": "GRANTED", "да": "GRANTED",
    "denied": "DENIED", "no": "DENIED", "false": "DENIED", "0": "DENIED", "нет": "DENIED",
}  # fmt: skip


def conversion_key(*parts: str) -> str:
    """A stable key: the same parts always give the same 32 hex characters."""
    return hashlib.blake2b(_SEP.join(parts).encode("utf-8"), digest_size=16).hexdigest()


def _compile_condition(
    field: str, cond: str | list[str] | NotCondition
) -> Callable[[Mapping[str, str]], bool]:
    if isinstance(cond, NotCondition):
        values = cond.not_ if isinstance(cond.not_, list) else [cond.not_]
        banned = frozenset(v.casefold() for v in values)
        return lambda f: f.get(field, "").strip().casefold() not in banned
    allowed = frozenset(c.casefold() for c in (cond if isinstance(cond, list) else [cond]))
    return lambda f: f.get(field, "").strip().casefold() in allowed


class _RecordProblem(Exception):
    def __init__(self, field: str, code: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.code, self.reason = field, code, reason


class GoalRule:
    """One goal compiled for fast matching and mapping."""

    def __init__(
        self,
        name: str,
        config: GoalConfig,
        targets: Mapping[str, BaseModel],
        destinations: Mapping[str, Destination[BaseModel, BaseModel]],
    ) -> None:
        self.name = name
        self.config = config
        self.targets = dict(targets)
        self._conditions = [_compile_condition(k, v) for k, v in config.when.items()]
        self._retract_conditions = [
            _compile_condition(k, v) for k, v in (config.retract_when or {}).items()
        ]
        #: the destinations that can retract or restate what they received
        self.adjusting = tuple(
            dest for dest in self.targets if destinations[dest].supports_adjustments
        )
        self.restates = config.restate_on_value_change and bool(self.adjusting)
        #: record fields the destinations keep with the conversion
        self.attribute_fields = tuple(
            sorted(
                set().union(*(destinations[d].attribute_fields(t) for d, t in self.targets.items()))
            )
        )
        if isinstance(config.value, str):
            self._value_field: str | None = config.value
            self._fixed_value: Decimal | None = None
        else:
            self._value_field = None
            self._fixed_value = None if config.value is None else Decimal(str(config.value))

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(cond(fields) for cond in self._conditions)

    def retracts(self, fields: Mapping[str, str]) -> bool:
        """The record says a conversion of this goal is taken back (``retract_when``)."""
        if not self._retract_conditions or not self.adjusting:
            return False
        return all(cond(fields) for cond in self._retract_conditions)

    def key_of(self, record: RawRecord) -> tuple[str, str]:
        """The conversion key and order id of the record's conversion for this goal."""
        order_id = record.record_id
        if self.config.order_id is not None:
            order_id = record.fields.get(self.config.order_id, "").strip()
            if not order_id:
                raise _RecordProblem(
                    self.config.order_id, "missing_order_id", "the order id is empty"
                )
        if self.config.dedup_by == "order_id":
            return conversion_key("order", self.name, order_id), order_id
        return conversion_key(record.source, record.record_id, self.name), order_id

    def to_conversion(self, record: RawRecord, ids: Identifiers) -> Conversion:
        fields = record.fields
        value = self._fixed_value
        written: str | None = None  # a currency written with the amount ("$20", "1 500 ₽")
        if self._value_field is not None:
            text = fields.get(self._value_field)
            if text:
                try:
                    value, written = parse_money(text)
                except ParseError as exc:
                    reason = exc.describe(describe_value(exc.text))
                    raise _RecordProblem(self._value_field, "bad_value", reason) from None
                if value < 0:
                    reason = f"value {describe_value(text)} is negative"
                    raise _RecordProblem(self._value_field, "bad_value", reason)
        # the record's currency column, else the one written with the amount, else the
        # goal's default
        currency = written or self.config.currency
        raw_currency = fields.get("currency")
        if raw_currency:
            currency = normalize_currency(raw_currency)
            if currency is None:
                raise _RecordProblem(
                    "currency",
                    "bad_currency",
                    f"{describe_value(raw_currency)} is not an ISO 4217 currency code "
                    "(RUB, USD, EUR, …)",
                )
            if written is not None and written != currency:
                field = self._value_field or "value"
                raise _RecordProblem(
                    field,
                    "bad_currency",
                    f"the amount is written in {written} but the currency column says {currency}",
                )
        key, order_id = self.key_of(record)
        # ``consent`` is the older name of ``ad_user_data_consent``
        consent = fields.get("ad_user_data_consent") or fields.get("consent")
        attributes = None
        if self.attribute_fields:
            attributes = {f: v for f in self.attribute_fields if (v := fields.get(f))}
        return Conversion(
            key=key,
            source=record.source,
            record_id=record.record_id,
            goal=self.name,
            order_id=order_id,
            occurred_at=record.occurred_at,
            value=value,
            currency=currency,
            ids=ids,
            consent=_CONSENT.get(consent.strip().casefold()) if consent else None,
            attributes=attributes or None,
        )


@dataclass(slots=True)
class MappedChunk:
    conversions: list[Conversion]
    deliveries: list[PlannedDelivery]
    rejections: list[RecordRejection]
    adjustments: list[AdjustmentCandidate] = field(default_factory=list)


class GoalMapper:
    """All goals of one source: records → conversions + planned deliveries."""

    def __init__(
        self,
        loaded: LoadedConfig,
        source: str,
        destinations: Mapping[str, Destination[BaseModel, BaseModel]],
        goals: Sequence[str] | None = None,
    ) -> None:
        app = loaded.app
        self.source = source
        self.phone_region = app.phone_region
        self.destinations = destinations
        self.rules = [
            GoalRule(name, goal, loaded.targets.get(name, {}), destinations)
            for name, goal in app.goals.items()
            if goal.source == source and (not goals or name in goals)
        ]

    def map(self, records: Sequence[RawRecord]) -> MappedChunk:
        out = MappedChunk([], [], [])
        seen: set[str] = set()
        for record in records:
            ids: Identifiers | None = None
            for rule in self.rules:
                if rule.retracts(record.fields):
                    self._retraction(record, rule, out)
                    continue
                if not rule.matches(record.fields):
                    continue
                if ids is None:
                    ids = build_identifiers(record.fields, self.phone_region)
                try:
                    conversion = rule.to_conversion(record, ids)
                except _RecordProblem as problem:
                    out.rejections.append(
                        RecordRejection(
                            source=record.source,
                            origin=record.origin,
                            column=record.columns.get(problem.field, problem.field),
                            code=problem.code,
                            reason=problem.reason,
                            record_id=record.record_id,
                            goal=rule.name,
                        )
                    )
                    continue
                if conversion.key in seen:
                    continue  # the same order twice in one chunk: the first one wins
                seen.add(conversion.key)
                out.conversions.append(conversion)
                out.deliveries.extend(self.plan(conversion, rule))
                if rule.restates:
                    out.adjustments.append(
                        AdjustmentCandidate(
                            conversion.key,
                            rule.name,
                            AdjustmentKind.RESTATEMENT,
                            rule.adjusting,
                            conversion.value,
                            conversion.currency,
                        )
                    )
        return out

    @staticmethod
    def _retraction(record: RawRecord, rule: GoalRule, out: MappedChunk) -> None:
        try:
            key, _ = rule.key_of(record)
        except _RecordProblem:
            return  # without an order id no conversion of it can have been recorded
        out.adjustments.append(
            AdjustmentCandidate(key, rule.name, AdjustmentKind.RETRACTION, rule.adjusting)
        )

    def plan(self, conversion: Conversion, rule: GoalRule) -> list[PlannedDelivery]:
        planned = []
        for dest_name, target in rule.targets.items():
            dest = self.destinations[dest_name]
            if dest.has_identifier(conversion, target):
                planned.append(PlannedDelivery(conversion.key, rule.name, dest_name))
            else:
                planned.append(
                    PlannedDelivery(
                        conversion.key,
                        rule.name,
                        dest_name,
                        DeliveryState.SKIPPED,
                        "no_identifier",
                        f"no identifier {dest.type} can match",
                    )
                )
        return planned
