"""A config file that is not valid YAML, told in plain words at the line to fix.

PyYAML reports where it gave up, which is often the line after the mistake: a key
without ``:`` is found missing on the next line, a quote left open at the end of the
file. Each common mistake is named here at the line it was made (PyYAML's
``context_mark``, where it started reading the thing that went wrong) with what to write
instead; anything else keeps PyYAML's words, with the line where each part happened.
PyYAML's marks count lines and columns from 0.
"""

from __future__ import annotations

import re
import unicodedata

import yaml

from convsync.config.text import YamlLimit
from convsync.core.errors import ConfigProblem

_QUOTED = re.compile(r"'([^']*)'")


def yaml_problem(exc: yaml.YAMLError, text: str) -> ConfigProblem:
    """The problem of a file PyYAML could not read, at its line."""
    if isinstance(exc, yaml.reader.ReaderError):
        line, column = _place(text, exc.position)
        message = f"{_control(exc.character)} at column {column}: a config file is plain text"
        return ConfigProblem("", f"not valid YAML: {message}", line)
    if not isinstance(exc, yaml.MarkedYAMLError):
        return ConfigProblem("", f"not valid YAML: {exc}")
    if isinstance(exc, YamlLimit):
        return ConfigProblem("", str(exc.problem), _line(exc.problem_mark))
    told = _told(exc)
    if told is not None:
        message, mark = told
        return ConfigProblem("", f"not valid YAML: {message}", _line(mark))
    return _as_pyyaml_says(exc)


def _told(exc: yaml.MarkedYAMLError) -> tuple[str, yaml.Mark | None] | None:
    """A common mistake in plain words, and the mark of the line it was made on."""
    problem = exc.problem or ""
    context = exc.context or ""
    at, started = exc.problem_mark, exc.context_mark
    if "could not find expected ':'" in problem and "simple key" in context:
        return (
            "a line without ':' — write key: value, or '- item' in a list "
            "(a value continued on the next line needs quotes)",
            started,
        )
    if "end of stream" in problem and "quoted scalar" in context:
        return f"a quote opened at column {_column(started)} is never closed", started
    if "flow sequence" in context or "flow mapping" in context:
        bracket = "[" if "sequence" in context else "{"
        closing = "]" if bracket == "[" else "}"
        return (
            f"the {bracket} at column {_column(started)} is not closed with {closing} "
            f"before line {_line(at)}",
            started,
        )
    if "found character '\\t'" in problem:
        return f"a tab at column {_column(at)}: YAML indents with spaces only", at
    if "that cannot start any token" in problem:
        char = _QUOTED.search(problem)
        shown = char.group(1) if char else "this character"
        return f"a value cannot start with {shown}: put the value in quotes", at
    if "mapping values are not allowed here" in problem:
        return (
            f"unexpected ':' at column {_column(at)}: quote a value that holds ': ' "
            "(key: 'a: b'), or indent this key like the others of its block",
            at,
        )
    if "expected <block end>" in problem:
        return (
            f"this line does not line up with the block that starts on line "
            f"{_line(started)}: check its indentation (or text after a closing quote)",
            at,
        )
    if "found undefined alias" in problem:
        name = _QUOTED.search(problem)
        alias = name.group(1) if name else ""
        return (
            f"*{alias} refers to no anchor: define &{alias} above it, or quote the value "
            "if * is meant as text",
            at,
        )
    if "found another document" in problem:
        return "a second document (---): a config file is one document", at
    if "could not determine a constructor for the tag" in problem:
        tag = _QUOTED.search(problem)
        shown = tag.group(1).replace("tag:yaml.org,2002:", "!!") if tag else "this tag"
        return (
            f"the tag {shown} is not read: a config file is plain YAML "
            "(quote the value if ! is meant as text)",
            at,
        )
    if "found unhashable key" in problem:
        return "a key that is a list or a mapping: a key is a name", at
    if "found unknown escape character" in problem:
        return (
            "an unknown escape (\\) in double quotes: write \\\\ for a backslash, "
            "or use single quotes",
            at,
        )
    if "for merging" in problem:
        return "<< merges mappings (<<: *a_mapping), not a single value", started
    return None


def _as_pyyaml_says(exc: yaml.MarkedYAMLError) -> ConfigProblem:
    """PyYAML's own words, with the line of what it was reading when it is another."""
    line = _line(exc.problem_mark)
    message = str(exc.problem or exc.context or "unreadable")
    if exc.problem and exc.context:
        started = _line(exc.context_mark)
        where = f" on line {started}" if started is not None and started != line else ""
        message += f" ({exc.context}{where})"
    return ConfigProblem("", f"not valid YAML: {message}", line)


def _line(mark: yaml.Mark | None) -> int | None:
    return mark.line + 1 if mark is not None else None


def _column(mark: yaml.Mark | None) -> int | None:
    return mark.column + 1 if mark is not None else None


def _place(text: str, position: int) -> tuple[int, int]:
    """Line and column (from 1) of a position in the text."""
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


def _control(character: int | str) -> str:
    """``a control character (U+0000)``, by name when it has one."""
    code = character if isinstance(character, int) else ord(character)
    name = unicodedata.name(chr(code), "")
    named = f" {name}" if name else ""
    return f"a control character (U+{code:04X}{named})"
