"""A config file's validation errors as problems at the user's own paths.

Pydantic names a place by the models it tried (``when.status.NotCondition.not``,
``sources.shop.csv.path``) and says what failed in its own words; here each error is
put back at the path the user wrote, a value that fits none of the kinds a key takes
gets one problem (not one per kind), and the words are plain
(:mod:`convsync.config.messages`). A value that came from ``${…}`` or that is a
credential is never shown: only its kind, and the reference it came from.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from convsync.config.messages import choices, describe, describe_union, kind_of, suggest
from convsync.config.models import (
    DESTINATION_MODELS,
    SOURCE_MODELS,
    TARGET_MODELS,
    AppConfig,
    DeliveryConfig,
    GoalConfig,
    NotCondition,
    ScheduleConfig,
)
from convsync.config.text import ConfigPath, LineIndex, dotted
from convsync.config.webhooks import WebhookServerConfig
from convsync.core.errors import ConfigProblem

#: a value this short, unquoted inside a message, is left there: replacing it would
#: garble the message's own words (the log redaction leaves such values alone too)
_SHORTEST_HIDDEN = 6

#: the section of a file whose entries pick their model by ``type``
_TYPED_SECTIONS: Mapping[str, Mapping[str, type[BaseModel]]] = {
    "sources": SOURCE_MODELS,
    "destinations": DESTINATION_MODELS,
}


def _secret_keys(models: Iterable[type[BaseModel]]) -> frozenset[str]:
    """The keys that hold credentials (``SecretStr``), in these models and those nested."""
    keys: set[str] = set()
    pending = list(models)
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            kinds = _kinds(info.annotation)
            if SecretStr in kinds:
                keys.add(info.alias or name)
            pending += [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
    return frozenset(keys)


def _kinds(annotation: Any) -> list[Any]:
    """The types inside an annotation (``SecretStr | None``, ``dict[str, Model]``)."""
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    origin = typing.get_origin(annotation)
    found_here = [] if origin in (typing.Union, types.UnionType) else [origin]
    return found_here + [k for arg in args for k in _kinds(arg)]


SECRET_KEYS = _secret_keys([AppConfig, *TARGET_MODELS.values()])


@dataclass(frozen=True)
class Shown:
    """How a value at a path may be shown: a credential, or anything that came from
    ``${…}`` (the environment, a secret file), only by its kind."""

    raw: Any  # the data as written, before ``${…}`` were replaced
    interpolated: frozenset[ConfigPath]

    def got(self, path: ConfigPath, value: Any) -> str | None:
        """What stands for the value in a message, or None to show the value itself."""
        if path in self.interpolated:
            written = walk(self.raw, path)
            origin = f" from {written}" if isinstance(written, str) else ""
            return f"{kind_of(value)}{origin}"
        if path and path[-1] in SECRET_KEYS:
            return f"{kind_of(value)} (not shown: {path[-1]} is a credential)"
        return None


@dataclass(frozen=True)
class _Located:
    """One pydantic error at the user's path, with the unions it went through: for
    each, the path of the value and the kind (member) that was tried."""

    path: ConfigPath
    unions: tuple[tuple[ConfigPath, str], ...]
    error: ErrorDetails

    def inside(self) -> _Located:
        return _Located(self.path, self.unions[1:], self.error)


def translate(
    exc: ValidationError,
    data: Any,
    lines: LineIndex,
    shown: Shown,
    base: ConfigPath = (),
    model: type[BaseModel] | None = None,
) -> list[ConfigProblem]:
    """The problems of ``exc``, raised validating ``data`` (found at ``base`` in the
    file, validated as ``model``: a goal's target)."""
    located = [_locate(err, data) for err in exc.errors(include_url=False)]
    out: dict[tuple[str, str], ConfigProblem] = {}
    for path, errors in _pick(located):
        full = (*base, *path)
        if len(errors) > 1:
            message = describe_union(errors, shown.got(full, errors[0].get("input")))
        else:
            path, message = _message(errors[0], path, data, shown, base, model)
            full = (*base, *path)
        problem = ConfigProblem(dotted(full), message, lines.line(full))
        out.setdefault((problem.path, message), problem)
    return list(out.values())


def _message(
    err: ErrorDetails,
    path: ConfigPath,
    data: Any,
    shown: Shown,
    base: ConfigPath,
    model: type[BaseModel] | None,
) -> tuple[ConfigPath, str]:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    full = (*base, *path)
    if kind == "extra_forbidden":
        key = str(path[-1])
        if model is not None and len(path) == 1:
            hint = _hint(key, sorted(model.model_fields))
            return path, f"unknown key {key!r} for a {_target_kind(model)} target{hint}"
        return path, f"unknown key {key!r}{_hint(key, _allowed_keys(path, walk(data, path[:-1])))}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        section = _TYPED_SECTIONS.get(str(full[0]))
        known = sorted(section) if section else choices(str(ctx.get("expected_tags"))).split(", ")
        if kind == "union_tag_not_found":
            return (*path, "type"), f"required key is missing: one of {', '.join(known)}"
        tag = str(ctx.get("tag"))
        return (*path, "type"), f"unknown type {tag!r}{_hint(tag, known)}"
    value = err.get("input")
    got = shown.got(full, value)
    message = describe(err, got)
    if got is not None and isinstance(value, str) and kind == "value_error":
        # a validator of ours quoted the value (a time zone's name): not this one
        message = message.replace(repr(value), got)
        if len(value) >= _SHORTEST_HIDDEN:
            message = message.replace(value, got)
    return path, message


def _hint(name: str, known: list[str]) -> str:
    """`` (did you mean 'when'?)``, else the names known."""
    close = suggest(name, known)
    if "did you mean" in close or not known:
        return close
    return f" (known: {', '.join(known)})"


def _target_kind(model: type[BaseModel]) -> str:
    return next((kind for kind, m in TARGET_MODELS.items() if m is model), model.__name__)


def _locate(err: ErrorDetails, data: Any) -> _Located:
    """Where an error is in the user's data: the keys and indexes that are there (and a
    required key that is not); every other part of pydantic's location names a kind a
    union tried (``str``, ``list[str]``, ``NotCondition``, a source's ``csv``) or a
    dict's key check (``[key]``)."""
    loc = err["loc"]
    path: list[str | int] = []
    unions: list[tuple[ConfigPath, str]] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and last and err["type"] == "missing":
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
        else:
            unions.append((tuple(path), str(part)))
    return _Located(tuple(path), tuple(unions), err)


#: errors that say a value is not of a kind at all (not text, not a list): a union
#: whose every kind failed so is told as one problem
_NOT_OF_THE_KIND = frozenset(
    {
        "string_type", "int_type", "int_parsing", "int_from_float", "float_type",
        "float_parsing", "bool_type", "bool_parsing", "list_type", "dict_type",
        "model_type", "model_attributes_type", "date_type", "datetime_type",
        "date_parsing", "datetime_parsing", "date_from_datetime_parsing",
        "datetime_from_date_parsing", "none_required", "literal_error", "is_instance_of",
    }
)  # fmt: skip


def _pick(items: list[_Located]) -> list[tuple[ConfigPath, list[ErrorDetails]]]:
    """The problems to tell: an error outside any union as it is; for a union, the
    errors of the first kind that took the value's shape (a mapping for
    ``{not: …}``: its missing and unknown keys), or, when no kind did, every kind's error
    together (to be told as one)."""
    out: list[tuple[ConfigPath, list[ErrorDetails]]] = []
    unions: dict[ConfigPath, dict[str, list[_Located]]] = {}
    for item in items:
        if not item.unions:
            out.append((item.path, [item.error]))
        else:
            point, kind = item.unions[0]
            unions.setdefault(point, {}).setdefault(kind, []).append(item)
    for point, kinds in unions.items():
        taken = next(
            (
                members
                for members in kinds.values()
                if len(kinds) == 1
                or any(m.path != point or m.error["type"] not in _NOT_OF_THE_KIND for m in members)
            ),
            None,
        )
        if taken is not None:
            out += _pick([m.inside() for m in taken])
        else:
            out.append((point, [members[0].error for members in kinds.values()]))
    return out


def walk(data: Any, path: ConfigPath) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _allowed_keys(path: ConfigPath, parent: Any) -> list[str]:
    """Keys the model at ``path[:-1]`` accepts, to suggest the one meant."""
    head = path[:-1]
    model: type[BaseModel] | None = None
    if len(head) == 0:
        model = AppConfig
    elif head == ("schedule",):
        model = ScheduleConfig
    elif head == ("delivery",):
        model = DeliveryConfig
    elif head == ("webhooks",):
        model = WebhookServerConfig
    elif len(head) == 2 and head[0] == "goals":
        model = GoalConfig
    elif len(head) == 4 and head[0] == "goals" and head[2] in ("when", "retract_when"):
        model = NotCondition
    elif len(head) == 2 and str(head[0]) in _TYPED_SECTIONS and isinstance(parent, dict):
        model = _TYPED_SECTIONS[str(head[0])].get(str(parent.get("type")))
    if model is None:
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())
