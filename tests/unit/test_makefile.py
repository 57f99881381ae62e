"""The Makefile makes its venv with a Python new enough for convsync (3.11+), the first
of python3.13 … python3 on PATH or PYTHON=…, and stops with advice when there is none.
Its ``chromium`` step installs Chromium and its driver for the browser tests when they
are missing, as root or through ``sudo -n``, and says the tests will skip otherwise."""

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


# Stand-ins for the `chromium` step: `id -u` answers UID; `sudo -n true` succeeds when
# SUDO is yes and `sudo -n CMD…` runs CMD with SUDO_RAN=1; `apt-get` logs each call (with
# DEBIAN_FRONTEND and whether sudo ran it), fails `install` until an `update` when
# APT is stale and always when APT is broken, and a good install makes both files.
FAKE_ID = """#!/bin/sh
echo {uid}
"""
FAKE_SUDO = """#!/bin/sh
[ "$1" = -n ] || exit 9
shift
if [ "$1" = true ]; then [ {sudo} = yes ]; exit; fi
[ {sudo} = yes ] || exit 1
SUDO_RAN=1 exec "$@"
"""
FAKE_APT = """#!/bin/sh
echo "${{SUDO_RAN:+sudo }}${{DEBIAN_FRONTEND:-interactive}} $*" >> {log}
case "$1" in
  update) touch {log}.updated ;;
  install)
    [ {apt} = broken ] && exit 100
    [ {apt} = stale ] && [ ! -e {log}.updated ] && exit 100
    printf '#!/bin/sh\\n' > {chromium} && printf '#!/bin/sh\\n' > {driver}
    chmod +x {chromium} {driver} ;;
esac
"""
INSTALL = "noninteractive install -y --no-install-recommends chromium chromium-driver"


def _make_chromium(
    tmp_path: Path, *, uid: int = 0, sudo: str = "no", apt: str = "fresh"
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Runs `make chromium` against the stand-ins; returns it and apt-get's calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "apt.log"
    chromium, driver = tmp_path / "chromium", tmp_path / "chromedriver"
    for name, text in {
        "id": FAKE_ID.format(uid=uid),
        "sudo": FAKE_SUDO.format(sudo=sudo),
        "apt-get": FAKE_APT.format(log=log, apt=apt, chromium=chromium, driver=driver),
    }.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for name in ("env", "touch", "chmod"):
        (bin_dir / name).unlink(missing_ok=True)
        (bin_dir / name).symlink_to(shutil.which(name) or f"/usr/bin/{name}")
    done = subprocess.run(
        [
            MAKE,
            "--no-print-directory",
            "-C",
            str(ROOT),
            f"CHROMIUM={chromium}",
            f"CHROMEDRIVER={driver}",
            "chromium",
        ],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return done, calls


def test_chromium_installed_costs_no_apt_call(tmp_path: Path) -> None:
    for name in ("chromium", "chromedriver"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    done, calls = _make_chromium(tmp_path, apt="broken")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr, calls) == ("", "", [])


def test_root_installs_chromium_without_an_update_when_none_is_needed(tmp_path: Path) -> None:
    (tmp_path / "chromium").write_text("#!/bin/sh\n")  # the driver alone is missing
    (tmp_path / "chromium").chmod(0o755)
    done, calls = _make_chromium(tmp_path)
    assert done.returncode == 0, done.stderr
    assert calls == [INSTALL]
    assert (tmp_path / "chromedriver").exists()


def test_root_updates_the_package_lists_when_the_install_fails(tmp_path: Path) -> None:
    done, calls = _make_chromium(tmp_path, apt="stale")
    assert done.returncode == 0, done.stderr
    assert calls == [INSTALL, "interactive update", INSTALL]


def test_not_root_installs_through_sudo_when_it_needs_no_password(tmp_path: Path) -> None:
    done, calls = _make_chromium(tmp_path, uid=1000, sudo="yes", apt="stale")
    assert done.returncode == 0, done.stderr
    assert calls == [f"sudo {INSTALL}", "sudo interactive update", f"sudo {INSTALL}"]


def test_without_root_or_sudo_one_line_says_the_browser_tests_will_skip(tmp_path: Path) -> None:
    done, calls = _make_chromium(tmp_path, uid=1000, sudo="no")
    assert done.returncode == 0, done.stderr
    assert calls == []
    (line,) = done.stderr.splitlines()
    assert "the browser tests will be skipped" in line
    assert "apt-get install chromium chromium-driver as root" in line


def test_an_install_that_fails_as_root_fails_the_step(tmp_path: Path) -> None:
    done, calls = _make_chromium(tmp_path, apt="broken")
    assert done.returncode != 0
    assert calls == [INSTALL, "interactive update", INSTALL]
    assert "could not install chromium chromium-driver" in done.stderr
