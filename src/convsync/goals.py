"""Goal rules: a source record → zero or more conversions, and their planned deliveries.

This is the hot path of the map step: rules are compiled once per run, identifiers are
computed once per record and only when some goal matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel

from convsync.config import GoalConfig, LoadedConfig, NotCondition
from convsync.destinations.base import Destination
from convsync.identity import build_identifiers
from convsync.model import (
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

    def __init__(self, name: str, config: GoalConfig, targets: Mapping[str, BaseModel]) -> None:
        self.name = name
        self.config = config
        self.targets = dict(targets)
        self._conditions = [_compile_condition(k, v) for k, v in config.when.items()]
        if isinstance(config.value, str):
            self._value_field: str | None = config.value
            self._fixed_value: Decimal | None = None
        else:
            self._value_field = None
            self._fixed_value = None if config.value is None else Decimal(str(config.value))

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(cond(fields) for cond in self._conditions)

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
        order_id = record.record_id
        if self.config.order_id is not None:
            order_id = fields.get(self.config.order_id, "").strip()
            if not order_id:
                raise _RecordProblem(
                    self.config.order_id, "missing_order_id", "the order id is empty"
                )
        if self.config.dedup_by == "order_id":
            key = conversion_key("order", self.name, order_id)
        else:
            key = conversion_key(record.source, record.record_id, self.name)
        consent = fields.get("consent")
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
        )


@dataclass(slots=True)
class MappedChunk:
    conversions: list[Conversion]
    deliveries: list[PlannedDelivery]
    rejections: list[RecordRejection]


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
            GoalRule(name, goal, loaded.targets.get(name, {}))
            for name, goal in app.goals.items()
            if goal.source == source and (not goals or name in goals)
        ]

    def map(self, records: Sequence[RawRecord]) -> MappedChunk:
        out = MappedChunk([], [], [])
        seen: set[str] = set()
        for record in records:
            ids: Identifiers | None = None
            for rule in self.rules:
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
        return out

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
