"""A fixture for tests that configure logging: the process's logging as it was after."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from convsync.core.logging import NOISY_LOGGERS


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lib_level in noisy.items():
        logging.getLogger(name).setLevel(lib_level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
