"""Goal rules: a source record → zero or more conversions, and their planned deliveries.

This is the hot path of the map step: rules are compiled once per run, identifiers are
computed once per record and only when some goal matches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel

from convsync.config.models import GoalConfig, LoadedConfig, NotCondition
from convsync.core.identity import (
    MisplacedContact,
    build_identifiers,
    contact_in,
    conversion_key,
    lacks_country_code,
)
from convsync.core.model import (
    AdjustmentCandidate,
    AdjustmentKind,
    Conversion,
    DeliveryState,
    Identifiers,
    PlannedDelivery,
    RawRecord,
    RecordRejection,
    no_identifier,
)
from convsync.core.parsing import ParseError, describe_value, normalize_currency, parse_money
from convsync.destinations.base import Destination
from convsync.sync.notices import PHONE_WITHOUT_REGION, notice_code

_CONSENT = {
    "granted": "GRANTED", "yes": "GRANTED", "true": "GRANTED", "1": "GRANTED", "да": "GRANTED",
    "denied": "DENIED", "no": "DENIED", "false": "DENIED", "0": "DENIED", "нет": "DENIED",
}  # fmt: skip


def _compile_condition(
    field: str, cond: str | list[str] | NotCondition
) -> Callable[[Mapping[str, str]], bool]:
    if isinstance(cond, NotCondition):
        values = cond.not_ if isinstance(cond.not_, list) else [cond.not_]
        banned = frozenset(v.casefold() for v in values)
        return lambda f: f.get(field, "").strip().casefold() not in banned
    allowed = frozenset(c.casefold() for c in (cond if isinstance(cond, list) else [cond]))
    return lambda f: f.get(field, "").strip().casefold() in allowed


def _all_of(
    conditions: Sequence[Callable[[Mapping[str, str]], bool]],
) -> Callable[[Mapping[str, str]], bool]:
    """One function true when every condition is (asked once per record and goal: the
    usual single condition is returned as it is)."""
    if not conditions:
        return lambda fields: True
    if len(conditions) == 1:
        return conditions[0]
    return lambda fields: all(cond(fields) for cond in conditions)


class _RecordProblem(Exception):
    def __init__(self, field: str, code: str, reason: str, *, hide_record_id: bool = False) -> None:
        super().__init__(reason)
        self.field, self.code, self.reason = field, code, reason
        #: the record id is itself the problem: it must not be stored with the rejection
        self.hide_record_id = hide_record_id


#: Source types whose values are numbers as an API wrote them (JSON, BigQuery, Metrica's
#: TSV): ``12.345`` there is twelve and a bit, not the ambiguous text of an export.
#: CSV, SQL (text columns) and webhook (form) values may be written by people.
API_NUMBER_SOURCES = frozenset({"amocrm", "bitrix24", "hubspot", "metrica_logs", "ga4_bigquery"})

MISPLACED = "identity_in_wrong_column"
_NOT_KEPT = "it is neither stored nor sent"
_CONTACT_FIELDS = (
    "the e-mail or phone column belongs in the source's fields as email / phone, where it is hashed"
)


def _misplaced_click_id(problem: MisplacedContact, columns: Mapping[str, str]) -> _RecordProblem:
    field = problem.via or problem.field
    column = columns.get(field, field)
    if problem.via:
        where = f"The {problem.field} parameter of the landing page URL (column {column!r})"
    else:
        where = f"The {problem.field} (column {column!r})"
    return _RecordProblem(
        field,
        MISPLACED,
        f"{where} holds what looks like {problem.kind}; {_NOT_KEPT}. "
        f"Map the column that holds the real {problem.field} there; {_CONTACT_FIELDS}.",
    )


class GoalRule:
    """One goal compiled for fast matching and mapping."""

    def __init__(
        self,
        name: str,
        config: GoalConfig,
        targets: Mapping[str, BaseModel],
        destinations: Mapping[str, Destination[BaseModel, BaseModel]],
        phone_region: str | None = None,
        *,
        point_decimal: bool = False,
    ) -> None:
        self.name = name
        self.config = config
        self.phone_region = phone_region
        #: the source writes numbers as programs do: a single "." is the decimal point
        self.point_decimal = point_decimal
        self.targets = dict(targets)
        #: whether a record's fields meet the goal's ``when`` / ``retract_when``
        self.matches = _all_of([_compile_condition(k, v) for k, v in config.when.items()])
        self._retract_conditions = [
            _compile_condition(k, v) for k, v in (config.retract_when or {}).items()
        ]
        self._retracts = _all_of(self._retract_conditions)
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

    def retracts(self, fields: Mapping[str, str]) -> bool:
        """The record says a conversion of this goal is taken back (``retract_when``)."""
        if not self._retract_conditions or not self.adjusting:
            return False
        return self._retracts(fields)

    def key_of(self, record: RawRecord) -> tuple[str, str]:
        """The conversion key and order id of the record's conversion for this goal."""
        order_id = record.record_id
        if self.config.order_id is not None:
            field = self.config.order_id
            order_id = record.fields.get(field, "").strip()
            if not order_id:
                raise _RecordProblem(field, "missing_order_id", "the order id is empty")
            kind = contact_in(order_id, "order_id", self.phone_region)
            if kind is not None:
                column = record.columns.get(field, field)
                raise _RecordProblem(
                    field,
                    MISPLACED,
                    f"The order id (column {column!r}) looks like {kind}; {_NOT_KEPT}. "
                    f"Map a real order number as the goal's order_id; {_CONTACT_FIELDS}.",
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
                    value, written = parse_money(text, point_decimal=self.point_decimal)
                except ParseError as exc:
                    reason = exc.describe(describe_value(exc.text))
                    raise _RecordProblem(self._value_field, "bad_value", reason) from None
                if value < 0:
                    reason = f"value {describe_value(text)} is negative"
                    raise _RecordProblem(self._value_field, "bad_value", reason)
                if text.lstrip()[:1] == "+" and contact_in(text, "value", self.phone_region):
                    # "+79001234567" reads as an amount; digits alone cannot be told apart
                    column = record.columns.get(self._value_field, self._value_field)
                    raise _RecordProblem(
                        self._value_field,
                        MISPLACED,
                        f"The value (column {column!r}) looks like a phone number, not an "
                        f"amount; {_NOT_KEPT}. Map the amount's column as value; "
                        f"{_CONTACT_FIELDS}.",
                    )
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
    #: risky defaults met, counted per notice code (``RunSummary.notices``)
    notices: Counter[str] = field(default_factory=Counter)


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
        #: where phones without a country code are counted as dropped (no phone_region)
        self.dropped_phones = (
            None if app.phone_region else notice_code(PHONE_WITHOUT_REGION, source)
        )
        self.destinations = destinations
        source_config = app.sources.get(source)
        point_decimal = getattr(source_config, "type", None) in API_NUMBER_SOURCES
        self.rules = [
            GoalRule(
                name,
                goal,
                loaded.targets.get(name, {}),
                destinations,
                app.phone_region,
                point_decimal=point_decimal,
            )
            for name, goal in app.goals.items()
            if goal.source == source and (not goals or name in goals)
        ]
        id_column = getattr(source_config, "id", None)
        if isinstance(id_column, list | tuple):
            id_column = ", ".join(id_column)
        #: how rejections name the record id's column
        self.id_column = id_column if isinstance(id_column, str) else "id"

    def _identifiers(
        self, record: RawRecord, notices: Counter[str]
    ) -> Identifiers | _RecordProblem:
        """The record's identifiers, or why its record id or a click id cannot be kept."""
        kind = contact_in(record.record_id, "id", self.phone_region)
        if kind is not None:
            return _RecordProblem(
                "id",
                MISPLACED,
                f"The record id (column {self.id_column!r}) looks like {kind}; {_NOT_KEPT}. "
                f"Map a real order or record number as the source's id; {_CONTACT_FIELDS}.",
                hide_record_id=True,
            )
        try:
            ids = build_identifiers(record.fields, self.phone_region)
        except MisplacedContact as problem:
            return _misplaced_click_id(problem, record.columns)
        if self.dropped_phones is not None and ids.phone_sha256 is None:
            phone = record.fields.get("phone")
            if phone and lacks_country_code(phone):
                notices[self.dropped_phones] += 1
        return ids

    def map(self, records: Sequence[RawRecord], *, plan: bool = True) -> MappedChunk:
        """Conversions, rejections and adjustment candidates of ``records``, with each
        conversion's planned deliveries unless ``plan`` is false (a dry run plans its own
        entries)."""
        out = MappedChunk([], [], [])
        seen: set[str] = set()
        for record in records:
            ids: Identifiers | _RecordProblem | None = None
            for rule in self.rules:
                if rule.retracts(record.fields):
                    self._retraction(record, rule, out)
                    continue
                if not rule.matches(record.fields):
                    continue
                if ids is None:
                    ids = self._identifiers(record, out.notices)
                if isinstance(ids, _RecordProblem):
                    out.rejections.append(self._rejection(record, rule, ids))
                    continue
                try:
                    conversion = rule.to_conversion(record, ids)
                except _RecordProblem as problem:
                    out.rejections.append(self._rejection(record, rule, problem))
                    continue
                if conversion.key in seen:
                    continue  # the same order twice in one chunk: the first one wins
                seen.add(conversion.key)
                out.conversions.append(conversion)
                if plan:
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

    def _rejection(
        self, record: RawRecord, rule: GoalRule, problem: _RecordProblem
    ) -> RecordRejection:
        record_id: str | None = record.record_id
        origin = record.origin
        if problem.hide_record_id:
            # some sources name a row by its id ("webhook leads #<id>")
            origin = origin.replace(record.record_id, "(id hidden)")
            record_id = None
        return RecordRejection(
            source=record.source,
            origin=origin,
            column=self.id_column
            if problem.hide_record_id
            else record.columns.get(problem.field, problem.field),
            code=problem.code,
            reason=problem.reason,
            record_id=record_id,
            goal=rule.name,
        )

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
                        *no_identifier(dest.type),
                    )
                )
        return planned
