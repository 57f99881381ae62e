"""The Makefile makes its venv with a Python new enough for convsync (3.11+), the first
of python3.13 … python3 on PATH or PYTHON=…, and stops with advice when there is none."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make") or "make"  # found before PATH is narrowed to the stand-ins
ADVICE = "— install python3.11 or set PYTHON=/path/to/python3.11"

# A stand-in interpreter: answers the Makefile's version check as a Python of VERSION
# would, and `-m venv DIR` with a DIR/bin/python that accepts anything (pip included).
FAKE_PYTHON = """#!/bin/sh
PATH=/usr/bin:/bin
case "$1 $2" in
  "-c "*version_info*) [ {new_enough} = yes ] ;;
  "-c "*python_version*) echo {version} ;;
  "-m venv") mkdir -p "$3/bin" && printf '#!/bin/sh\\n' > "$3/bin/python" \\
             && chmod +x "$3/bin/python" ;;
  *) exit 9 ;;
esac
"""


def _python(folder: Path, name: str, version: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    new_enough = "yes" if tuple(map(int, version.split("."))) >= (3, 11) else "no"
    path.write_text(FAKE_PYTHON.format(new_enough=new_enough, version=version))
    path.chmod(0o755)
    return path


def _make_venv(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    venv = tmp_path / "venv"
    return subprocess.run(
        [
            MAKE,
            "--no-print-directory",
            "-C",
            str(ROOT),
            f"VENV={venv}",
            *args,
            f"{venv}/bin/python",
        ],
        env={"PATH": str(tmp_path / "bin")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_old_python3_alone_stops_with_advice(tmp_path: Path) -> None:
    _python(tmp_path / "bin", "python3", "3.9.2")
    done = _make_venv(tmp_path)
    assert done.returncode != 0
    assert f"convsync needs Python 3.11 or newer; found: python3 3.9.2 {ADVICE}" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_the_first_new_enough_python_makes_the_venv(tmp_path: Path) -> None:
    _python(tmp_path / "bin", "python3", "3.9.2")
    _python(tmp_path / "bin", "python3.12", "3.12.1")
    _python(tmp_path / "bin", "python3.11", "3.11.7")
    done = _make_venv(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"python3.12 -m venv {tmp_path / 'venv'}")
    assert (tmp_path / "venv" / "bin" / "python").exists()


def test_python_given_is_used_and_checked(tmp_path: Path) -> None:
    _python(tmp_path / "bin", "python3.12", "3.12.1")
    old = _python(tmp_path / "elsewhere", "python", "3.10.4")
    refused = _make_venv(tmp_path, f"PYTHON={old}")
    assert refused.returncode != 0
    assert f"found: {old} 3.10.4 {ADVICE}" in refused.stderr

    new = _python(tmp_path / "elsewhere", "python-new", "3.13.0")
    done = _make_venv(tmp_path, f"PYTHON={new}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{new} -m venv")


def test_no_python_at_all_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    done = _make_venv(tmp_path)
    assert done.returncode != 0
    assert f"convsync needs Python 3.11 or newer; found: none {ADVICE}" in done.stderr
