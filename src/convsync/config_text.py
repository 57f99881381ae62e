"""The text of a config file: a YAML node tree for line numbers, and ``${…}``
references (environment variables and secret files) resolved with their paths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from convsync.errors import ConfigProblem

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: a place in the file: keys and list indexes from the top
ConfigPath = tuple[str | int, ...]


def dotted(path: ConfigPath) -> str:
    return ".".join(str(p) for p in path)


class LineIndex:
    """Dotted path → line number, from the YAML node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, path: ConfigPath) -> int | None:
        node = self.root
        best = node.start_mark.line + 1 if node is not None else None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                found = next((v for k, v in node.value if k.value == str(part)), None)
                if found is None:
                    key = next((k for k, _ in node.value if k.value == str(part)), None)
                    return key.start_mark.line + 1 if key is not None else best
                node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return best
                node = node.value[part]
            else:
                return best
            best = node.start_mark.line + 1
        return best


class Interpolator:
    """Replaces ``${ENV_VAR}`` and ``${file:/path}`` in every string of the data.

    Remembers which paths were interpolated (credentials must be) and every value read
    (they are secrets to redact from logs); unresolvable references become problems.
    """

    def __init__(self, env: Mapping[str, str], base_dir: Path, lines: LineIndex) -> None:
        self.env = env
        self.base_dir = base_dir
        self.lines = lines
        self.problems: list[ConfigProblem] = []
        self.interpolated: set[ConfigPath] = set()
        self.secrets: list[str] = []

    def apply(self, value: Any, path: ConfigPath = ()) -> Any:
        if isinstance(value, dict):
            return {k: self.apply(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.apply(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            resolved = self.resolve(match.group(1).strip())
            if isinstance(resolved, ConfigProblem):
                self.problems.append(
                    ConfigProblem(dotted(path), resolved.message, self.lines.line(path))
                )
                return ""
            self.secrets.append(resolved)
            return resolved

        self.interpolated.add(path)
        return _REFERENCE.sub(replace, value)

    def resolve(self, ref: str) -> str | ConfigProblem:
        if ref.startswith("file:"):
            target = Path(ref[5:].strip())
            if not target.is_absolute():
                target = self.base_dir / target
            try:
                return target.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                return ConfigProblem("", f"cannot read secret file {target}: {reason}")
        if not _ENV_NAME.match(ref):
            return ConfigProblem(
                "",
                f"${{{ref}}} is not a reference: use ${{ENV_VAR}} or ${{file:/run/secrets/name}}",
            )
        if ref not in self.env:
            return ConfigProblem("", f"environment variable {ref} is not set")
        return self.env[ref]
