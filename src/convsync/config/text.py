"""The text of a config file: YAML read within limits (nesting, aliases) with every
duplicate key found, the node tree for line numbers, and ``${…}`` references
(environment variables and secret files) resolved with their paths."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from convsync.core.errors import ConfigProblem

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: the largest config file read: a hand-written one is a few KiB, and this keeps the
#: pure-Python YAML parser (it gives the lines) near a second at worst
MAX_FILE_BYTES = 256 * 1024
#: nesting of mappings and lists: the config itself needs 7 levels
MAX_DEPTH = 32
#: values that aliases may repeat, all together: plenty for shared blocks (a target used
#: by every goal), far too few for a "billion laughs" that expands a few lines into
#: billions of values
MAX_ALIASED = 10_000
#: the largest secret file ``${file:…}`` reads (tokens, passwords, JSON keys are a few KiB)
MAX_SECRET_FILE_BYTES = 64 * 1024
#: all ``${…}`` replacements of the file together
MAX_INTERPOLATED = 1024 * 1024
#: an integer written with more characters than this is kept as text: no key takes it,
#: and Python refuses to read one of more than 4,300 digits
_MAX_NUMBER_TEXT = 1000
_MERGE_TAG = "tag:yaml.org,2002:merge"

#: a place in the file: keys and list indexes from the top
ConfigPath = tuple[str | int, ...]


def dotted(path: ConfigPath) -> str:
    return ".".join(str(p) for p in path)


class YamlLimit(yaml.MarkedYAMLError):
    """Valid YAML that goes beyond what a config file needs (nesting, aliases)."""


@dataclass
class YamlDocument:
    """A config file read: its node tree (for lines), its data, and its duplicate keys."""

    root: yaml.Node | None
    data: Any
    duplicates: list[ConfigProblem] = field(default_factory=list)


def read_yaml(text: str) -> YamlDocument:
    """The one YAML document of ``text``; raises ``yaml.YAMLError`` (``YamlLimit`` for
    nesting and aliases beyond the limits) with the place in the file."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(None, None)
        # before construction, which folds merge keys (<<) into the mappings
        duplicates = duplicate_keys(root)
        return YamlDocument(root, loader.construct_document(root), duplicates)
    finally:
        loader.dispose()


def _lenient(construct: Callable[[Any, yaml.Node], Any]) -> Callable[[Any, yaml.Node], Any]:
    """A scalar that does not read as its type (``2026-13-45``, ``!!int abc``) stays text,
    so the key that expects a date or a number names it, at its path, among the rest."""

    def read(loader: Any, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return construct(loader, node)  # PyYAML's own error
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > _MAX_NUMBER_TEXT:
            return node.value
        try:
            return construct(loader, node)
        except (ValueError, ArithmeticError, LookupError):
            return node.value

    return read


class _Constructor(SafeConstructor):
    """PyYAML's safe constructor, lenient with scalars that do not read as their type."""


for _kind in ("null", "bool", "int", "float", "timestamp"):
    _tag = f"tag:yaml.org,2002:{_kind}"
    _Constructor.add_constructor(_tag, _lenient(SafeConstructor.yaml_constructors[_tag]))


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Constructor,
    yaml.resolver.Resolver,
):
    """PyYAML's safe loader that refuses deep nesting (the composer and the code after it
    recurse) and aliases that repeat more than ``MAX_ALIASED`` values or themselves."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._aliased = 0
        #: node → how many values it stands for, its aliases expanded
        self._sizes: dict[yaml.Node, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined one is PyYAML's own error
                self._count_alias(event, target)
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise YamlLimit(
                None,
                None,
                f"nested more than {MAX_DEPTH} levels deep (a config needs fewer than 10)",
                _mark(event),
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return None
        children: list[yaml.Node] = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        self._sizes[node] = 1 + sum(self._sizes.get(child, 1) for child in children)
        return node

    def _count_alias(self, event: yaml.AliasEvent, target: yaml.Node) -> None:
        name = event.anchor
        size = self._sizes.get(target)
        if size is None:
            raise YamlLimit(
                None,
                None,
                f"alias *{name} is inside its own anchor &{name}: it would repeat forever",
                _mark(event),
            )
        self._aliased += size
        if self._aliased > MAX_ALIASED:
            raise YamlLimit(
                None,
                None,
                f"aliases repeat more than {MAX_ALIASED:,} values in all (passed at *{name}): "
                "anchors are for a few shared blocks, not for multiplying data",
                _mark(event),
            )


def _mark(event: yaml.Event) -> yaml.Mark | None:
    mark = event.start_mark
    return mark if isinstance(mark, yaml.Mark) else None


def duplicate_keys(root: yaml.Node) -> list[ConfigProblem]:
    """Every key defined twice in a mapping, anywhere (flow or block, nested in lists):
    YAML keeps only the last definition, silently."""
    reader = _Constructor()  # reads keys as the loader will: 1, 0x1 and 1.0 are one key
    problems: list[ConfigProblem] = []
    seen: set[int] = set()  # an anchored block is checked once, however often aliased
    stack: list[tuple[yaml.Node, ConfigPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, ConfigPath]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(child, (*path, i)) for i, child in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            places: dict[Any, list[yaml.Node]] = {}
            for key, value in node.value:
                name, identity = _key(reader, key)
                if key.tag != _MERGE_TAG:
                    places.setdefault(identity, []).append(key)
                children.append((value, (*path, name)))
            for keys in places.values():
                if len(keys) > 1:
                    name, _ = _key(reader, keys[0])  # the key the data keeps (1, not 1.0)
                    line = keys[-1].start_mark.line + 1
                    problems.append(
                        ConfigProblem(dotted((*path, name)), _defined_again(keys), line)
                    )
        # in the order of the file, so an aliased block is reported where its anchor is
        stack += reversed(children)
    return problems


def _key(reader: _Constructor, key: yaml.Node) -> tuple[str, Any]:
    """A key's name in paths (as the data has it) and what makes two keys the same."""
    if isinstance(key, yaml.ScalarNode):
        try:
            value = reader.construct_object(key, deep=True)
            hash(value)
        except (yaml.YAMLError, TypeError):
            return str(key.value), ("text", key.tag, key.value)
        return str(value), ("value", value)
    # a list or mapping as a key: refused when the data is built
    return str(key.tag), ("node", id(key))


def _defined_again(keys: list[yaml.Node]) -> str:
    places = [(k.start_mark.line + 1, k.start_mark.column + 1) for k in keys]
    lines = [line for line, _ in places]
    if len(set(lines)) == len(lines):
        where = f"lines {_and(lines)}"
    elif len(set(lines)) == 1:
        where = f"line {lines[0]}, columns {_and([column for _, column in places])}"
    else:
        where = _and([f"{line}:{column}" for line, column in places])
    if len(keys) == 2:
        return f"defined twice ({where}); the first would be ignored"
    return f"defined {len(keys)} times ({where}); all but the last would be ignored"


def _and(items: list[Any]) -> str:
    text = [str(i) for i in items]
    return f"{', '.join(text[:-1])} and {text[-1]}"


class LineIndex:
    """Dotted path → line number, from the YAML node tree. A key defined twice is found
    at its last definition, the one the data holds."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root
        self._keys: dict[int, dict[str, yaml.Node]] = {}

    def line(self, path: ConfigPath) -> int | None:
        node = self.root
        best = node.start_mark.line + 1 if node is not None else None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                found = self._values(node).get(str(part))
                if found is None:
                    return best
                node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return best
                node = node.value[part]
            else:
                return best
            best = node.start_mark.line + 1
        return best

    def _values(self, node: yaml.MappingNode) -> dict[str, yaml.Node]:
        values = self._keys.get(id(node))
        if values is None:
            values = {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            self._keys[id(node)] = values
        return values


class Interpolator:
    """Replaces ``${ENV_VAR}`` and ``${file:/path}`` in every string of the data.

    Remembers which paths were interpolated (credentials must be) and every value read
    (they are secrets to redact from logs); unresolvable references become problems.
    A replacement is never read again for references (``${A}`` whose value is ``${A}``
    stays that text), each reference is resolved once however often it is written, and
    all replacements together are at most ``MAX_INTERPOLATED`` characters.
    """

    def __init__(self, env: Mapping[str, str], base_dir: Path, lines: LineIndex) -> None:
        self.env = env
        self.base_dir = base_dir
        self.lines = lines
        self.problems: list[ConfigProblem] = []
        self.interpolated: set[ConfigPath] = set()
        self.secrets: list[str] = []
        self._resolved: dict[str, str | ConfigProblem] = {}
        self._total = 0

    def apply(self, value: Any, path: ConfigPath = ()) -> Any:
        if isinstance(value, dict):
            return {k: self.apply(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.apply(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        problems: list[str] = []

        def replace(match: re.Match[str]) -> str:
            ref = match.group(1).strip()
            if ref not in self._resolved:
                self._resolved[ref] = self.resolve(ref)
                if isinstance(found := self._resolved[ref], str) and found not in self.secrets:
                    self.secrets.append(found)
            resolved = self._resolved[ref]
            if isinstance(resolved, ConfigProblem):
                problems.append(resolved.message)
                return ""
            self._total += len(resolved)
            if self._total > MAX_INTERPOLATED:
                problems.append(
                    f"${{…}} references expand to more than {MAX_INTERPOLATED // 1024} KiB "
                    "in all: a reference is for a credential or a name, not for data"
                )
                return ""
            return resolved

        self.interpolated.add(path)
        text = _REFERENCE.sub(replace, value)
        for message in dict.fromkeys(problems):  # each once, in order
            self.problems.append(ConfigProblem(dotted(path), message, self.lines.line(path)))
        return text

    def resolve(self, ref: str) -> str | ConfigProblem:
        if ref.startswith("file:"):
            target = Path(ref[5:].strip())
            if not target.is_absolute():
                target = self.base_dir / target
            return _read_secret_file(target)
        if not _ENV_NAME.match(ref):
            return ConfigProblem(
                "",
                f"${{{ref}}} is not a reference: use ${{ENV_VAR}} or ${{file:/run/secrets/name}}",
            )
        if ref not in self.env:
            return ConfigProblem("", f"environment variable {ref} is not set")
        return self.env[ref]


def _read_secret_file(target: Path) -> str | ConfigProblem:
    """A secret file's text, stripped; a FIFO or device (which could block or never end)
    and a file beyond ``MAX_SECRET_FILE_BYTES`` are refused before they are read."""
    try:
        info = os.stat(target)
        if not stat.S_ISREG(info.st_mode):
            return ConfigProblem("", f"cannot read secret file {target}: not a regular file")
        if info.st_size > MAX_SECRET_FILE_BYTES:
            return _too_large(target, info.st_size)
        with open(target, "rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
        if len(data) > MAX_SECRET_FILE_BYTES:  # grew since
            return _too_large(target, len(data))
        return data.decode("utf-8").strip()
    except OSError as exc:
        return ConfigProblem("", f"cannot read secret file {target}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        # the bytes themselves are never shown: they are a secret
        return ConfigProblem(
            "",
            f"secret file {target} is not UTF-8 text (position {exc.start + 1} is not): "
            "a token, a password or a JSON key is text",
        )


def _too_large(target: Path, size: int) -> ConfigProblem:
    return ConfigProblem(
        "",
        f"secret file {target} is {size:,} bytes: a secret file is at most "
        f"{MAX_SECRET_FILE_BYTES // 1024} KiB (a token, a password, a key)",
    )
