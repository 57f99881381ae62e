"""Reading a config file: every problem at once (structure, cross-references, send
targets, literal secrets) with its path and line, and the JSON Schema."""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from convsync.config import (
    TARGET_MODELS,
    AppConfig,
    DeliveryConfig,
    GoalConfig,
    LoadedConfig,
    ScheduleConfig,
    suggest,
)
from convsync.config_checks import (
    DESTINATION_MODELS,
    SOURCE_MODELS,
    cross_check,
    section_of,
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
from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.errors import ConfigError, ConfigProblem, UserError
from convsync.webhooks.config import WebhookServerConfig


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
    problems += cross_check(data, lines)
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
        *SOURCE_MODELS,
        *DESTINATION_MODELS,
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
        model = SOURCE_MODELS.get(str(parent.get("type")))
    elif len(head) == 2 and head[0] == "destinations" and isinstance(parent, dict):
        model = DESTINATION_MODELS.get(str(parent.get("type")))
    if model is None:
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _validate_targets(
    data: dict[str, Any], problems: list[ConfigProblem], lines: LineIndex
) -> dict[str, dict[str, BaseModel]]:
    """Each ``send`` block against its destination type's target model (raw data, so
    these problems are reported along with structural ones)."""
    destinations = section_of(data, "destinations")
    targets: dict[str, dict[str, BaseModel]] = {}
    for goal_name, goal in section_of(data, "goals").items():
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
