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

from convsync.config.checks import cross_check, section_of
from convsync.config.messages import kind_of
from convsync.config.models import TARGET_MODELS, AppConfig, LoadedConfig
from convsync.config.problems import Shown, translate
from convsync.config.text import (
    MAX_FILE_BYTES,
    ConfigPath,
    Interpolator,
    LineIndex,
    dotted,
    read_yaml,
)
from convsync.config.yaml_messages import yaml_problem
from convsync.core.errors import ConfigError, ConfigProblem, UserError
from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.sources.csv_lines import reads_as_cp1251


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
    except FileNotFoundError:
        where = "" if path.is_absolute() else f" (looked for {path.absolute()})"
        raise UserError(
            f"config file {path} does not exist{where}; set --config or CONVSYNC_CONFIG"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([_not_utf8(raw, exc)], str(path)) from None


def _not_utf8(raw: bytes, exc: UnicodeDecodeError) -> ConfigProblem:
    """Where a config file stops being UTF-8, and what it seems to be instead."""
    line = raw.count(b"\n", 0, exc.start) + 1
    start = raw.rfind(b"\n", 0, exc.start) + 1
    end = raw.find(b"\n", exc.start)
    where = f"byte 0x{raw[exc.start]:02X} at column {exc.start - start + 1}"
    if b"\x00" in raw:
        return ConfigProblem("", f"not a text file ({where}): is it the config file?", line)
    if reads_as_cp1251(raw[start : end if end >= 0 else len(raw)]):
        advice = "it reads as cp1251: save the file as UTF-8"
    else:
        advice = "save the file as UTF-8"
    return ConfigProblem("", f"not UTF-8 ({where}); {advice}", line)


def parse_config(text: str, path: Path, env: Mapping[str, str]) -> LoadedConfig:
    file = str(path)
    try:
        document = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([yaml_problem(exc, text)], file) from None
    raw = document.data
    if not isinstance(raw, dict):
        raise ConfigError([_not_a_mapping(raw)], file)

    lines = LineIndex(document.root)
    interpolator = Interpolator(env, path.parent, lines)
    data = interpolator.apply(raw)
    # a key defined twice: reported with the rest, checked on what YAML kept (the last)
    problems = [*document.duplicates, *interpolator.problems]

    shown = Shown(raw, frozenset(interpolator.interpolated))
    app: AppConfig | None = None
    try:
        app = AppConfig.model_validate(data)
    except ValidationError as exc:
        problems += translate(exc, data, lines, shown)
    problems += cross_check(data, lines)
    targets = _validate_targets(data, problems, lines, shown)
    if app is not None:
        problems += _literal_secrets(app, interpolator.interpolated, lines)
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems, file)
    assert app is not None  # no problems means validation succeeded
    return LoadedConfig(
        app=app, path=path.resolve(), targets=targets, secrets=tuple(interpolator.secrets)
    )


def _not_a_mapping(data: Any) -> ConfigProblem:
    keys = "sources:, destinations: and goals:"
    if data is None:
        return ConfigProblem("", f"the file is empty: a config has {keys}", 1)
    return ConfigProblem("", f"the file holds {kind_of(data)}, not keys: a config has {keys}", 1)


def _validate_targets(
    data: dict[str, Any], problems: list[ConfigProblem], lines: LineIndex, shown: Shown
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
                problems += translate(exc, raw or {}, lines, shown, base, model)
    return targets


def _literal_secrets(
    app: AppConfig, interpolated: set[ConfigPath], lines: LineIndex
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    sections: list[tuple[ConfigPath, dict[str, Any]]] = [
        (("sources",), dict(app.sources)),
        (("destinations",), dict(app.destinations)),
    ]
    if app.alerts is not None:
        sections.append((("alerts", "channels"), dict(app.alerts.channels)))
    for section, models in sections:
        problems += _literal_secrets_of(section, models, interpolated, lines)
    return problems


def _literal_secrets_of(
    section: ConfigPath, models: dict[str, Any], interpolated: set[ConfigPath], lines: LineIndex
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for name, model in models.items():
        literal_ok = getattr(model, "literal_ok", None)  # e.g. a database URL without password
        for path in _secret_paths(model, (*section, name)):
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
