"""Logging: structlog for convsync, stdlib loggers of libraries routed through it.

Call ``configure_logging`` once, in ``main()``. Every line, ours or a library's, goes
through one stdlib handler whose ``ProcessorFormatter`` runs the same processors:
context variables (``bind_contextvars(run_id=...)``), level, logger name, ISO UTC
``ts``, exception text, redaction, then one renderer: a console renderer on a
terminal, JSON lines otherwise. Logs go to stderr; stdout is for command output.

Redaction (DESIGN.md, "Nothing sensitive leaks") happens twice: on the event dict
before rendering (credential-named keys, ``SecretStr``, registered secrets and
e-mails inside strings, nested containers), and on the rendered line (registered
secrets and e-mails that only appear once an object is ``repr``-ed).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TextIO
from urllib.parse import quote

import structlog
from pydantic import SecretBytes, SecretStr
from structlog.types import EventDict, Processor, WrappedLogger

from convsync.core.errors import UserError

__all__ = [
    "REDACTED",
    "configure_logging",
    "get_logger",
    "logs_written_to",
    "redact",
    "register_secret",
    "scrub_text",
]

REDACTED = "**********"
EMAIL_MARK = "<email>"

FORMATS = ("auto", "json", "console")

#: libraries that log per request or per statement at INFO/DEBUG
NOISY_LOGGERS = (
    "google", "grpc", "sqlalchemy", "apscheduler", "alembic", "urllib3", "waitress",
)  # fmt: skip

_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words and numbers
_MAX_DEPTH = 8  # nesting deeper than this is rendered as (redacted) text
_LEADING_KEYS = ("ts", "level", "logger", "event")

_CREDENTIAL_KEY = re.compile(
    r"(?:^|_)(?:token|access_token|refresh_token|developer_token|secret|client_secret"
    r"|password|passwd|authorization|api_key|apikey|private_key|cookie)$"
)
# Letters-only top-level label: "postgres@127.0.0.1" in a database URL is not masked.
# "%40" catches addresses percent-encoded inside URLs.
_EMAIL = re.compile(r"[\w.%+-]+(?:@|%40)(?:[\w-]+\.)+[^\W\d_]{2,}", re.IGNORECASE)

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str | SecretStr) -> None:
    """Mask ``value`` wherever it appears inside any logged string from now on.

    Values shorter than 6 characters are ignored: masking them would hide ordinary
    words and numbers. The percent-encoded form is registered too (tokens in URLs).
    """
    global _secret_pattern  # one registry per process; the pattern is swapped atomically
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if len(text) < _MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secrets.update({text, quote(text, safe="")})
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def scrub_text(text: str) -> str:
    """``text`` with every registered secret and e-mail address masked."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(EMAIL_MARK, text)
    return text


@lru_cache(maxsize=1024)
def _is_credential_key(key: str) -> bool:
    return _CREDENTIAL_KEY.search(key.lower().replace("-", "_")) is not None


def _redact_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if depth >= _MAX_DEPTH:
        return scrub_text(repr(value))
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_credential_key(str(k)) else _redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, depth + 1) for v in value]
    return value  # rendered by repr(); the line is scrubbed again after rendering


def redact(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask credentials, secrets and e-mails in an event dict.

    Returns a new dict (the caller's nested values are not modified) that starts with
    ``ts``, ``level``, ``logger``, ``event`` so JSON lines read left to right.
    """
    out: EventDict = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    out.update(event_dict)
    for key, value in out.items():
        out[key] = REDACTED if _is_credential_key(key) else _redact_value(value, 0)
    return out


class _ScrubbedRenderer:
    """Wraps the final renderer: masks what only appears once objects are rendered."""

    def __init__(self, renderer: Callable[[WrappedLogger, str, EventDict], str | bytes]):
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        line = self._renderer(logger, method_name, event_dict)
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        return scrub_text(line)


class _ConvsyncHandler(logging.StreamHandler[TextIO]):
    """Our root handler; a marker class so a second configure replaces the first."""


def _use_console(fmt: str, stream: TextIO) -> bool:
    if fmt == "auto":
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())
    return fmt == "console"


def _renderer(console: bool, stream: TextIO) -> _ScrubbedRenderer:
    if not console:
        return _ScrubbedRenderer(structlog.processors.JSONRenderer(ensure_ascii=False))
    isatty = getattr(stream, "isatty", None)
    colors = bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
    # plain_traceback: rich would wrap long lines (splitting a secret past the
    # scrubber) and print frame locals, which may hold credentials.
    return _ScrubbedRenderer(
        structlog.dev.ConsoleRenderer(
            colors=colors,
            timestamp_key="ts",
            exception_formatter=structlog.dev.plain_traceback,
        )
    )


def _parse_level(level: str) -> int:
    value = logging.getLevelNamesMapping().get(level.strip().upper())
    if value is None:
        raise UserError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return value


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set up structlog and the root stdlib logger; safe to call again (replaces).

    ``fmt``: ``auto`` (console on a terminal, JSON lines otherwise), ``json`` or
    ``console``. ``stream`` defaults to ``sys.stderr``. Colours follow the terminal
    and are off when ``NO_COLOR`` is set.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown log format {fmt!r}: use one of {', '.join(FORMATS)}")
    numeric_level = _parse_level(level)
    out = stream if stream is not None else sys.stderr

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger made at import time must follow a later configure.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            _renderer(_use_console(fmt, out), out),
        ],
    )
    handler = _ConvsyncHandler(out)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ConvsyncHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)
    for name in NOISY_LOGGERS:
        library = logging.getLogger(name)
        library.setLevel(max(logging.WARNING, numeric_level))
        # google-auth / google-api-core switch off propagation of the "google" logger the
        # first time they log while it is unconfigured, which would hide every google-ads
        # line (and its redaction) from this handler for the rest of the process.
        library.propagate = True
    # "Task queue depth is N" on every request that waits for a free thread: under a
    # burst of webhooks that is the design working, not a problem worth a line each
    logging.getLogger("waitress.queue").setLevel(max(logging.ERROR, numeric_level))
    # a library's warning (google-api-core's notice that a Python version nears its end)
    # is a log line like any other, not a file path and source line on stderr
    logging.captureWarnings(True)


@contextmanager
def logs_written_to(stream: TextIO) -> Iterator[None]:
    """Every line goes to ``stream`` for the block: the console of a live progress
    display, which prints it above the display instead of through it."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, _ConvsyncHandler)]
    before = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, old in zip(handlers, before, strict=True):
            handler.setStream(old)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (the stdlib logger it writes through)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
