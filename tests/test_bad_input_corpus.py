"""No raw library message reaches a user (issue 13, item 7).

Every case of the corpus (``tests/bad_inputs/cases.py``) runs through the real command —
``convsync.cli.app.main``, its one error handler included — in-process, and the cases marked
so through the installed executable too. Its output must hold the case's fragment (the
place and the value at fault), no library dump (a pydantic link, "Input should be", a
traceback, an exception's repr), no secret, and every message line a location.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from convsync.cli.app import main
from convsync.core import sealing
from tests.bad_inputs.cases import CASES, ENV, Case

CONVSYNC = str(Path(sys.executable).parent / "convsync")
COMMANDS = {"validate": ("validate",), "sync": ("sync", "--once", "--dry-run")}

#: what only a library says: its links, its wording, its dumps
RAW = re.compile(
    r"pydantic\.dev|Traceback|Input should be|For further information|validation error for"
    r"|\[type=|input_value=|codec can't|<unicode string>|<class '|Can't load plugin"
    r"|\b[A-Z]\w*(?:Error|Exception)[(:]|\(\w+\.\w*Error\)"
    r"|while (?:scanning|parsing|constructing)|unacceptable character"
)
#: a place: a file (and line), a config path, a setting's flag or variable
LOCATION = re.compile(
    r"[\w.-]+\.(?:ya?ml|csv|db)\b"
    r"|\b(?:sources|destinations|goals|schedule|delivery|webhooks)\.\w"
    r"|(?:^|\s)--[a-z][a-z-]+|\bCONVSYNC_[A-Z_]+"
)


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


def _setup(case: Case, root: Path) -> tuple[list[str], dict[str, str]]:
    """The case's files in ``root``; the arguments and environment of its command."""
    config = root / "convsync.yaml"
    if isinstance(case.config, bytes):
        config.write_bytes(case.config)
    elif case.config is not None:
        config.write_text(case.config, encoding="utf-8")
    for name, data in case.files.items():
        (root / name).write_bytes(data)
    env = {
        **ENV,
        "CONVSYNC_DATABASE_URL": f"sqlite:///{root / 'ledger.db'}",
        "CONVSYNC_LOG_FORMAT": "json",
        **case.env,
    }
    return ["--config", str(config), *case.flags], env


Runner = Callable[[list[str], dict[str, str]], Outcome]


@pytest.fixture
def run_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Runner]:
    """``main()`` as the executable runs it; the logging and the sealing key it sets
    up are put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog_config = structlog.get_config()
    monkeypatch.setattr(sealing, "_state", sealing._state)

    def run(args: list[str], env: dict[str, str]) -> Outcome:
        for name in [n for n in os.environ if n.startswith("CONVSYNC_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", ["convsync", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    yield run
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    structlog.configure(**structlog_config)


def _run_executable(args: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CONVSYNC_")}
    done = subprocess.run(
        [CONVSYNC, *args], cwd=cwd, env={**full, **env}, capture_output=True, text=True, timeout=60
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def _check(case: Case, outcome: Outcome) -> None:
    flat = " ".join(outcome.text.split())  # a table may wrap a long message
    assert outcome.code != 0, f"{case.name}: bad input accepted\n{outcome.text}"
    assert " ".join(case.expect.split()) in flat, (
        f"{case.name}: expected {case.expect!r} in\n{outcome.text}"
    )
    raw = RAW.search(outcome.text)
    assert raw is None, f"{case.name}: a library's own words ({raw.group(0)!r}):\n{outcome.text}"
    if case.secret is not None:
        assert case.secret not in outcome.text, f"{case.name}: the secret is shown"
    for line in outcome.stderr.splitlines():
        if line.startswith(("convsync: ", "  - ")) and not line.rstrip().endswith(":"):
            assert LOCATION.search(line), f"{case.name}: a message without a place: {line!r}"


def _params() -> Iterator[object]:
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        for command in case.commands:
            yield pytest.param(case, command, id=f"{case.name}-{command}", marks=marks)


def test_the_corpus_is_large_and_each_case_named_once() -> None:
    names = [case.name for case in CASES]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert all(case.expect.strip() for case in CASES)


@pytest.mark.parametrize(("case", "command"), list(_params()))
def test_a_bad_input_is_told_where_and_what(
    case: Case, command: str, tmp_path: Path, run_in_process: Runner
) -> None:
    args, env = _setup(case, tmp_path)
    _check(case, run_in_process([*args, *COMMANDS[command]], env))


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case.name) for case in CASES if case.subprocess],
)
def test_the_installed_command_says_the_same(case: Case, tmp_path: Path) -> None:
    args, env = _setup(case, tmp_path)
    for command in case.commands:
        _check(case, _run_executable([*args, *COMMANDS[command]], env, tmp_path))
