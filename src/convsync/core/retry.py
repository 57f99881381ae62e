"""The one retry policy factory (tenacity): transient errors only, ``Retry-After``
honoured, exponential backoff otherwise. Unknown exceptions are never retried."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    nap,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from convsync.core.errors import TransientError


class _WaitHonouringRetryAfter:
    """Wait what the platform asked (``retry_after``), else back off exponentially."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.maximum = maximum
        self.fallback = wait_exponential(multiplier=initial, max=maximum)

    def __call__(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.maximum)
        return float(self.fallback(state))


def transient_retry(
    *,
    attempts: int,
    initial_wait: float = 5.0,
    max_wait: float = 60.0,
    sleep: Callable[[float], None] | None = None,
) -> Retrying:
    """A ``Retrying`` that makes ``attempts`` tries in all and re-raises the last error."""
    return Retrying(
        stop=stop_after_attempt(max(attempts, 1)),
        wait=_WaitHonouringRetryAfter(initial_wait, max_wait),
        retry=retry_if_exception_type(TransientError),
        reraise=True,
        sleep=sleep if sleep is not None else nap.sleep,
    )
