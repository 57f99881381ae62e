"""A connector type is its package plus one registry line: the config file's unions, the
goals' ``send`` models and the pipeline all come from the registries, so a toy platform
registered in a test — and changed nowhere else — is validated, planned and sent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from convsync.destinations import DESTINATION_TYPES, destination_config_models, target_models
from convsync.sources import SOURCE_TYPES, load_source_class, source_config_models

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
timezone: Europe/Moscow
phone_region: RU
sources:
  shop:
    type: csv
    path: orders.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, email: email}
destinations:
  toy: {type: toy, account: acme}
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    send:
      toy: {event: bought}
"""
ORDERS = (
    "order_id,created_at,status,total,email\n"
    "A-1,{day} 10:00:00,paid,1500,a@example.com\n"
    "A-2,{day} 11:00:00,paid,10,\n"
    "A-3,{day} 12:00:00,new,10,c@example.com\n"
)

#: registers the toy type (the one line a new platform adds), then runs the CLI
RUN = """
import sys
from convsync.destinations import DESTINATION_TYPES, DestinationType
DESTINATION_TYPES["toy"] = DestinationType(
    "tests.toy_destination.destination:ToyDestination",
    "tests.toy_destination.destination:ToyConfig",
    "tests.toy_destination.destination:ToyTarget",
)
from convsync.cli.app import main
sys.argv = ["convsync", *sys.argv[1:]]
main()
"""


def test_every_registered_type_has_its_classes() -> None:
    assert list(source_config_models()) == list(SOURCE_TYPES)
    for name in SOURCE_TYPES:
        assert load_source_class(name).__name__.endswith("Source"), name
    models, targets = destination_config_models(), target_models()
    assert list(models) == list(targets) == list(DESTINATION_TYPES)
    for name, model in models.items():
        assert model.model_fields["type"].annotation.__args__ == (name,), name


def _convsync(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN, "--config", str(workdir / "convsync.yaml"), *args],
        cwd=ROOT,  # the toy package is importable from the repository's root
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_toy_destination_registered_in_one_line_is_validated_and_planned(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime, timedelta

    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "orders.csv").write_text(ORDERS.format(day=day), encoding="utf-8")

    done = _convsync(tmp_path, "sync", "--once", "--dry-run", "--output", "-")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert [(x["type"], x["order_id"]) for x in lines] == [("toy", "A-1"), ("toy", "A-2")]
    sent, skipped = lines
    assert sent["payload"]["event"] == "bought" and sent["payload"]["value"] == "1500"
    assert len(sent["payload"]["email_sha256"]) == 64
    assert skipped["skipped"]["code"] == "no_identifier"

    # a real run records and sends it like any other platform's
    assert _convsync(tmp_path, "--log-level", "ERROR", "sync", "--once").returncode == 0
    report = _convsync(tmp_path, "report", "--format", "json", "--since", "30d")
    (row,) = [r for r in json.loads(report.stdout)["goals"] if r["destination"] == "toy"]
    assert (row["conversions"], row["sent"], row["accepted"], row["skipped"]) == (2, 1, 1, 1)

    # the toy's config is checked like any other: a wrong key of its target is named
    (tmp_path / "convsync.yaml").write_text(
        CONFIG.replace("{event: bought}", "{evnt: bought}"), encoding="utf-8"
    )
    bad = _convsync(tmp_path, "validate")
    assert bad.returncode == 2
    assert "goals.purchase.send.toy" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
