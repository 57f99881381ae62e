"""``convsync`` as a process of its own, for the tests that kill one mid-batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
