"""Nothing sensitive leaks: the secrets and the raw e-mails and phones of a sync are in
none of its outputs — logs (at DEBUG), the ledger's files, the dry-run plan."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tests.datamanager_fake import fake_data_manager
from tests.metrica_fake import fake_metrica
from tests.vk_fake import fake_vk

from .test_cli import _to_fake_google, _to_fake_metrica, _to_fake_vk, convsync, dated_example

SAMPLE_PII = [
    "anna.petrova@example.com",
    "ivan@example.org",
    "olga@example.net",
    "petr@example.com",
    "maria@example.com",
    "+7 900 000-00-01",
    "8 (900) 000-00-02",
    "8 900 000-00-03",
    "+7 900 000-00-04",
    # the normalised forms are personal data too: only their hashes may be stored
    "+79000000001",
    "79000000002",
    "9000000003",
]


def test_no_secret_or_raw_contact_in_logs_ledger_or_plan(tmp_path: Path) -> None:
    example = dated_example(tmp_path / "config")
    # real runs upload to Google, send VK events and Metrica files: to local fakes only
    with fake_data_manager() as google, fake_vk() as vk, fake_metrica() as metrica:
        env = _to_fake_google(example, google)
        _to_fake_vk(example, vk)
        _to_fake_metrica(example, metrica)
        _check_no_leaks(tmp_path, env, google.oauth.access_tokens)
        assert metrica.uploads  # the demo token went over the wire, and nowhere else
        assert google.calls  # so did Google's access token


def _check_no_leaks(tmp_path: Path, env: dict[str, str], access_tokens: Iterable[str]) -> None:
    config = str(tmp_path / "config" / "example.yaml")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {**env, "CONVSYNC_LOG_LEVEL": "DEBUG"}
    outputs = []
    for args in (
        ("sync", "--once", "--dry-run", "--output", "plan.jsonl"),
        ("sync", "--once"),
        ("sync", "--once"),
        ("failures", "--since", "3650d"),
        ("report", "--since", "3650d"),
    ):
        done = convsync("--config", config, "--database-url", url, *args, cwd=tmp_path, env=env)
        assert done.returncode in (0, 1), done.stderr
        outputs += [done.stdout, done.stderr]
    logs = "\n".join(outputs)
    assert '"level": "debug"' in logs or '"level": "info"' in logs  # there are logs to search
    files = {
        p.name: p.read_bytes().decode("utf-8", "replace")
        for p in tmp_path.iterdir()
        if p.is_file() and p.name.startswith(("ledger.db", "plan"))
    }
    assert "ledger.db" in files and "plan.jsonl" in files
    assert "email_address" in files["plan.jsonl"]  # hashes are there, in their place

    secrets = [v for k, v in env.items() if "SECRET" in k or ("TOKEN" in k and "URI" not in k)]
    secrets += sorted(access_tokens)  # what Google's token endpoint issued during the runs
    assert len(secrets) >= 5
    for needle in [*SAMPLE_PII, *secrets]:
        assert needle not in logs, f"{needle!r} leaked into the logs or command output"
        for name, text in files.items():
            assert needle not in text, f"{needle!r} leaked into {name}"
