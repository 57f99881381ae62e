"""What the Dockerfile promises (image contract), and that hadolint finds nothing."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BASE_IMAGE = "python:3.12-slim"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.args(instruction)
        assert found, f"no {instruction} in stage {self.name or self.base}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their (INSTRUCTION, arguments) pairs; continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments inside a continued RUN are dropped by Docker too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"

    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        args = args.strip()
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{instruction} before FROM"
            stages[-1].instructions.append((instruction, args))
    return stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.args("ENV"):
        for pair in shlex.split(args):
            key, sep, value = pair.partition("=")
            assert sep, f"ENV without '=': {pair}"
            env[key] = value
    return env


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_multi_stage_on_python_312_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.base == BASE_IMAGE for stage in stages)
    assert stages[0].name == "builder"


def test_builder_installs_the_project_into_opt_venv(stages: list[Stage]) -> None:
    builder = stages[0]
    runs = " ".join(builder.args("RUN"))
    assert "python -m venv /opt/venv" in runs
    assert "pip install --no-cache-dir ." in runs
    copied = " ".join(builder.args("COPY"))
    for path in ("pyproject.toml", "README.md", "src/"):
        assert path in copied


def test_final_stage_copies_only_the_venv(final: Stage) -> None:
    assert final.args("COPY") == ["--from=builder /opt/venv /opt/venv"]
    assert not final.args("ADD")


def test_runs_as_fixed_non_root_user(final: Stage) -> None:
    user = final.last("USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert user == "10001:10001"
    runs = " ".join(final.args("RUN"))
    assert "--gid 10001 convsync" in runs
    assert "--uid 10001" in runs


def test_data_volume_and_workdir(final: Stage) -> None:
    assert json.loads(final.last("VOLUME")) == ["/data"]
    assert final.last("WORKDIR") == "/data"
    # the health endpoint's and the webhook endpoint's default ports
    from convsync.webhooks.config import WebhookServerConfig

    assert final.last("EXPOSE").split() == ["8080", str(WebhookServerConfig().port)]


def test_environment_defaults(final: Stage) -> None:
    env = env_of(final)
    assert env["CONVSYNC_CONFIG"] == "/config/convsync.yaml"
    assert env["CONVSYNC_DATABASE_URL"] == "sqlite:////data/convsync.db"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_entrypoint_cmd_and_healthcheck(final: Stage) -> None:
    assert json.loads(final.last("ENTRYPOINT")) == ["convsync"]
    assert json.loads(final.last("CMD")) == ["run"]
    healthcheck = final.last("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert json.loads(command) == ["convsync", "health"]
    assert set(options.split()) == {"--interval=30s", "--timeout=5s", "--start-period=30s"}


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests", "bench", "*.db", ".mypy_cache"} <= ignored


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
