"""What a webhook body says: parsed (JSON or form), its records found and read.

Form bodies use the bracket convention of PHP-born senders (amoCRM, Bitrix24):
``leads[status][0][id]=7`` becomes ``{"leads": {"status": {"0": {"id": "7"}}}}``, so
one path syntax — names joined by dots, ``leads.status`` — serves both kinds of body.
Every value stays text as the sender wrote it (JSON numbers included), because the goal
rules parse values themselves and must see the sender's own digits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from http.cookies import CookieError, SimpleCookie
from typing import Any
from zoneinfo import ZoneInfo

from convsync.core.model import RawRecord
from convsync.core.parsing import ParseError, amount_text, parse_timestamp
from convsync.sources.webhook.config import WebhookSourceConfig

#: a submission id longer than this is not an id
MAX_ID_LENGTH = 200
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class Refusal(Exception):
    """A request convsync does not take: ``status`` is the HTTP answer, ``code`` the
    log's and the answer's ``error``, ``reason`` what the sender should know."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


def _json_number(text: str) -> str:
    """A JSON number with a fraction, as text the amount rule reads as that number: a
    JSON number's ``.`` is always its decimal point (``1.500`` is 1.5, written
    ``1.5000``); one far out of any amount's range stays as written (and is refused)."""
    number = Decimal(text)
    if not -20 <= number.adjusted() <= 20:
        return text
    return amount_text(number)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=_json_number, parse_int=str)
    except UnicodeDecodeError:
        raise Refusal(400, "malformed", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Refusal(
            400,
            "malformed",
            f"the body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
        ) from None


def nest_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Form fields as nested dicts: ``a[b][]=1&a[b][]=2`` → ``{"a": {"b": {"0": "1", "1": "2"}}}``.

    A plain name given twice keeps its first value (a checkbox group's first choice).
    """
    root: dict[str, Any] = {}
    for name, value in pairs:
        head, _, rest = name.partition("[")
        keys = [head, *_BRACKETS.findall("[" + rest)] if rest else [head]
        node = root
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            if key == "":
                key = str(len(node))  # a[]: the next index
            if last:
                node.setdefault(key, value)
                break
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child  # a scalar sent before a[b] is shadowed by the nested form
            node = child
    return root


def _items(value: Any) -> list[Any]:
    """A list of records: a JSON array, or form fields numbered 0, 1, …"""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return [value]


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path, or None. A key that itself holds dots (a form field
    named ``utm.source``) is tried whole before the path is split."""
    if isinstance(data, Mapping) and path in data:
        return data[path]
    head, dot, rest = path.partition(".")
    if isinstance(data, Mapping):
        child = data.get(head)
    elif isinstance(data, list) and head.isdigit() and int(head) < len(data):
        child = data[int(head)]
    else:
        return None
    return lookup(child, rest) if dot else child


def as_text(value: Any) -> str | None:
    """A scalar as text; None for nothing. Lists give their first element (a form's
    repeated field); objects are not values."""
    if isinstance(value, list):
        return as_text(value[0]) if value else None
    if isinstance(value, dict):
        if value and all(k.isdigit() for k in value):
            return as_text(_items(value))
        return None
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _amocrm_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """amoCRM sends custom fields as a list of {id, name, values}; make them readable by
    name and by id: ``custom_fields.GCLID`` or ``custom_fields.123456``."""
    out = dict(record)
    named: dict[str, Any] = {}
    for field in _items(record.get("custom_fields") or []):
        if not isinstance(field, Mapping):
            continue
        values = _items(field.get("values") or [])
        first = values[0] if values else None
        value = first.get("value") if isinstance(first, Mapping) else first
        for key in (field.get("name"), field.get("id"), field.get("code")):
            if isinstance(key, str) and key:
                named.setdefault(key, value)
    if named:
        out["custom_fields"] = named
    return out


def _tilda_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """Tilda's ``COOKIES`` field is one cookie header; make each cookie a path."""
    out = dict(record)
    raw = record.get("COOKIES")
    if isinstance(raw, str):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return out
        out["COOKIES"] = {name: morsel.value for name, morsel in jar.items()}
    return out


def is_tilda_test(payload: Any) -> bool:
    """Tilda checks a new webhook with one ``test=test`` post."""
    return isinstance(payload, Mapping) and payload.get("test") == "test" and len(payload) == 1


class RecordReader:
    """Turns the parsed bodies of one webhook source into records."""

    def __init__(self, name: str, config: WebhookSourceConfig, tz: ZoneInfo) -> None:
        self.name = name
        self.config = config
        self.tz = tz
        self.records_path = config.records_path()
        self.id_paths = config.id_paths()
        self.time_path = config.time_path()
        self.mapping = config.mapping()

    def records(self, payload: Any, received_at: datetime) -> list[RawRecord]:
        found = payload if self.records_path is None else lookup(payload, self.records_path)
        if found is None:
            raise Refusal(422, "no_records", f"the body has nothing at {self.records_path!r}")
        out = []
        for n, item in enumerate(_items(found)):
            if not isinstance(item, Mapping):
                raise Refusal(422, "not_a_record", f"record {n} is not an object of fields")
            out.append(self._record(self._normalized(item), n, received_at))
        if not out:
            raise Refusal(422, "no_records", "the body holds no record")
        return out

    def _normalized(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.config.sender == "amocrm":
            return _amocrm_fields(item)
        if self.config.sender == "tilda":
            return _tilda_fields(item)
        return item

    def _record(self, item: Mapping[str, Any], n: int, received_at: datetime) -> RawRecord:
        parts = []
        for path in self.id_paths:
            part = as_text(lookup(item, path))
            if part is None and self.config.sender == "bitrix24" and "event" in item:
                raise Refusal(
                    422,
                    "event_only",
                    "a Bitrix24 event handler sends only the deal's id: post from an "
                    "automation rule's outgoing webhook with the deal's fields as parameters, "
                    "or read whole deals with a bitrix24 source",
                )
            if part is None:
                raise Refusal(
                    422,
                    "no_id",
                    f"record {n} has no submission id at {path!r} (sources.{self.name}.id)",
                )
            parts.append(part)
        record_id = ":".join(parts)
        if len(record_id) > MAX_ID_LENGTH:
            raise Refusal(
                422, "bad_id", f"record {n}'s submission id is over {MAX_ID_LENGTH} characters"
            )
        occurred_at = received_at
        if self.time_path is not None:
            text = as_text(lookup(item, self.time_path))
            if text is not None:
                try:
                    occurred_at = parse_timestamp(text, self.tz)
                except ParseError as exc:
                    raise Refusal(
                        422, "bad_time", f"record {n}: {self.time_path!r} is not a time ({exc})"
                    ) from None
        fields = {}
        for name, path in self.mapping.items():
            text = as_text(lookup(item, path))
            if text is not None:
                fields[name] = text
        return RawRecord(
            source=self.name,
            record_id=record_id,
            occurred_at=occurred_at,
            fields=fields,
            origin=f"webhook {self.name} #{record_id}",
            columns=self.mapping,
        )
