"""Every YAML example in docs/ passes the real `convsync validate`.

A fenced ```yaml block is
- a **whole config** when it has `sources`, `destinations` and `goals`: validated as it is;
- a **fragment** when its top-level keys are config keys but not all three (a source
  with its goals, an `alerts:` or `ui:` section): merged into ``BASE`` — its sections'
  entries added to the base's, its other keys replacing the base's — and validated;
- a **nested fragment** (``NESTED``: a destination's `auth:`) put where it belongs in
  ``BASE``;
- anything else (no config key at the top) is not a config and is skipped.

Each is written to a temporary folder with what `validate` reads beside it: an
empty-with-header CSV file for every `csv` source's glob (the mapped columns, in the
source's delimiter and encoding), a SQLite database for a `sql` source's `${…}` URL
(``SQL_DATABASES``), and a local fake for the sources whose check makes one request
(`metrica_logs`: the counter's goals; `ga4_bigquery`: the dataset's tables), reached
through the keys the config has for it (`api_base_url`, `api_endpoint`). Every
`${NAME}` gets a dummy value of the shape its key needs. Then the installed `convsync`
runs `validate` on it, and must exit 0 with its verdict `OK`.
"""

from __future__ import annotations

import copy
import csv
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer

from convsync.config.loader import config_schema
from tests.bigquery_fake import fake_bigquery

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONVSYNC = Path(sys.executable).parent / "convsync"
FENCE = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECTIONS = ("sources", "destinations", "goals")

BASE: dict[str, Any] = {
    "sources": {
        "shop": {
            "type": "csv",
            "path": "base/orders-*.csv",
            "id": "order_id",
            "time": "created_at",
            "fields": {"gclid": "gclid", "yclid": "yclid", "status": "status", "value": "total"},
        }
    },
    "destinations": {
        "google": {"type": "google_ads", "customer_id": "123-456-7890"},
        "metrica": {"type": "yandex_metrica", "counter_id": 87654321, "token": "${METRICA_TOKEN}"},
        "vk": {"type": "vk_ads", "pixel_id": 3456789},
    },
    "goals": {"purchase": {"source": "shop", "send": {"google": {"conversion_action": 1}}}},
}

#: a block whose only key belongs deeper in the config → where it goes in BASE
NESTED: dict[str, tuple[str, ...]] = {"auth": ("destinations", "google", "auth")}

#: ${NAME} of a `sql` source's URL → the tables its example query reads (SQLite)
SQL_DATABASES: dict[str, str] = {
    "SHOP_DB_URL": """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, paid_at TEXT,
            updated_at TEXT, status TEXT, total NUMERIC, currency TEXT, gclid TEXT,
            yclid TEXT, rb_clickid TEXT);
    """,
}


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    text: str
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def yaml_blocks() -> Iterator[tuple[str, int, str]]:
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            yield str(path.relative_to(DOCS)), line, match.group(1)


def config_examples() -> list[Example]:
    keys = set(config_schema()["properties"])
    found = []
    for page, line, text in yaml_blocks():
        data = yaml.safe_load(text)
        if isinstance(data, dict) and data and (set(data) <= keys or set(data) <= set(NESTED)):
            found.append(Example(page, line, text, data))
    return found


EXAMPLES = config_examples()


def test_the_docs_have_config_examples() -> None:
    """The collection itself works: the pages have examples, among them whole configs."""
    assert len(EXAMPLES) >= 10
    assert any(set(SECTIONS) <= set(e.data) for e in EXAMPLES)


def test_every_yaml_block_parses() -> None:
    for page, line, text in yaml_blocks():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            pytest.fail(f"{page}:{line}: not YAML: {exc}")


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_passes_convsync_validate(
    example: Example, tmp_path: Path, httpserver: HTTPServer
) -> None:
    config = assembled(example.data)
    env = os.environ | {name: dummy(name, tmp_path) for name in REFERENCE.findall(str(config))}
    with ServingSources(config, tmp_path, httpserver):
        write_source_files(config, tmp_path)
        (tmp_path / "convsync.yaml").write_text(
            yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        result = subprocess.run(
            [str(CONVSYNC), "--config", str(tmp_path / "convsync.yaml"), "validate"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    verdict = result.stdout.strip().splitlines()[-1:] or [""]
    assert result.returncode == 0 and verdict[0].startswith("OK"), (
        f"{example.name}: convsync validate exited {result.returncode}\n"
        f"--- example ---\n{example.text}\n--- stdout ---\n{result.stdout}\n"
        f"--- stderr ---\n{result.stderr}"
    )


# --- the config around an example -------------------------------------------------------


def assembled(block: dict[str, Any]) -> dict[str, Any]:
    """The config to validate: the block as it is when whole, else merged into BASE."""
    if set(SECTIONS) <= set(block):
        return copy.deepcopy(block)
    config = copy.deepcopy(BASE)
    for key, value in block.items():
        if key in NESTED:
            *parents, last = NESTED[key]
            node = config
            for parent in parents:
                node = node[parent]
            node[last] = copy.deepcopy(value)
        elif key in SECTIONS:
            config[key].update(copy.deepcopy(value))
        else:
            config[key] = copy.deepcopy(value)
    return config


def dummy(name: str, folder: Path) -> str:
    """A value of the shape the key that refers to ``name`` needs."""
    if name in SQL_DATABASES:
        database = folder / f"{name.lower()}.db"
        with sqlite3.connect(database) as connection:
            connection.executescript(SQL_DATABASES[name])
        connection.close()
        return f"sqlite:///{database}"
    if "B24" in name or "BITRIX" in name:
        return "https://portal.example.invalid/rest/1/abc123xyz/"
    if "URL" in name:
        return "https://hooks.example.invalid/services/T000/B000/abc123"
    if "BOT_TOKEN" in name:
        return "123456789:AAHdummyTokenForTheDocsExamples0123"
    return "dummy-secret-for-docs-0123456789"


def write_source_files(config: dict[str, Any], folder: Path) -> None:
    """An empty-with-header file for every `csv` source, matching its glob."""
    for source in config["sources"].values():
        if source.get("type") != "csv":
            continue
        path = folder / re.sub(r"\*\*/?", "", source["path"]).replace("*", "x").replace("?", "x")
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = [source["id"], source["time"], *source.get("fields", {}).values()]
        delimiter = {"auto": ",", "tab": "\t"}.get(source.get("delimiter", "auto"))
        encoding = {"auto": "utf-8"}.get(source.get("encoding", "auto"), source.get("encoding"))
        with path.open("w", encoding=encoding, newline="") as out:
            csv.writer(out, delimiter=delimiter or source["delimiter"]).writerow(
                dict.fromkeys(columns)
            )


class ServingSources:
    """Local fakes for the sources whose check makes a request, and the config pointed
    at them through its own keys."""

    def __init__(self, config: dict[str, Any], folder: Path, httpserver: HTTPServer) -> None:
        self.config = config
        self.folder = folder
        self.httpserver = httpserver
        self.bigquery: Any = None

    def __enter__(self) -> None:
        for source in self.config["sources"].values():
            kind = source.get("type")
            if kind == "metrica_logs":
                self._metrica_counter(source)
            elif kind == "ga4_bigquery":
                self._bigquery(source)
            elif kind == "hubspot" and (source.get("pipeline") or source.get("won_stages")):
                pytest.fail("a hubspot example with pipeline/won_stages needs a fake here")

    def __exit__(self, *exc: object) -> None:
        if self.bigquery is not None:
            self.bigquery.__exit__(*exc)

    def _metrica_counter(self, source: dict[str, Any]) -> None:
        goals = [{"id": int(g), "name": f"goal {g}"} for g in source["goal_ids"]]
        self.httpserver.expect_request(
            f"/management/v1/counter/{source['counter_id']}"
        ).respond_with_json({"counter": {"id": source["counter_id"], "goals": goals}})
        source.setdefault("api_base_url", self.httpserver.url_for("").rstrip("/"))

    def _bigquery(self, source: dict[str, Any]) -> None:
        (self.folder / "keys").mkdir()
        self.bigquery = fake_bigquery(self.folder / "keys")
        fake = self.bigquery.__enter__()
        project, _, dataset = source["dataset"].rpartition(".")
        fake.state.project = project or source.get("project") or fake.state.project
        fake.state.dataset = dataset
        fake.state.add_event("events_20261201", event_name="purchase")
        key = source.get("credentials_file") or "ga4-key.json"
        (self.folder / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fake.key_file, self.folder / key)
        source["credentials_file"] = key
        source.setdefault("api_endpoint", fake.base_url)
