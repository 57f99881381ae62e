"""MkDocs hooks: the reference pages generated from the code at build time (never
committed as hand-written files) — the config keys from the JSON Schema, the CLI from
the typer app, and the example config the demo runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))

# the generators beside this file, found through the path above
import cli_reference
import config_reference
import example_config


def generated_pages() -> dict[str, str]:
    """Path under docs/ → Markdown of every generated page."""
    from convsync.config.loader import config_schema

    return {
        "reference/config-keys.md": config_reference.render(config_schema()),
        "reference/cli.md": cli_reference.render(),
        "reference/example-config.md": example_config.render(),
    }


def on_files(files: Files, config: Any) -> Files:
    for path, content in generated_pages().items():
        files.append(File.generated(config, path, content=content))
    return files
