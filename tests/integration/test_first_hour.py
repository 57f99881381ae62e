"""The first hour, as a new user meets it: one ledger wherever a command runs, no silent
no-ops, status words that agree with exit codes, CLI habits."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.vk_fake import fake_vk

from .test_cli import convsync

ENV = {"VK_SECRET": "first-hour-secret"}
#: the orders' day: yesterday, within every platform's age limits whenever tests run
DAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
HEADER = "order_id,created_at,status,total,rb_clickid\n"


def shop(folder: Path, vk_urls: str = "", glob: str = "exports/orders-*.csv") -> Path:
    """A shop config in ``folder``: its CSV exports in ``folder/exports``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "shop.yaml"
    config.write_text(
        "timezone: Europe/Moscow\n"
        "sources:\n"
        f"  shop: {{type: csv, path: '{glob}', id: order_id, time: created_at,\n"
        "         fields: {status: status, value: total, vk_click_id: rb_clickid}}\n"
        "destinations:\n"
        "  vk: {type: vk_ads, pixel_id: 3456789, client_id: '1', "
        f"client_secret: '${{VK_SECRET}}'{vk_urls}}}\n"
        "goals:\n"
        "  purchase: {source: shop, when: {status: paid}, value: value, currency: RUB,\n"
        "             send: {vk: {goal: purchase}}}\n",
        encoding="utf-8",
    )
    return config


def orders(folder: Path, *rows: str) -> None:
    (folder / "exports").mkdir(parents=True, exist_ok=True)
    text = HEADER + "".join(f"{row}\n" for row in rows)
    (folder / "exports" / "orders-1.csv").write_text(text, encoding="utf-8")


def test_the_same_config_run_from_three_folders_uses_one_ledger(tmp_path: Path) -> None:
    with fake_vk() as vk:
        urls = f", tracker_url: '{vk.tracker_url}', api_base_url: '{vk.api_base_url}'"
        config = shop(tmp_path / "conf", urls)
        orders(config.parent, f"A-1,{DAY} 10:00:00,paid,100,c1", f"A-2,{DAY} 11:00,paid,5,c2")
        elsewhere = tmp_path / "cron" / "home"
        elsewhere.mkdir(parents=True)
        runs = [
            convsync("--config", str(config), "sync", cwd=cwd, env=ENV)
            for cwd in (config.parent, tmp_path, elsewhere)
        ]
        relative = convsync("--config", "../conf/shop.yaml", "sync", cwd=tmp_path / "cron", env=ENV)
    ledger = config.parent / "shop.db"
    assert not ledger.exists()  # the default is convsync.db beside the config
    ledger = config.parent / "convsync.db"
    for run in (*runs, relative):
        assert run.returncode == 0, run.stderr
        started = json.loads(next(x for x in run.stderr.splitlines() if '"run started"' in x))
        assert started["ledger"] == f"sqlite:///{ledger}"
        assert started["config"] == str(config)
    assert len(vk.tracker.hits) == 2  # sent by the first run only
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT count(*) FROM conversions").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (4,)
    assert not (tmp_path / "convsync.db").exists() and not (elsewhere / "convsync.db").exists()


def test_a_relative_sqlite_url_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    config = shop(tmp_path / "conf")
    orders(config.parent)
    url = "sqlite:///state/ledger.db"
    (config.parent / "state").mkdir()
    out = convsync("--config", str(config), "--database-url", url, "runs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"sqlite:///{config.parent / 'state' / 'ledger.db'}" in out.stdout.replace("\n", "")


def test_a_mistyped_glob_is_a_warning_and_a_degraded_run(tmp_path: Path) -> None:
    config = shop(tmp_path, glob="exprots/orders-*.csv")
    orders(tmp_path, f"A-1,{DAY} 10:00:00,paid,100,c1")
    dry = convsync("--config", str(config), "sync", "--dry-run", cwd=tmp_path, env=ENV)
    assert dry.returncode == 1
    assert dry.stdout.splitlines()[0].endswith(": degraded")
    where = tmp_path / "exprots" / "orders-*.csv"
    assert f"warning: sources.shop.path: no file matches {where}" in dry.stdout
    logged = [json.loads(x) for x in dry.stderr.splitlines() if x.startswith("{")]
    assert any(e["event"] == "source incomplete" for e in logged)
    assert next(e for e in logged if e["event"] == "run finished")["status"] == "degraded"

    check = convsync("--config", str(config), "validate", cwd=tmp_path, env=ENV)
    assert check.returncode == 0
    assert f"warning: sources.shop.path: no file matches {where}" in check.stdout
    assert check.stdout.splitlines()[-1] == "OK, with 1 warning (above)"


def test_a_folder_and_an_empty_file_matched_by_the_glob_are_warnings(tmp_path: Path) -> None:
    config = shop(tmp_path)
    orders(tmp_path, f"A-1,{DAY} 10:00:00,paid,100,c1")
    (tmp_path / "exports" / "orders-2.csv").mkdir()
    (tmp_path / "exports" / "orders-3.csv").write_bytes(b"")
    check = convsync("--config", str(config), "validate", cwd=tmp_path, env=ENV)
    assert "warning: sources.shop.path: exports/orders-2.csv is a folder" in check.stdout
    assert "warning: sources.shop.path: exports/orders-3.csv is empty (0 bytes)" in check.stdout
    assert check.stdout.splitlines()[-1] == "OK, with 2 warnings (above)"


def test_validate_says_ok_only_when_nothing_failed_and_last(tmp_path: Path) -> None:
    config = shop(tmp_path)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "orders-1.csv").write_text("order_id,created_at\n", encoding="utf-8")
    bad = convsync("--config", str(config), "validate", cwd=tmp_path, env=ENV)
    assert bad.returncode == 2
    assert "OK" not in bad.stdout and bad.stdout.splitlines()[-1].startswith("FAILED: 1 problem")
    assert "'status' (sources.shop.fields.status) is not in the header" in bad.stdout


def test_a_dry_run_summary_agrees_with_itself_the_plan_file_and_the_exit_code(
    tmp_path: Path,
) -> None:
    config = shop(tmp_path)
    orders(
        tmp_path,
        f"A-1,{DAY} 10:00:00,paid,100,c1",
        f"A-2,{DAY} 11:00:00,paid,200,",  # no click id: skipped for VK
        f"A-3,{DAY} 12:00:00,paid,oops,c3",  # a bad amount: rejected
        f"A-4,{DAY} 13:00:00,paid,50,",
    )
    out = convsync(
        "--config", str(config), "sync", "--dry-run", "-o", "plan.jsonl", cwd=tmp_path, env=ENV
    )
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].endswith(": degraded")
    plan = [json.loads(x) for x in (tmp_path / "plan.jsonl").read_text().splitlines()]
    shown = [(p["order_id"], "send" if "payload" in p else p["skipped"]["code"]) for p in plan]
    assert shown == [("A-1", "send"), ("A-2", "no_identifier"), ("A-4", "no_identifier")]
    sources = next(x for x in lines if x.startswith("│ shop"))
    assert [c.strip() for c in sources.split("│")[2:-1]] == ["4", "1", "3", "1", "2"]
    plan_row = next(x for x in lines if x.startswith("│ vk"))
    assert [c.strip() for c in plan_row.split("│")[3:-1]] == ["1", "0", "0", "2"]
    text = "\n".join(lines)
    assert "shop: 1 record rejected, bad_value: A-3 (exports/orders-1.csv:4)" in text
    assert "purchase → vk: 2 skipped, no_identifier: A-2, A-4" in text


def test_cli_habits(tmp_path: Path) -> None:
    config = shop(tmp_path)
    orders(tmp_path, f"A-1,{DAY} 10:00:00,paid,100,c1")
    version = convsync("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("convsync ")
    helped = convsync("sync", "-h", cwd=tmp_path)
    assert helped.returncode == 0 and "--dry-run" in helped.stdout
    assert "<bool>" not in helped.stdout and "[default: True]" not in helped.stdout
    after = convsync("validate", "--config", str(config), cwd=tmp_path, env=ENV)
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines()[-1] == "OK"
    between = convsync(
        "sync", "-c", str(config), "--dry-run", "--log-level", "error", cwd=tmp_path, env=ENV
    )
    assert between.returncode == 0, between.stderr
    assert "Dry run" in between.stdout and between.stderr == ""
    bare = convsync("report", "--since", "30", cwd=tmp_path)
    assert bare.returncode == 2
    assert "--since 30: a window needs a unit — did you mean 30d?" in bare.stderr
