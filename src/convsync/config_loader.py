"""Reading a config file: every problem at once (structure, cross-references, send
targets, literal secrets) with its path and line, and the JSON Schema."""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from convsync.config import (
    KNOWN_FIELDS,
    TARGET_MODELS,
    AppConfig,
    DeliveryConfig,
    GoalConfig,
    LoadedConfig,
    ScheduleConfig,
    suggest,
)
from convsync.config_text import (
    MAX_FILE_BYTES,
    ConfigPath,
    Interpolator,
    LineIndex,
    YamlLimit,
    dotted,
    read_yaml,
)
from convsync.destinations import DESTINATION_TYPES, load_destination_class
from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.destinations.vk_ads.config import VkAdsConfig
from convsync.destinations.yandex_metrica.config import MetricaConfig
from convsync.errors import ConfigError, ConfigProblem, UserError
from convsync.sources.amocrm.config import AmoCrmSourceConfig
from convsync.sources.bitrix24.config import Bitrix24SourceConfig
from convsync.sources.csv_config import CsvSourceConfig
from convsync.sources.ga4.config import Ga4BigQuerySourceConfig
from convsync.sources.hubspot.config import HubSpotSourceConfig
from convsync.sources.metrica_logs.config import MetricaLogsSourceConfig
from convsync.sources.sql_config import SqlSourceConfig
from convsync.webhooks.config import WebhookServerConfig, WebhookSourceConfig


def load_config(path: Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and validate ``path``; raise ``ConfigError`` listing every problem."""
    env = os.environ if env is None else env
    return parse_config(_read_file(path), path, env)


def _read_file(path: Path) -> str:
    """The file's text; a FIFO or a device (which could block or never end) and a file
    beyond ``MAX_FILE_BYTES`` are refused before they are read."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise UserError(f"cannot read config file {path}: not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            size = max(len(raw), path.stat().st_size)
            problem = ConfigProblem(
                "",
                f"the file is {size:,} bytes; a config file is at most "
                f"{MAX_FILE_BYTES // 1024} KiB (a hand-written one is a few KiB)",
            )
            raise ConfigError([problem], str(path))
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise UserError(
            f"config file {path} does not exist (set --config or CONVSYNC_CONFIG)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config file {path}: {exc}") from None


def parse_config(text: str, path: Path, env: Mapping[str, str]) -> LoadedConfig:
    file = str(path)
    try:
        document = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], file) from None
    raw = document.data
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem("", "expected a mapping of keys at the top level")], file)

    lines = LineIndex(document.root)
    interpolator = Interpolator(env, path.parent, lines)
    data = interpolator.apply(raw)
    # a key defined twice: reported with the rest, checked on what YAML kept (the last)
    problems = [*document.duplicates, *interpolator.problems]

    app: AppConfig | None = None
    try:
        app = AppConfig.model_validate(data)
    except ValidationError as exc:
        problems += _translate(exc, data, lines)
    problems += _cross_check(data, lines)
    targets = _validate_targets(data, problems, lines)
    if app is not None:
        problems += _literal_secrets(app, interpolator.interpolated, lines)
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems, file)
    assert app is not None  # no problems means validation succeeded
    return LoadedConfig(
        app=app, path=path.resolve(), targets=targets, secrets=tuple(interpolator.secrets)
    )


def _yaml_problem(exc: yaml.YAMLError) -> ConfigProblem:
    """Where and why the YAML could not be read, with what it was reading then (``while
    parsing a flow mapping`` started on line 3, an anchor's first occurrence)."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if context:
        context_mark = getattr(exc, "context_mark", None)
        if context_mark is not None and context_mark.line + 1 != line:
            context += f" at line {context_mark.line + 1}"
        problem += f" ({context})"
    if not isinstance(exc, YamlLimit):
        problem = f"not valid YAML: {problem}"
    return ConfigProblem("", problem, line)


def _translate(exc: ValidationError, data: Any, lines: LineIndex) -> list[ConfigProblem]:
    """Pydantic errors → problems with the user's own path (union tags dropped)."""
    out: list[ConfigProblem] = []
    scalars: set[ConfigPath] = set()
    for err in exc.errors(include_url=False):
        path = _user_path(err["loc"], data)
        if not isinstance(_walk(data, path), dict | list):
            # a value that is no mapping or list has one problem: the first member of a
            # union (datetime | date, int | str) tells it, the others would repeat it
            if path in scalars:
                continue
            scalars.add(path)
        kind = err["type"]
        if kind == "missing":
            message = "required key is missing"
        elif kind == "extra_forbidden":
            parent = _walk(data, path[:-1])
            known = _allowed_keys(path, parent)
            message = f"unknown key {path[-1]!r}{suggest(str(path[-1]), known)}"
        elif kind == "union_tag_invalid":
            path = (*path, "type")
            expected = err.get("ctx", {}).get("expected_tags", "")
            message = f"unknown type {err.get('ctx', {}).get('tag')!r} (known: {expected})"
        else:
            message = err["msg"].removeprefix("Value error, ")
        out.append(ConfigProblem(dotted(path), message, lines.line(path)))
    return out


def _user_path(loc: tuple[str | int, ...], data: Any) -> ConfigPath:
    """Drop the discriminator tags pydantic inserts into locations."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                path.append(part)
                node = node[part]
            elif str(part) in {"not"} or not _is_tag(part):
                path.append(part)
                node = None
        elif isinstance(node, list) and isinstance(part, int):
            path.append(part)
            node = node[part] if part < len(node) else None
        elif node is None:
            path.append(part)
    if path and path[-1] == "not_":
        path[-1] = "not"
    return tuple(path)


def _is_tag(part: str | int) -> bool:
    tags = {
        "oauth",
        "service_account",
        "application_default",
        *TARGET_MODELS,
        *_SOURCE_MODELS,
        *_DESTINATION_MODELS,
    }
    return isinstance(part, str) and part in tags


def _walk(data: Any, path: ConfigPath) -> Any:
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
    elif len(head) == 2 and head[0] == "sources" and isinstance(parent, dict):
        model = _SOURCE_MODELS.get(str(parent.get("type")))
    elif len(head) == 2 and head[0] == "destinations" and isinstance(parent, dict):
        model = _DESTINATION_MODELS.get(str(parent.get("type")))
    if model is None:
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


_SOURCE_MODELS: dict[str, type[BaseModel]] = {
    "csv": CsvSourceConfig,
    "sql": SqlSourceConfig,
    "amocrm": AmoCrmSourceConfig,
    "bitrix24": Bitrix24SourceConfig,
    "hubspot": HubSpotSourceConfig,
    "metrica_logs": MetricaLogsSourceConfig,
    "ga4_bigquery": Ga4BigQuerySourceConfig,
    "webhook": WebhookSourceConfig,
}

_DESTINATION_MODELS: dict[str, type[BaseModel]] = {
    "google_ads": GoogleAdsConfig,
    "yandex_metrica": MetricaConfig,
    "vk_ads": VkAdsConfig,
}


def _cross_check(data: dict[str, Any], lines: LineIndex) -> list[ConfigProblem]:
    """References between sections, checked on the raw data so that they are reported
    together with structural problems."""
    problems: list[ConfigProblem] = []
    sources = _section(data, "sources")
    destinations = _section(data, "destinations")
    goals = _section(data, "goals")

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
                    model = _SOURCE_MODELS.get(str(src.get("type"))) if src else None
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
        if not kinds or any(load_destination_class(kind).supports_adjustments for kind in kinds):
            continue
        add(
            ("goals", goal_name, option),
            f"none of this goal's destinations ({', '.join(sorted(kinds))}) can retract or "
            "restate a conversion it received; only google_ads can",
        )


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _mapped_fields(src: Any) -> set[str] | None:
    """The record fields a source yields: its ``fields`` keys, or what its config model
    says (``provided_fields``) when the source fills some by default (a CRM's status)."""
    if not isinstance(src, dict) or not isinstance(src.get("fields", {}), dict):
        return None
    model = _SOURCE_MODELS.get(str(src.get("type")))
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


def _validate_targets(
    data: dict[str, Any], problems: list[ConfigProblem], lines: LineIndex
) -> dict[str, dict[str, BaseModel]]:
    """Each ``send`` block against its destination type's target model (raw data, so
    these problems are reported along with structural ones)."""
    destinations = _section(data, "destinations")
    targets: dict[str, dict[str, BaseModel]] = {}
    for goal_name, goal in _section(data, "goals").items():
        send = goal.get("send") if isinstance(goal, dict) else None
        if not isinstance(send, dict):
            continue
        targets[goal_name] = {}
        for dest_name, raw in send.items():
            dest = destinations.get(dest_name)
            kind = dest.get("type") if isinstance(dest, dict) else None
            model = TARGET_MODELS.get(kind) if isinstance(kind, str) else None
            if model is None:
                continue  # unknown destination or type: reported elsewhere
            base: ConfigPath = ("goals", goal_name, "send", dest_name)
            try:
                # a Google target's rules depend on the API its destination speaks
                context = (
                    {"api": dest.get("api", GoogleAdsConfig.model_fields["api"].default)}
                    if kind == "google_ads" and isinstance(dest, dict)
                    else {}
                )
                targets[goal_name][dest_name] = model.model_validate(raw or {}, context=context)
            except ValidationError as exc:
                for p in _translate(exc, raw or {}, lines):
                    full = (*base, *[s for s in p.path.split(".") if s])
                    msg = p.message
                    if msg.startswith("unknown key"):
                        hint = suggest(str(full[-1]), sorted(model.model_fields))
                        msg = f"unknown key {full[-1]!r} for a {kind} target{hint}"
                    problems.append(ConfigProblem(dotted(full), msg, lines.line(full)))
    return targets


def _literal_secrets(
    app: AppConfig, interpolated: set[ConfigPath], lines: LineIndex
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    sections: list[tuple[str, dict[str, Any]]] = [
        ("sources", dict(app.sources)),
        ("destinations", dict(app.destinations)),
    ]
    for section, models in sections:
        problems += _literal_secrets_of(section, models, interpolated, lines)
    return problems


def _literal_secrets_of(
    section: str, models: dict[str, Any], interpolated: set[ConfigPath], lines: LineIndex
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for name, model in models.items():
        literal_ok = getattr(model, "literal_ok", None)  # e.g. a database URL without password
        for path in _secret_paths(model, (section, name)):
            if callable(literal_ok) and literal_ok(path[-1]):
                continue
            if path not in interpolated:
                problems.append(
                    ConfigProblem(
                        dotted(path),
                        "credentials are not accepted as literals in the file: write "
                        "${ENV_VAR} or ${file:/run/secrets/name}",
                        lines.line(path),
                    )
                )
    return problems


def _secret_paths(model: BaseModel, path: ConfigPath) -> Iterator[ConfigPath]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            yield (*path, name)
        elif isinstance(value, BaseModel):
            yield from _secret_paths(value, (*path, name))


def config_schema() -> dict[str, Any]:
    """JSON Schema of the file, with each platform's target model under ``send``."""
    schema = AppConfig.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    options = []
    for model in TARGET_MODELS.values():
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[model.__name__] = sub
        options.append({"$ref": f"#/$defs/{model.__name__}"})
    goal = defs["GoalConfig"]["properties"]["send"]
    goal["additionalProperties"] = {"anyOf": copy.deepcopy(options)}
    schema["title"] = "convsync configuration"
    return schema
