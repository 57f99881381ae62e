"""``convsync demo`` as a user runs it: the same plan whatever day it runs (a year ahead
under libfaketime), exit 0 when it shows what it is meant to, 1 naming what differs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import libfaketime
import pytest
from rich.console import Console

from convsync.cli.demo import PLACEHOLDER_CREDENTIALS, dry_run, prepare, run_demo
from convsync.config.settings import Settings, load_settings
from convsync.demo.outcome import MEANT, differences

CONVSYNC = str(Path(sys.executable).parent / "convsync")
YEAR_AHEAD = "+365d"
MEANT_LINE = "The demo did what it is meant to: 9 deliveries planned, 2 bad rows rejected as shown."


def _env(faketime: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVSYNC_", "FAKETIME"))}
    env["CONVSYNC_LOG_FORMAT"] = "json"
    if faketime is not None:
        _, preload = libfaketime.get_reload_information()  # LD_PRELOAD of its bundled library
        env |= {**preload, "FAKETIME": faketime}
    return env | (extra or {})


def _run(
    args: list[str], cwd: Path, faketime: str | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=_env(faketime, extra), capture_output=True, text=True, timeout=120
    )


def _now(faketime: str | None) -> datetime:
    """The time a process sees under ``faketime``."""
    code = "import datetime; print(datetime.datetime.now(datetime.UTC).isoformat())"
    return datetime.fromisoformat(
        _run([sys.executable, "-c", code], Path.cwd(), faketime).stdout.strip()
    )


def _plan(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _shape(plan: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Each delivery's destination, goal, kind and conversion key (made of the source,
    the order id and the goal), in the plan's order."""
    kinds = {
        "payload": "send",
        "deferred": "deferred",
        "rejected": "rejected",
        "skipped": "skipped",
    }
    return [
        (p["destination"], p["goal"], next(kinds[k] for k in kinds if k in p), p["conversion_key"])
        for p in plan
    ]


def _event_times(plan: list[dict[str, Any]]) -> list[datetime]:
    """When the planned Google and Metrica conversions happened, as their payloads say."""
    times = []
    for p in plan:
        payload = p.get("payload", {})
        if "event_timestamp" in payload:
            times.append(datetime.fromisoformat(payload["event_timestamp"]))
        elif "row" in payload:
            times.append(datetime.fromtimestamp(payload["row"]["DateTime"], UTC))
    return times


def test_the_demo_plans_the_same_today_and_a_year_ahead(tmp_path: Path) -> None:
    real_now, faked_now = _now(None), _now(YEAR_AHEAD)
    assert faked_now - real_now > timedelta(days=364)  # the faked clock is in effect

    plans = {}
    for name, faketime in (("today", None), ("ahead", YEAR_AHEAD)):
        (tmp_path / name).mkdir()
        done = _run([CONVSYNC, "demo"], tmp_path / name, faketime)
        assert done.returncode == 0, done.stderr
        assert MEANT_LINE in done.stdout
        plans[name] = _plan(tmp_path / name / "demo-plan.jsonl")

    assert _shape(plans["ahead"]) == _shape(plans["today"])
    assert [kind for _, _, kind, _ in _shape(plans["today"])].count("send") == 9
    google_orders = [
        p["payload"]["transaction_id"]
        for p in plans["today"]
        if p["destination"] == "google"
        if "payload" in p
    ]
    assert google_orders == ["A-1001", "D-501", "A-1004", "D-503"]
    # the samples were dated relative to the faked today: within the last days before it
    ahead = _event_times(plans["ahead"])
    assert len(ahead) == 7
    assert all(faked_now - timedelta(days=6) < at < faked_now for at in ahead), ahead


def test_the_kept_files_give_the_plan_the_demo_showed(tmp_path: Path) -> None:
    shown = _run([CONVSYNC, "demo", "--keep", "kept", "--output", "shown.jsonl"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "convsync --config kept/example.yaml sync --once --dry-run" in shown.stdout
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["example.yaml", "sample"]

    again = _run(
        [
            CONVSYNC, "--config", "kept/example.yaml", "--database-url", f"sqlite:///{tmp_path}/l.db",
            "sync", "--once", "--dry-run", "--output", "again.jsonl",
        ],
        tmp_path,
        extra=PLACEHOLDER_CREDENTIALS,
    )  # fmt: skip
    assert again.returncode == 1, again.stderr  # degraded: the two bad rows
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "shown.jsonl").read_text()

    refused = _run([CONVSYNC, "demo", "--keep", "kept"], tmp_path)
    assert refused.returncode == 2
    assert "--keep kept: the folder is not empty" in refused.stderr


def test_the_plan_on_stdout_is_only_json_lines(tmp_path: Path) -> None:
    done = _run([CONVSYNC, "demo", "--output", "-"], tmp_path)
    assert done.returncode == 0, done.stderr
    deliveries = sum(sum(counts.values()) for counts in MEANT.plan.values())
    assert len([json.loads(line) for line in done.stdout.splitlines()]) == deliveries == 19
    assert MEANT_LINE in done.stderr


@pytest.fixture
def settings() -> Settings:
    return load_settings()


def test_a_plan_other_than_the_one_meant_exits_1_naming_the_difference(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    vk_twice = dataclasses.replace(
        MEANT, plan={**MEANT.plan, ("vk", "purchase"): {"send": 3, "skipped": 2}}
    )
    console = Console(file=sys.stdout)
    assert run_demo(settings, Path("plan.jsonl"), None, console, meant=vk_twice) == 1
    err = capsys.readouterr().err
    assert "convsync demo: the dry run is not what the demo is meant to show:" in err
    assert "plan vk / purchase: meant 3 send, 2 skipped; the plan has 2 send, 3 skipped" in err
    assert run_demo(settings, Path("plan.jsonl"), None, console) == 0


def test_a_sample_without_a_mapped_column_is_not_what_the_demo_shows(
    tmp_path: Path, settings: Settings
) -> None:
    loaded = prepare(tmp_path)
    crm = tmp_path / "sample" / "crm-export.csv"
    rows = [line.split(";") for line in crm.read_text(encoding="cp1251").splitlines()]
    stage = rows[0].index("Стадия")
    crm.write_text(
        "".join(";".join(r[:stage] + r[stage + 1 :]) + "\r\n" for r in rows), encoding="cp1251"
    )
    found = differences(dry_run(loaded, settings, tmp_path / "plan.jsonl"))
    assert any("crm-export.csv" in problem and "Стадия" in problem for problem in found), found
    assert (
        "source crm: meant 4 pulled, 1 rejected, 2 new; the run had 0 pulled, 0 rejected, 0 new"
        in found
    )
    assert any(problem.startswith("plan google / deal_won: meant 2 send;") for problem in found)
