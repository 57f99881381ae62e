"""The one exception tree of convsync.

    ConvsyncError
    ├── UserError                 shown without a traceback, exit code 2
    │   └── ConfigError           every problem of a config file at once, each with its path
    ├── RunRefused                the run cannot start now (another holds the lease), exit 1
    ├── TransientError            retry with backoff inside the run (carries retry_after)
    ├── PermanentError            the whole batch fails for good (code + message)
    ├── DestinationUnavailable    stop this destination for the run, leave its rows pending
    └── RowProblem                one conversion cannot go (pre-flight or mapping)
        ├── RowRejected           permanent: code + message recorded in the ledger
        ├── RowDeferred           "later": retry_at recorded in the ledger
        └── RowSkipped            the platform has no way to take it: skipped, not an error

Classification happens at the edge (one function per transport); nothing else
catches broad exceptions except the single top-level handler in ``cli.main``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class ConvsyncError(Exception):
    """Base of every error convsync raises on purpose."""


class UserError(ConvsyncError):
    """Something the user can fix (config, paths, flags); shown without a traceback."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem of a config file: where (dotted path, optional line) and what."""

    path: str
    message: str
    line: int | None = None

    def render(self, file: str | None = None) -> str:
        where = f"{file}:" if file else ""
        if self.line is not None:
            where += f"{self.line}: "
        elif file:
            where += " "
        subject = f"{self.path}: " if self.path else ""
        return f"{where}{subject}{self.message}"


class ConfigError(UserError):
    """A config file (or runtime setting) is invalid; carries every problem found."""

    def __init__(self, problems: list[ConfigProblem], file: str | None = None) -> None:
        self.problems = problems
        self.file = file
        count = len(problems)
        head = f"{file}: " if file else ""
        lines = [f"{head}{count} problem{'s' if count != 1 else ''} in the configuration:"]
        lines += [f"  - {p.render(file)}" for p in problems]
        super().__init__("\n".join(lines))


class RunRefused(ConvsyncError):
    """A run cannot start now, e.g. another process is running the sync; no traceback."""


class TransientError(ConvsyncError):
    """A failure that may pass: 429, 5xx, timeouts, TRANSIENT_ERROR, quota per second."""

    def __init__(self, message: str, retry_after: float | None = None, code: str = "transient"):
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code


class PermanentError(ConvsyncError):
    """The platform refused a whole batch for good; every row of it is rejected."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class DestinationUnavailable(ConvsyncError):
    """Authentication, permission, or an upload path not available: skip the destination
    for this run and leave its deliveries pending (nothing is lost, nothing counts as an
    attempt).

    With ``retry_at`` (a daily quota is used up), the rows of the batch in hand are
    deferred to that moment instead, and the destination stops for the run.
    """

    def __init__(self, code: str, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_at = retry_at


class RowProblem(ConvsyncError):
    """One row cannot be sent as it is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RowRejected(RowProblem):
    """Permanent: the row breaks a platform rule or has unusable data."""


class RowSkipped(RowProblem):
    """The platform has no way to take this row (a retraction the API cannot make): the
    delivery is ``skipped`` with code and message, which is not a failure of the data."""


class RowDeferred(RowProblem):
    """Not yet: the platform will take the row at ``retry_at``."""

    def __init__(self, code: str, message: str, retry_at: datetime) -> None:
        super().__init__(code, message)
        self.retry_at = retry_at
