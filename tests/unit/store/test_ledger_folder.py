"""A SQLite ledger in a folder its user may not write (in Docker: a host folder mounted
at /data, owned by root, run as uid 10001) is refused at once, naming the folder, the
user and the fix, rather than failing at the first write with SQLite's "unable to open
database file". Checked for real: a folder of another user's, or, for root (who may write
anywhere), in a child process without root's capabilities (``setpriv``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from convsync.core.errors import UserError
from convsync.store import engine

NOBODY = 65534
ROOT = os.geteuid() == 0
OPEN = """
import sys
from convsync.core.errors import UserError
from convsync.store.engine import create, parse_url
try:
    create(parse_url(sys.argv[1]), read_only=sys.argv[2] == "ro").dispose()
except UserError as exc:
    print(exc)
    sys.exit(2)
"""


@pytest.fixture
def locked_folder() -> Iterator[Path]:
    """A folder this test may enter but not write: nobody's, mode 755 (as root), or its
    own with mode 555."""
    folder = Path(tempfile.mkdtemp(prefix="convsync-ledger-"))
    if ROOT:
        os.chown(folder, NOBODY, NOBODY)
        folder.chmod(0o755)
    else:
        folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def open_ledger(url: str, mode: str) -> tuple[int, str]:
    if ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip(
                "setpriv (util-linux) is needed to open a ledger as root without root's powers"
            )
        done = subprocess.run(
            [
                setpriv,
                "--bounding-set=-all",
                "--inh-caps=-all",
                sys.executable,
                "-c",
                OPEN,
                url,
                mode,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.returncode, done.stdout.strip() or done.stderr
    try:
        engine.create(engine.parse_url(url), read_only=mode == "ro").dispose()
    except UserError as exc:
        return 2, str(exc)
    return 0, ""


def test_a_folder_it_cannot_write_is_named_with_the_fix(locked_folder: Path) -> None:
    code, message = open_ledger(f"sqlite:///{locked_folder}/convsync.db", "rw")
    uid = os.getuid()
    assert code == 2, message
    assert message.startswith(f"{locked_folder} is not writable by uid {uid}, ")
    assert f"chown -R {uid} the host folder mounted at {locked_folder}" in message
    assert "named volume" in message


def test_a_ledger_file_it_cannot_write_is_named(locked_folder: Path) -> None:
    ledger = locked_folder / "convsync.db"
    locked_folder.chmod(0o777)
    ledger.touch()
    if ROOT:
        os.chown(ledger, NOBODY, NOBODY)
    ledger.chmod(0o444)
    code, message = open_ledger(f"sqlite:///{locked_folder}/convsync.db", "rw")
    assert code == 2, message
    assert message.startswith(f"{locked_folder / 'convsync.db'} is not writable by uid ")


def test_reading_a_missing_ledger_needs_no_write_access(locked_folder: Path) -> None:
    # read-only commands (report, runs) on a ledger not made yet answer from an empty one
    assert open_ledger(f"sqlite:///{locked_folder}/convsync.db", "ro") == (0, "")
