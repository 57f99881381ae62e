"""``convsync`` as a process of its own, for the tests that kill one mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CONVSYNC = str(Path(sys.executable).parent / "convsync")


def start_convsync(shop: Path, env: dict[str, str], db: str, *args: str) -> subprocess.Popen[str]:
    """``convsync --database-url DB --config SHOP/convsync.yaml ARGS`` (default
    ``sync --once``), JSON logs on stderr."""
    config = str(shop / "convsync.yaml")
    return subprocess.Popen(
        [CONVSYNC, "--database-url", db, "--config", config, *(args or ("sync", "--once"))],
        cwd=shop,
        env={**os.environ, **env, "CONVSYNC_LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when_held(
    process: subprocess.Popen[str], held: Callable[[float], bool], release: Callable[[], None]
) -> None:
    """SIGKILL ``process`` once ``held(timeout)`` says a fake holds back its answer to
    the process's upload (the platform has the rows; the ledger still says sending),
    then let the fake answer and reap the process."""
    try:
        if not held(60):
            process.kill()
            pytest.fail(f"the run never reached the fake: {process.communicate()}")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        release()
        if process.poll() is None:
            process.kill()
        process.communicate()
