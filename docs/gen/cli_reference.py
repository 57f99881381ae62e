"""The CLI reference page, rendered from the typer app itself (``convsync.cli.app:app``
through ``typer.main.get_command``): every command, its help and every option with its
help line, as ``--help`` shows them, so the page cannot drift from the code."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

PROG = "convsync"


def command_tree() -> Any:
    """The click command of the real app (imported here so the page is built from the
    installed code)."""
    import typer

    from convsync.cli.app import app

    return typer.main.get_command(app)


def walk(command: Any, path: tuple[str, ...] = (PROG,), parent: Any = None) -> Iterator[Any]:
    """``(path, command, context)`` of every visible command, depth first, in the order
    the app lists them."""
    ctx = command.make_context(path[-1], [], parent=parent, resilient_parsing=True)
    yield path, command, ctx
    for name, sub in (getattr(command, "commands", None) or {}).items():
        if not getattr(sub, "hidden", False):
            yield from walk(sub, (*path, name), ctx)


def options(command: Any, ctx: Any) -> list[tuple[str, str]]:
    """``(declaration, help)`` of every visible option, as ``--help`` prints them."""
    out = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record:
            out.append((record[0], record[1]))
    return out


def render(root: Any | None = None) -> str:
    root = root if root is not None else command_tree()
    out = [
        "# CLI options",
        "",
        "Every command and option of `convsync`, generated when this site is built from the",
        "command-line app itself (the same text as `convsync COMMAND --help`), so it cannot",
        "drift from the code. What each command prints, the run status words and the exit",
        "codes are explained on [Commands](commands.md).",
        "",
        "Global options go before or after the command: `convsync validate -c my.yaml`",
        "works as well as `convsync -c my.yaml validate`. `-h` / `--help` on every command",
        "prints its part of this page.",
    ]
    for path, command, ctx in walk(root):
        name = " ".join(path)
        groups = getattr(command, "commands", None)
        out += ["", f"## `{name}` {{#{_anchor(path)}}}", ""]
        text = _help(command)
        if text:
            out += [text, ""]
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += ["```text", f"{_usage_prefix(path)} {usage}".rstrip(), "```"]
        found = options(command, ctx)
        if found:
            out += ["", "| Option | Meaning |", "|---|---|"]
            for decl, meaning in found:
                out.append(f"| `{_cell(decl)}` | {_cell(_markdown(meaning))} |")
        if groups:
            visible = [n for n, c in groups.items() if not getattr(c, "hidden", False)]
            links = ", ".join(f"[`{n}`](#{_anchor((*path, n))})" for n in visible)
            out += ["", f"Commands: {links}."]
    return "\n".join(out) + "\n"


def _usage_prefix(path: tuple[str, ...]) -> str:
    if len(path) == 1:
        return PROG
    return f"{PROG} [GLOBAL OPTIONS] {' '.join(path[1:])}"


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(path)


def _help(command: Any) -> str:
    text = command.help or ""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join(_markdown(p) for p in paragraphs)


def _markdown(text: str) -> str:
    """Help text as Markdown: ``<`` and ``>`` escaped outside code spans (they would be
    read as HTML), code spans kept."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = html.escape(parts[i], quote=False)
    return "`".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
