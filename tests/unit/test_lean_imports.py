"""Commands load only what they use: the heavy clients (google-ads and gRPC, BigQuery,
the HTTP servers, the page templates, Prometheus, and alembic with Mako once the ledger
is at this code's revision) stay out of `report`, `health`, `validate`, `runs` and a
dry run of a config that names Google Ads, Metrica and VK; and the config checks know
which destinations take adjustments without importing any destination's client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convsync.destinations import (
    API_VARIANTS,
    DESTINATION_TYPES,
    adjustable_types,
    load_destination_class,
)
from tests.integration.test_cli import dated_example

#: module prefixes no read-only command needs
HEAVY = (
    "google.ads",
    "grpc",
    "google.cloud",
    "waitress",
    "werkzeug",
    "jinja2",
    "prometheus_client",
    "alembic",
    "mako",
)

#: runs the CLI in a fresh interpreter and prints the heavy modules it loaded
PROBE = """
import json, sys
args, prefixes = json.loads(sys.argv[1]), tuple(json.loads(sys.argv[2]))
from convsync.cli.app import main
sys.argv = ["convsync", *args]
try:
    main()
except SystemExit:
    pass
heavy = sorted({m for m in sys.modules if m.startswith(prefixes)})
sys.__stdout__.write("\\nHEAVY " + json.dumps(heavy) + "\\n")
"""

SECRETS = dict.fromkeys(
    (
        "GOOGLE_ADS_CLIENT_ID",
        "GOOGLE_ADS_CLIENT_SECRET",
        "GOOGLE_ADS_REFRESH_TOKEN",
        "METRICA_TOKEN",
        "VK_ID",
        "VK_SECRET",
    ),
    "placeholder-0123456789",
)


def test_the_adjustable_types_are_the_classes_that_take_adjustments() -> None:
    adjustable = adjustable_types()
    assert adjustable  # google_ads
    for type_name in DESTINATION_TYPES:
        assert load_destination_class(type_name).supports_adjustments == (
            type_name in adjustable
        ), type_name
    for type_name, api in API_VARIANTS:
        assert load_destination_class(type_name, api).supports_adjustments == (
            type_name in adjustable
        ), (type_name, api)


#: what `health` (the container's check by hand) must not load either: it asks the
#: running service over HTTP and needs no config model, ledger or table
NOT_FOR_HEALTH = ("convsync.config.loader", "convsync.store", "convsync.cli.views")


@pytest.mark.parametrize(
    ("command", "also"),
    [
        (["report"], ()),
        (["health"], NOT_FOR_HEALTH),
        (["validate"], ()),
        (["runs"], ()),
        (["sync", "--once", "--dry-run", "--output", "plan.jsonl"], ()),
    ],
)
def test_read_only_commands_load_no_heavy_client(
    tmp_path: Path, command: list[str], also: tuple[str, ...]
) -> None:
    config = dated_example(tmp_path / "example")  # names google_ads, metrica and vk
    args = ["--config", str(config), "--log-level", "ERROR", *command]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps([*HEAVY, *also])],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **SECRETS, "CONVSYNC_HEALTH_PORT": "9"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("HEAVY "))
    assert json.loads(line.removeprefix("HEAVY ")) == [], done.stderr


def test_either_google_destination_builds_payloads_without_its_client() -> None:
    # a dry run and the mapping process use a destination's class for payloads only
    code = (
        "import json, sys\n"
        "from convsync.destinations import API_VARIANTS, DESTINATION_TYPES, "
        "load_destination_class\n"
        "for t in DESTINATION_TYPES: load_destination_class(t)\n"
        "for t, api in API_VARIANTS: load_destination_class(t, api)\n"
        "prefixes = tuple(json.loads(sys.argv[1]))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(prefixes))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps([*HEAVY, "google.auth", "requests_oauthlib"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == []
