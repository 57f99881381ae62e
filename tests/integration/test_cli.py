"""The command as a user runs it: exit codes, messages without tracebacks, the example."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from convsync.cli.demo import prepare
from tests.datamanager_fake import FakeDataManager, fake_data_manager
from tests.metrica_fake import FakeMetrica, fake_metrica
from tests.vk_fake import FakeVk, fake_vk

ROOT = Path(__file__).resolve().parents[2]
CONVSYNC = str(Path(sys.executable).parent / "convsync")
DEMO_ENV = {
    "GOOGLE_ADS_CLIENT_ID": "demo",
    "GOOGLE_ADS_CLIENT_SECRET": "demo-google-secret",
    "GOOGLE_ADS_REFRESH_TOKEN": "demo-refresh-token",
    "METRICA_TOKEN": "demo-metrica-token",
    "VK_ID": "demo",
    "VK_SECRET": "demo-vk-secret",
}


def convsync(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSYNC_")}
    full_env.update(env or {})
    full_env["CONVSYNC_LOG_FORMAT"] = "json"
    return subprocess.run(
        [CONVSYNC, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def dated_example(folder: Path) -> Path:
    """The example config and its samples in ``folder``, dated relative to today as the
    demo dates them: the platforms' age limits never make these tests go stale."""
    folder.mkdir(parents=True, exist_ok=True)
    return prepare(folder).path


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return dated_example(tmp_path / "config")


def test_validate_ok_and_every_problem_without_traceback(tmp_path: Path, example: Path) -> None:
    ok = convsync("--config", str(example), "validate", cwd=tmp_path, env=DEMO_ENV)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "goal purchase: shop → google, metrica, vk" in ok.stdout

    broken = example.read_text(encoding="utf-8").replace(
        "google:  {conversion", "gogle:  {conversion"
    )
    example.write_text(broken, encoding="utf-8")
    bad = convsync("--config", str(example), "validate", cwd=tmp_path, env={})
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert (
        "goals.purchase.send.gogle: unknown destination 'gogle' (did you mean 'google'?)"
        in bad.stderr
    )
    assert "destinations.metrica.token: environment variable METRICA_TOKEN is not set" in bad.stderr


def test_broken_yaml_and_missing_file_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("goals: [\n", encoding="utf-8")
    broken = convsync("--config", "c.yaml", "validate", cwd=tmp_path)
    assert broken.returncode == 2 and "not valid YAML" in broken.stderr
    assert "Traceback" not in broken.stderr
    missing = convsync("--config", "nope.yaml", "sync", "--once", cwd=tmp_path)
    assert missing.returncode == 2
    assert "config file nope.yaml does not exist" in missing.stderr


def test_schema_is_json_schema(tmp_path: Path) -> None:
    out = convsync("config", "schema", cwd=tmp_path)
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["title"] == "convsync configuration"
    assert set(schema["properties"]) >= {"timezone", "sources", "destinations", "goals"}


def _to_fake_google(example: Path, fake: FakeDataManager) -> dict[str, str]:
    """Point the example's Google Ads account at the local fake Data Manager API (which
    processes each request at once); its environment."""
    fake.auto_process = True
    text = example.read_text(encoding="utf-8")
    anchor = 'customer_id: "123-456-7890"'
    assert anchor in text
    text = text.replace(anchor, f'{anchor}\n    endpoint: "{fake.endpoint}"', 1)
    text = text.replace(
        'refresh_token: "${GOOGLE_ADS_REFRESH_TOKEN}"',
        'refresh_token: "${GOOGLE_ADS_REFRESH_TOKEN}", token_uri: "${GOOGLE_ADS_TOKEN_URI}"',
    )
    example.write_text(text, encoding="utf-8")
    auth = fake.destination_config()["auth"]
    return {
        **DEMO_ENV,
        "GOOGLE_ADS_CLIENT_ID": auth["client_id"],
        "GOOGLE_ADS_CLIENT_SECRET": auth["client_secret"],
        "GOOGLE_ADS_REFRESH_TOKEN": auth["refresh_token"],
        "GOOGLE_ADS_TOKEN_URI": auth["token_uri"],
    }


def _to_fake_vk(example: Path, fake: FakeVk) -> None:
    """Point the example's VK Ads pixel (tracker and API) at the local fake."""
    text = example.read_text(encoding="utf-8")
    anchor = "pixel_id: 3456789,"
    assert anchor in text
    urls = f'tracker_url: "{fake.tracker_url}", api_base_url: "{fake.api_base_url}",'
    example.write_text(text.replace(anchor, f"{anchor} {urls}", 1), encoding="utf-8")


def _to_fake_metrica(example: Path, fake: FakeMetrica) -> None:
    """Point the example's Metrica counter at the local fake (which takes the demo token)."""
    text = example.read_text(encoding="utf-8")
    anchor = 'token: "${METRICA_TOKEN}"'
    assert anchor in text
    text = text.replace(anchor, f'{anchor}, api_base_url: "{fake.url}"', 1)
    example.write_text(text, encoding="utf-8")
    fake.token = DEMO_ENV["METRICA_TOKEN"]
    fake.counters.add(12345678)  # the example's counter


def test_example_dry_run_then_real_runs_twice(tmp_path: Path, example: Path) -> None:
    with fake_data_manager() as fake, fake_vk() as vk, fake_metrica() as metrica:
        _to_fake_vk(example, vk)
        _to_fake_metrica(example, metrica)
        _example_runs(tmp_path, example, fake)
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        [(vk_delivered,)] = conn.execute(
            "SELECT count(*) FROM deliveries WHERE destination = 'vk' AND state = 'delivered'"
        ).fetchall()
        [(metrica_delivered,)] = conn.execute(
            "SELECT count(*) FROM deliveries WHERE destination = 'metrica' AND state = 'delivered'"
        ).fetchall()
    assert len(vk.tracker.hits) == vk_delivered  # each VK event sent once, to the fake
    # each Metrica conversion in one upload, to the fake
    assert sum(len(u.lines) for u in metrica.uploads.values()) == metrica_delivered > 0


def _example_runs(tmp_path: Path, example: Path, fake: FakeDataManager) -> None:
    real_env = _to_fake_google(example, fake)
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    dry = convsync(
        "--config", str(example), "--database-url", url,
        "sync", "--once", "--dry-run", "--output", "plan.jsonl",
        cwd=tmp_path, env=real_env,
    )  # fmt: skip
    assert dry.returncode == 1, dry.stderr  # the sample holds two bad rows on purpose
    assert not db.exists()
    assert "Dry run (nothing recorded, nothing sent)" in dry.stdout
    plan = [json.loads(line) for line in (tmp_path / "plan.jsonl").read_text().splitlines()]
    destinations = [p["destination"] for p in plan]
    assert destinations == sorted(destinations)
    # the cp1251, ';'-separated CRM export with Russian dates and "1 500,00"
    d501 = next(p for p in plan if p.get("payload", {}).get("transaction_id") == "D-501")
    assert d501["payload"]["conversion_value"] == 1500.0
    assert d501["payload"]["event_timestamp"].endswith("T11:03:00Z")  # 14:03 in Moscow

    first = convsync(
        "--config",
        str(example),
        "--database-url",
        url,
        "sync",
        "--once",
        cwd=tmp_path,
        env=real_env,
    )
    assert first.returncode == 1  # the sample's bad rows
    with sqlite3.connect(db) as conn:
        conversions = conn.execute("SELECT count(*) FROM conversions").fetchone()[0]
        states = dict(
            conn.execute(
                "SELECT destination || ':' || state, count(*) FROM deliveries GROUP BY 1"
            ).fetchall()
        )
    google_planned = sum(1 for p in plan if p["destination"] == "google" and "payload" in p)
    google_skipped = sum(1 for p in plan if p["destination"] == "google" and "skipped" in p)
    assert conversions == 7
    assert states["google:delivered"] == google_planned == len(fake.state.conversions)
    # the rest of Google's were skipped (no click id) in the plan as in the ledger
    assert states["google:skipped"] == google_skipped > 0
    assert {k for k in states if k.startswith("google:")} <= {"google:delivered", "google:skipped"}

    second = convsync(
        "--config",
        str(example),
        "--database-url",
        url,
        "sync",
        "--once",
        cwd=tmp_path,
        env=real_env,
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM conversions").fetchone()[0] == conversions
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] > 0
    finished = [json.loads(x) for x in second.stderr.splitlines() if '"run finished"' in x]
    # unchanged files are not read again
    assert finished[0]["sources"] == {"shop": {}, "crm": {}}

    runs = convsync("--database-url", url, "runs", cwd=tmp_path)
    assert runs.returncode == 0 and runs.stdout.count("once") == 2
    report = convsync("--database-url", url, "report", "--since", "3650d", cwd=tmp_path)
    assert report.returncode == 0
    assert "purchase" in report.stdout and "deal_won" in report.stdout
    failures = convsync("--database-url", url, "failures", "--since", "3650d", cwd=tmp_path)
    assert "crm-export.csv:5" in failures.stdout and "bad_time" in failures.stdout
    assert "orders-2026-11.csv:8" in failures.stdout and "bad_value" in failures.stdout


def test_output_without_dry_run_and_bad_since_are_refused(tmp_path: Path, example: Path) -> None:
    out = convsync(
        "--config",
        str(example),
        "sync",
        "--once",
        "--output",
        "x.jsonl",
        cwd=tmp_path,
        env=DEMO_ENV,
    )
    assert out.returncode == 2 and "dry-run plan or the --validate results" in out.stderr
    since = convsync(
        "--database-url", f"sqlite:///{tmp_path}/l.db", "report", "--since", "soon", cwd=tmp_path
    )
    assert since.returncode == 2 and "--since" in since.stderr
    goal = convsync(
        "--config",
        str(example),
        "sync",
        "--once",
        "--dry-run",
        "--goal",
        "nope",
        cwd=tmp_path,
        env=DEMO_ENV,
    )
    assert goal.returncode == 2 and "--goal nope: no such goal" in goal.stderr


def test_a_csv_without_the_mapped_columns_exits_2_naming_file_and_key(
    tmp_path: Path, example: Path
) -> None:
    (example.parent / "sample" / "orders-broken.csv").write_text(
        "order_id,created_at\nZ-1,2026-11-20 10:00\n", encoding="utf-8"
    )
    out = convsync(
        "--config", str(example), "sync", "--once", "--dry-run", cwd=tmp_path, env=DEMO_ENV
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "orders-broken.csv" in out.stderr and "sources.shop.fields" in out.stderr


def test_retry_counts_and_refuses_states_it_cannot_requeue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    counted = convsync(
        "--database-url", url, "retry", "--state", "uncertain", "--dry-run", cwd=tmp_path
    )
    assert counted.returncode == 0, counted.stderr
    assert "0 deliveries would go back to pending" in counted.stdout
    shorthand = convsync("--database-url", url, "retry", "--uncertain", "--dry-run", cwd=tmp_path)
    assert shorthand.returncode == 0, shorthand.stderr
    assert "would go back to pending" in shorthand.stdout
    refused = convsync("--database-url", url, "retry", "--state", "delivered", cwd=tmp_path)
    assert refused.returncode == 2 and "cannot re-queue" in refused.stderr
    unknown = convsync("--database-url", url, "retry", "--state", "lost", cwd=tmp_path)
    assert (
        unknown.returncode == 2 and "--state: use rejected, deferred or uncertain" in unknown.stderr
    )


def test_validate_checks_the_source_files_headers(tmp_path: Path, example: Path) -> None:
    (example.parent / "sample" / "orders-broken.csv").write_text(
        "order_id,created_at\nZ-1,2026-11-20 10:00\n", encoding="utf-8"
    )
    bad = convsync("--config", str(example), "validate", cwd=tmp_path, env=DEMO_ENV)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    verdict = bad.stdout.splitlines()[-1]
    assert verdict.startswith("FAILED: 1 problem") and "OK" not in bad.stdout
    assert "orders-broken.csv: the file's header lacks configured columns" in bad.stdout
    assert "'status' (sources.shop.fields.status) is not in the header" in bad.stdout

    for csv_file in (example.parent / "sample").glob("orders-*.csv"):
        csv_file.unlink()
    empty = convsync("--config", str(example), "validate", cwd=tmp_path, env=DEMO_ENV)
    assert empty.returncode == 0, empty.stderr
    assert "warning: sources.shop.path: no file matches" in empty.stdout
    assert empty.stdout.splitlines()[-1] == "OK, with 1 warning (above)"


def test_a_plan_on_stdout_is_only_json_lines(tmp_path: Path, example: Path) -> None:
    out = convsync(
        "--config", str(example), "sync", "--once", "--dry-run", "--output", "-",
        cwd=tmp_path, env=DEMO_ENV,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr  # the sample's two bad rows
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    sent = [line for line in lines if "payload" in line]
    skipped = [line for line in lines if line.get("skipped", {}).get("code") == "no_identifier"]
    assert len(sent) == 9 and len(skipped) == 10 and len(lines) == 19
    assert "Dry run (nothing recorded, nothing sent)" in out.stderr


def test_an_unreachable_ledger_is_a_clear_user_error(tmp_path: Path, example: Path) -> None:
    out = convsync(
        "--config", str(example), "--database-url", "postgresql://convsync:pw-4711@127.0.0.1:1/x",
        "sync", "--once", cwd=tmp_path, env=DEMO_ENV,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot open the ledger at postgresql+psycopg://convsync:***@127.0.0.1:1/x" in out.stderr
    assert "pw-4711" not in out.stderr
