"""What the Dockerfile promises (image contract), and that hadolint finds nothing.

Built and run for real by ``make docker-check`` (deploy/docker-check.sh), not here."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
#: the Python CI tests on (``make test`` on this project's machines: 3.11)
BASE_IMAGE = "python:3.11-slim"
LOCK = "/build/requirements/runtime.txt"
PROBE = "/opt/venv/bin/convsync-probe"


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


def test_multi_stage_on_the_python_ci_tests(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.base == BASE_IMAGE for stage in stages)
    assert stages[0].name == "builder"
    # the locks are resolved for the image's Python
    version = BASE_IMAGE.removeprefix("python:").removesuffix("-slim")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^IMAGE_PYTHON\s*:=\s*{re.escape(version)}$", makefile, re.M)


def test_dependencies_are_a_layer_of_their_own_before_src(stages: list[Stage]) -> None:
    builder = stages[0]
    order = [(name, args) for name, args in builder.instructions if name in ("COPY", "RUN")]
    first_src = next(i for i, (name, args) in enumerate(order) if name == "COPY" and "src/" in args)
    deps = next(i for i, (name, args) in enumerate(order) if name == "RUN" and LOCK in args)
    assert deps < first_src
    # only the locks are copied before it: anything else would rebuild it needlessly
    before = [args for name, args in order[:deps] if name == "COPY"]
    assert before == ["requirements/build.txt requirements/runtime.txt /build/requirements/"]


def test_installs_are_locked_with_hashes_and_without_resolution(stages: list[Stage]) -> None:
    runs = " ".join(stages[0].args("RUN"))
    installs = [part for part in runs.split("&&") if " install " in part]
    assert len(installs) == 3  # the tools, the locked dependencies, the project's wheel
    for install in installs:
        assert "--no-deps" in install and "--no-cache-dir" in install
    tools, deps, project = installs
    assert "--require-hashes" in tools and "-r /build/requirements/build.txt" in tools
    assert "--require-hashes" in deps and "--only-binary :all:" in deps and LOCK in deps
    assert "--no-index /build/dist/convsync-" in " ".join(project.split())
    # the wheel is built by the locked setuptools, checked against [build-system]
    assert "--no-build-isolation --check-build-dependencies" in " ".join(runs.split())


def test_build_system_is_pinned_to_the_build_lock() -> None:
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"][
        "requires"
    ]
    locked = dict(
        re.findall(r"^([a-z0-9_.-]+)==(\S+)", (ROOT / "requirements/build.txt").read_text(), re.M)
    )
    assert requires and all("==" in requirement for requirement in requires)
    for requirement in requires:
        name, version = requirement.split("==")
        assert locked[name.lower()] == version, requirement
    assert "pip" in locked


def test_the_runtime_venv_never_gets_pip(stages: list[Stage], final: Stage) -> None:
    runs = " ".join(stages[0].args("RUN"))
    assert "python -m venv --without-pip /opt/venv" in runs
    assert "--python /opt/venv/bin/python install" in " ".join(runs.split())
    # and the base image's own pip, setuptools and wheel are removed from the final stage
    assert "pip uninstall --yes --quiet pip setuptools wheel" in " ".join(final.args("RUN"))


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
    from convsync.config.webhooks import WebhookServerConfig

    assert final.last("EXPOSE").split() == ["8080", str(WebhookServerConfig().port)]


def test_environment_defaults(final: Stage) -> None:
    env = env_of(final)
    assert env["CONVSYNC_CONFIG"] == "/config/convsync.yaml"
    assert env["CONVSYNC_DATABASE_URL"] == "sqlite:////data/convsync.db"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_entrypoint_cmd_and_healthcheck(stages: list[Stage], final: Stage) -> None:
    assert json.loads(final.last("ENTRYPOINT")) == ["convsync"]
    assert json.loads(final.last("CMD")) == ["run"]
    healthcheck = final.last("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    # the light probe, by path (see convsync/probe.py), linked into the venv's bin/
    assert json.loads(command) == ["python", "-I", PROBE]
    assert "convsync.service.probe" in stages[0].last("RUN") and PROBE in stages[0].last("RUN")
    assert set(options.split()) == {
        "--interval=30s",
        "--timeout=5s",
        "--start-period=60s",
        "--start-interval=2s",
        "--retries=3",
    }


def test_the_header_example_mounts_what_the_image_reads(final: Stage) -> None:
    header = DOCKERFILE.read_text(encoding="utf-8").split("\nFROM ", 1)[0]
    example = " ".join(line.lstrip("# ").rstrip("\\ ") for line in header.splitlines())
    mounts = re.findall(r"-v (\S+)", example)
    config = env_of(final)["CONVSYNC_CONFIG"]
    # a folder at the config file's folder (relative paths in it resolve there), and a
    # named volume at the ledger's
    assert '"$PWD/config:/config:ro"' in mounts and config == "/config/convsync.yaml"
    assert "convsync-data:/data" in mounts
    assert "convsync.yaml" in header


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests", "bench", "*.db", ".mypy_cache", ".env", "site"} <= ignored
    # what the Dockerfile copies is not ignored
    assert not {"requirements", "src", "pyproject.toml", "README.md"} & ignored


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
