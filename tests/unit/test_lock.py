"""requirements/runtime.txt, the image's lock (``make lock``): every dependency of
pyproject's [project.dependencies] pinned, each pin with its hashes, and every package
the pins need pinned too (the Dockerfile installs it with --no-deps)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
#: the image's environment markers (no extras)
IMAGE = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "extra": "",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) of every requirement in a hashed lock file."""
    found: dict[str, tuple[str, list[str]]] = {}
    text = lock.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"not an exact pin: {line}"
        found[canonical(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return found


def project_dependencies() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies: list[str] = pyproject["project"]["dependencies"]
    return dependencies


@pytest.mark.parametrize("name", ["runtime.txt", "build.txt"])
def test_every_pin_is_exact_and_hashed(name: str) -> None:
    locked = pins(LOCKS / name)
    assert locked
    for package, (_version, hashes) in locked.items():
        assert hashes, f"{package} has no hash"


def test_the_runtime_lock_covers_every_project_dependency() -> None:
    """Each dependency locked at a version pyproject allows: one added or narrowed
    without `make lock` fails here, not in the image."""
    locked = pins(LOCKS / "runtime.txt")
    for dependency in map(Requirement, project_dependencies()):
        name = canonical(dependency.name)
        assert name in locked, f"{dependency} is not in the lock: make lock"
        version = locked[name][0]
        assert dependency.specifier.contains(version), f"{dependency}: {version} locked"
        # psycopg[binary]: what the extra adds (needed with it, not without) is locked too
        for extra in dependency.extras:
            for need in map(Requirement, requires(dependency.name) or []):
                marker = need.marker
                if marker and marker.evaluate({**IMAGE, "extra": extra}) > marker.evaluate(IMAGE):
                    assert canonical(need.name) in locked, f"{dependency} needs {need}"


def test_the_lock_is_closed_under_the_installed_dependencies() -> None:
    """Each locked package's own (Linux) dependencies are locked too, as far as this
    environment has the packages installed to tell."""
    locked = pins(LOCKS / "runtime.txt")
    for package in locked:
        try:
            needs = requires(package) or []
        except PackageNotFoundError:
            continue
        for need in map(Requirement, needs):
            if need.marker is not None and not need.marker.evaluate(IMAGE):
                continue
            assert canonical(need.name) in locked, f"{package} needs {need}: make lock"


def test_made_by_make_lock_for_the_images_python() -> None:
    for name in ("runtime.txt", "build.txt"):
        assert "#    make lock" in (LOCKS / name).read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--universal --python-version $(IMAGE_PYTHON)" in makefile
    assert "--generate-hashes" in makefile
