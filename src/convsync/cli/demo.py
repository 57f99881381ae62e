"""``convsync demo``: the demo's files in a folder, one dry run of them, the summary as
``sync --dry-run`` prints it, then the check against what the demo is meant to show."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from rich.console import Console

from convsync.cli import views
from convsync.config.loader import load_config
from convsync.config.models import LoadedConfig
from convsync.config.settings import Settings
from convsync.core.errors import UserError
from convsync.demo.outcome import MEANT, DemoOutcome, differences, verdict
from convsync.demo.samples import CONFIG_NAME, SAMPLE_FOLDER, write_config, write_samples
from convsync.sync.summary import RunSummary

#: The example's credentials: a dry run reads them and sends nothing. Always these,
#: never the caller's environment, so the demo shows the same whoever runs it.
PLACEHOLDER_CREDENTIALS = {
    "GOOGLE_ADS_CLIENT_ID": "demo",
    "GOOGLE_ADS_CLIENT_SECRET": "demo-secret",
    "GOOGLE_ADS_REFRESH_TOKEN": "demo-refresh",
    "METRICA_TOKEN": "demo-token",
    "VK_ID": "demo",
    "VK_SECRET": "demo-secret",
}
LEDGER_NAME = "demo-ledger.db"


def run_demo(
    settings: Settings,
    output: Path,
    keep: Path | None,
    console: Console,
    meant: DemoOutcome = MEANT,
) -> int:
    """The demo's exit code: 0 when the dry run shows what the demo is ``meant`` to, else
    1 (with what differs on stderr)."""
    if str(output) == "-":
        console = Console(stderr=True)  # stdout carries only the plan's JSON lines
    with _folder(keep) as folder:
        summary = dry_run(prepare(folder), settings, output)
    views.print_run_summary(console, summary, output)
    problems = differences(summary, meant)
    if problems:
        print(
            "convsync demo: the dry run is not what the demo is meant to show:",
            *(f"  {problem}" for problem in problems),
            sep="\n",
            file=sys.stderr,
        )
        return 1
    console.print(verdict(meant), soft_wrap=True)
    if keep is not None:
        credentials = " ".join(f"{name}={value}" for name, value in PLACEHOLDER_CREDENTIALS.items())
        console.print(
            f"The config and its samples stay in {keep}; to run them yourself:\n"
            f"  export {credentials}\n"
            f"  convsync --config {keep / CONFIG_NAME} sync --once --dry-run",
            soft_wrap=True,
        )
    return 0


def prepare(folder: Path) -> LoadedConfig:
    """Write the example config into ``folder``, with the samples dated relative to the
    config's today; the config, loaded with the placeholder credentials."""
    loaded = load_config(write_config(folder), env=PLACEHOLDER_CREDENTIALS)
    write_samples(folder, datetime.now(loaded.app.zone).date())
    return loaded


def dry_run(loaded: LoadedConfig, settings: Settings, output: Path) -> RunSummary:
    """One dry run of ``loaded`` as ``sync --once --dry-run`` makes it, with a ledger of
    its own beside the config (a dry run opens it read-only: it is never created)."""
    from convsync.service.runner import run_once

    ledger = loaded.base_dir / LEDGER_NAME
    demo_settings = settings.model_copy(
        update={"config": loaded.path, "database_url": f"sqlite:///{ledger}"}
    )
    return run_once(demo_settings, loaded, True, output, (), ())


@contextmanager
def _folder(keep: Path | None) -> Iterator[Path]:
    """A temporary folder, or ``keep`` when it is new or empty (made if need be)."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="convsync-demo-") as temporary:
            yield Path(temporary)
        return
    if keep.exists() and not keep.is_dir():
        raise UserError(f"--keep {keep}: not a folder")
    try:
        keep.mkdir(parents=True, exist_ok=True)
        empty = not any(keep.iterdir())
    except OSError as exc:
        raise UserError(f"--keep {keep}: {exc.strerror or exc}") from None
    if not empty:
        raise UserError(
            f"--keep {keep}: the folder is not empty; name a new or empty one "
            f"(the demo writes {CONFIG_NAME} and {SAMPLE_FOLDER}/ there)"
        )
    yield keep.resolve()
