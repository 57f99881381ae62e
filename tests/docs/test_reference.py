"""The generated reference pages cover what they are generated from, the site's nav
covers every page, and the README's map points at pages that exist."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from convsync.config.loader import config_schema

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "gen"))

import cli_reference  # noqa: E402  (docs/gen, put on the path above)
import config_reference  # noqa: E402
import hooks  # noqa: E402


def sections(page: str) -> dict[str, str]:
    """Anchor → text of every `## … {#anchor}` section of a generated page."""
    out = {}
    for chunk in re.split(r"^## ", page, flags=re.MULTILINE)[1:]:
        match = re.search(r"\{#([a-z0-9-]+)\}", chunk.splitlines()[0])
        assert match, chunk.splitlines()[0]
        out[match.group(1)] = chunk
    return out


def test_config_keys_page_lists_every_key_of_every_model() -> None:
    schema = config_schema()
    found = sections(config_reference.render(schema))
    for model, key in config_reference.keys_of(schema):
        anchor = model.lower() if model else "top-level"
        assert anchor in found, f"no section for {model}"
        assert f"| `{key}` |" in found[anchor], f"{model or 'top level'}: {key} missing"


def test_config_keys_page_has_a_section_for_every_model() -> None:
    schema = config_schema()
    found = sections(config_reference.render(schema))
    assert {name.lower() for name in schema["$defs"]} <= set(found)


def test_config_keys_page_shows_durations_as_the_config_writes_them() -> None:
    assert config_reference.duration("PT15M") == "15m"
    assert config_reference.duration("P2D") == "2d"
    assert config_reference.duration("PT6H") == "6h"
    assert config_reference.duration("PT0S") == "0"
    assert config_reference.duration("PT90S") == "90s"
    page = config_reference.render(config_schema())
    assert not re.search(r"`P(\d+[DW])?(T[\d.]+[HMS])*`", page), "an ISO 8601 duration is shown"


def test_cli_page_lists_every_command_and_option() -> None:
    page = cli_reference.render()
    root = cli_reference.command_tree()
    commands = list(cli_reference.walk(root))
    assert len(commands) > 10
    for path, command, ctx in commands:
        assert f"## `{' '.join(path)}`" in page
        for declaration, _ in cli_reference.options(command, ctx):
            assert f"`{declaration.replace('|', chr(92) + '|')}`" in page, (path, declaration)


def test_hooks_generate_the_pages_the_nav_names() -> None:
    generated = set(hooks.generated_pages())
    assert generated <= set(nav_pages(load_mkdocs()["nav"]))


def test_the_nav_has_every_page_and_every_page_exists() -> None:
    nav = set(nav_pages(load_mkdocs()["nav"]))
    written = {
        str(p.relative_to(DOCS))
        for p in DOCS.rglob("*.md")
        if p.relative_to(DOCS).parts[0] != "gen"
    }
    generated = set(hooks.generated_pages())
    assert not written & generated, "a generated page is also written by hand"
    assert nav == written | generated


def test_readme_stays_small_and_its_links_to_docs_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 15 * 1024
    links = re.findall(r"\]\((docs/[^)#]*)", readme)
    assert links
    for link in links:
        assert (ROOT / link).exists(), link


def load_mkdocs() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def nav_pages(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from nav_pages(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from nav_pages(value)
    else:
        pytest.fail(f"unexpected nav entry {node!r}")
