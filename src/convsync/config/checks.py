"""The checks of a config file across its sections — a goal's source and destinations,
the fields it reads, adjustments only where a destination takes them, no round trip of
Metrica goals — made on the raw data, so that they are reported together with the
structural problems; and the config model of each source and destination type."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from convsync.config.messages import suggest
from convsync.config.models import KNOWN_FIELDS, SOURCE_MODELS
from convsync.config.text import ConfigPath, LineIndex, dotted
from convsync.core.errors import ConfigProblem
from convsync.destinations import DESTINATION_TYPES, adjustable_types

#: the destination types that take adjustments
ADJUSTABLE_TYPES = adjustable_types()


def cross_check(data: dict[str, Any], lines: LineIndex) -> list[ConfigProblem]:
    """References between sections, checked on the raw data so that they are reported
    together with structural problems."""
    problems: list[ConfigProblem] = []
    sources = section_of(data, "sources")
    destinations = section_of(data, "destinations")
    goals = section_of(data, "goals")

    def add(path: ConfigPath, message: str) -> None:
        problems.append(ConfigProblem(dotted(path), message, lines.line(path)))

    # a field a goal reads is a name of the user's own (form_id), not a typo of a
    # canonical one (order_id); gathered once, not once per source
    reads: dict[Any, set[str]] = {}
    for goal in goals.values():
        if isinstance(goal, dict) and isinstance(goal.get("source"), str):
            reads.setdefault(goal["source"], set()).update(r for r, _ in _field_references(goal))
    for name, src in sources.items():
        fields = src.get("fields") if isinstance(src, dict) else None
        if isinstance(fields, dict):
            read = reads.get(name, set())
            for key in fields:
                hint = suggest(str(key), sorted(KNOWN_FIELDS))
                if key not in KNOWN_FIELDS and key not in read and "did you mean" in hint:
                    add(("sources", name, "fields", key), f"unknown field name {key!r}{hint}")

    for goal_name, goal in goals.items():
        if not isinstance(goal, dict):
            continue
        src_name = goal.get("source")
        if isinstance(src_name, str) and src_name not in sources:
            add(
                ("goals", goal_name, "source"),
                f"unknown source {src_name!r}{suggest(src_name, list(sources))}",
            )
        src = sources.get(src_name) if isinstance(src_name, str) else None
        mapped = _mapped_fields(src)
        if mapped is not None:
            for field_name, where in _field_references(goal):
                if field_name not in mapped:
                    model = SOURCE_MODELS.get(str(src.get("type"))) if src else None
                    fix = (
                        f"add it under sources.{src_name}.fields"
                        if model is None or "fields" in model.model_fields
                        else f"it gives {', '.join(sorted(mapped))}"
                    )
                    add(
                        ("goals", goal_name, *where),
                        f"field {field_name!r} is not mapped by source {src_name!r} ({fix})",
                    )
        send = goal.get("send")
        if isinstance(send, dict):
            _check_adjusting(goal_name, goal, send, destinations, add)
            _check_round_trip(goal_name, src_name, src, send, destinations, add)
            if not send:
                add(("goals", goal_name, "send"), "no destinations: name at least one")
            for dest_name in send:
                if dest_name not in destinations:
                    add(
                        ("goals", goal_name, "send", dest_name),
                        f"unknown destination {dest_name!r}"
                        + suggest(dest_name, list(destinations)),
                    )
    return problems


def _check_round_trip(
    goal_name: str,
    src_name: Any,
    src: Any,
    send: dict[str, Any],
    destinations: dict[str, Any],
    add: Callable[[ConfigPath, str], None],
) -> None:
    """Metrica goals read from a counter must not be uploaded to the same counter as
    offline conversions: the counter would count each reach twice."""
    if not isinstance(src, dict) or src.get("type") != "metrica_logs":
        return
    for dest_name in send:
        dest = destinations.get(dest_name)
        if (
            isinstance(dest, dict)
            and dest.get("type") == "yandex_metrica"
            and str(dest.get("counter_id")) == str(src.get("counter_id"))
        ):
            add(
                ("goals", goal_name, "send", dest_name),
                f"counter {src.get('counter_id')} is where source {src_name!r} "
                "reads these goals from; sending them back would count every reach twice "
                "(send them to Google Ads or VK Ads, or to another counter)",
            )


def _check_adjusting(
    goal_name: str,
    goal: dict[str, Any],
    send: dict[str, Any],
    destinations: dict[str, Any],
    add: Callable[[ConfigPath, str], None],
) -> None:
    """``retract_when`` / ``restate_on_value_change`` need a destination that takes
    adjustments; otherwise the user would expect retractions that never happen."""
    for option in ("retract_when", "restate_on_value_change"):
        if not goal.get(option):
            continue
        kinds = {
            str(dest.get("type"))
            for name in send
            if isinstance(dest := destinations.get(name), dict)
            and dest.get("type") in DESTINATION_TYPES
        }
        if not kinds or kinds & ADJUSTABLE_TYPES:
            continue
        add(
            ("goals", goal_name, option),
            f"none of this goal's destinations ({', '.join(sorted(kinds))}) can retract or "
            "restate a conversion it received; only google_ads can",
        )


def section_of(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _mapped_fields(src: Any) -> set[str] | None:
    """The record fields a source yields: its ``fields`` keys, or what its config model
    says (``provided_fields``) when the source fills some by default (a CRM's status)."""
    if not isinstance(src, dict) or not isinstance(src.get("fields", {}), dict):
        return None
    model = SOURCE_MODELS.get(str(src.get("type")))
    # a source whose defaults depend on more than its fields (a webhook's sender)
    of_source = getattr(model, "source_fields", None)
    if callable(of_source):
        return set(of_source(src))
    raw = {str(k): v for k, v in src.get("fields", {}).items()}
    provided = getattr(model, "provided_fields", None)
    return set(provided(raw)) if callable(provided) else set(raw)


def _field_references(goal: dict[str, Any]) -> Iterator[tuple[str, ConfigPath]]:
    for section in ("when", "retract_when"):
        conditions = goal.get(section)
        if isinstance(conditions, dict):
            for key in conditions:
                yield str(key), (section, str(key))
    for key in ("value", "order_id"):
        ref = goal.get(key)
        if isinstance(ref, str):
            yield ref, (key,)
    send = goal.get("send")
    for dest_name, target in send.items() if isinstance(send, dict) else ():
        # a target's record fields: Google Ads custom variables, Metrica call columns
        for key in ("custom_variables", "call_fields"):
            mapping = target.get(key) if isinstance(target, dict) else None
            if isinstance(mapping, dict):
                for name, ref in mapping.items():
                    if isinstance(ref, str):
                        yield ref, ("send", str(dest_name), key, str(name))
