"""What each Metrica API error means for convsync: the one classification table.

Metrica answers an error with ``{"errors": [{"error_type", "message", "location"}],
"code", "message"}`` (reference/yandex-metrica.md §7). The first ``error_type`` is looked
up in ``RULES``; a type not in the table falls back on the HTTP status (``BY_STATUS``),
and anything else is a rejection: an error we do not know is never retried blindly.

- ``TRANSIENT``: may pass in seconds (the per-second and parallel-request quotas, a
  server error): retried inside the run honouring ``Retry-After``, then deferred.
- ``DAILY_QUOTA``: the day's 5,000 requests (per user, or per counter) are used up and
  come back at 00:00 UTC: the rows in hand wait until then and the destination stops for
  the run — retrying before would only be refused again.
- ``UNAVAILABLE``: the token or the access is wrong: the destination stops for the run
  and its deliveries stay pending (nothing counts as an attempt).
- ``REJECT``: Metrica refused the file or a parameter: every row of it is rejected with
  Metrica's own words.

Sources: Metrica API "Описание ошибок в API" (intro/errors) and "Квотирование"
(intro/quotas), quoted in reference/yandex-metrica.md §7.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from convsync.core.errors import (
    ConvsyncError,
    DestinationUnavailable,
    PermanentError,
    TransientError,
)
from convsync.core.http import retry_after
from convsync.core.logging import REDACTED

_SHOWN_MAX = 300


class Effect(enum.Enum):
    TRANSIENT = "transient"
    DAILY_QUOTA = "daily_quota"
    UNAVAILABLE = "unavailable"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Rule:
    effect: Effect
    #: what to do, for a person; may name {destination} and {counter_id}
    hint: str | None = None


_RENEW_HINT = (
    "Issue a new OAuth token with the metrika:offline_data and metrika:read scopes for a "
    "Yandex account that can edit counter {counter_id} and put it in "
    "destinations.{destination}.token; deliveries stay pending until then."
)
_ACCESS_HINT = (
    "Check counter_id of destinations.{destination}, give the token's Yandex account edit "
    "access to counter {counter_id} (Metrica: Settings → Access) and make sure the token has "
    "the metrika:offline_data and metrika:read scopes (metrika:write covers both); "
    "deliveries stay pending until then."
)
_FILE_HINT = (
    "Metrica refused the whole file, so every row of it is rejected; after fixing the "
    "cause, `convsync retry --destination {destination}` sends them again."
)

#: error_type → rule. Keep it grouped by effect.
RULES: dict[str, Rule] = {
    # --- transient: seconds-long limits and server trouble ---
    "quota_requests_by_ip": Rule(Effect.TRANSIENT),  # 30 requests a second per IP
    "quota_parallel_requests": Rule(Effect.TRANSIENT),  # 3 requests at once per user
    "backend_error": Rule(Effect.TRANSIENT),  # 503 "try later"
    "timeout": Rule(Effect.TRANSIENT),  # 504
    # --- the day's quota: until 00:00 UTC ---
    "quota_requests_by_uid": Rule(
        Effect.DAILY_QUOTA,
        "The Metrica API allows 5,000 requests a day per Yandex account and the token's "
        "account has used them (other tools using the same account count too).",
    ),
    "quota_requests_by_counter_id": Rule(
        Effect.DAILY_QUOTA,
        "The Metrica API's daily request limit for counter {counter_id} is used up.",
    ),
    # --- unavailable: credentials and access ---
    "invalid_token": Rule(
        Effect.UNAVAILABLE, "The token is wrong, expired or revoked. " + _RENEW_HINT
    ),
    "unauthorized": Rule(
        Effect.UNAVAILABLE,
        "The request was not signed in: destinations.{destination}.token must be an OAuth "
        "token (not a password or an application id). " + _RENEW_HINT,
    ),
    "access_denied": Rule(Effect.UNAVAILABLE, _ACCESS_HINT),
    "counter_in_connect": Rule(
        Effect.UNAVAILABLE,
        "Counter {counter_id} belongs to a Yandex Connect organisation: its access is granted "
        "in Connect, not in Metrica; deliveries stay pending until the token's account has it.",
    ),
    "not_found": Rule(
        Effect.UNAVAILABLE,
        "Metrica has no counter {counter_id} (or does not show it to the token's account): "
        "check counter_id of destinations.{destination}; deliveries stay pending until then.",
    ),
    # --- reject: the file or a parameter ---
    "invalid_uploading": Rule(Effect.REJECT, _FILE_HINT),
    "invalid_parameter": Rule(Effect.REJECT, _FILE_HINT),
    "missing_parameter": Rule(Effect.REJECT, _FILE_HINT),
    "limit_exceeded": Rule(Effect.REJECT, _FILE_HINT),
    "conflict": Rule(Effect.REJECT, _FILE_HINT),
    "not_acceptable": Rule(Effect.REJECT, _FILE_HINT),
    "invalid_json": Rule(Effect.REJECT, _FILE_HINT),
}

#: an error_type not in the table (or no readable body): by HTTP status
BY_STATUS: dict[int, Rule] = {
    401: RULES["unauthorized"],
    403: RULES["access_denied"],
    404: RULES["not_found"],
    429: Rule(Effect.TRANSIENT),
}

UNKNOWN = Rule(Effect.REJECT, _FILE_HINT)


@dataclass(frozen=True, slots=True)
class ApiError:
    """An error answer, as read from the response (never holding the token)."""

    status: int
    error_type: str | None
    message: str
    retry_after: float | None = None


def parse_error(
    status: int, body: bytes, headers: Any, now: datetime, secrets: tuple[str, ...] = ()
) -> ApiError:
    """The documented error body, or the bare status when the body is not one (a proxy's
    HTML page): ``error_type`` of the first error, else of none."""
    error_type: str | None = None
    message = ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        errors = data.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else {}
        if isinstance(first, dict):
            error_type = str(first["error_type"]) if first.get("error_type") else None
            message = str(first.get("message") or "")
        message = message or str(data.get("message") or "")
    text = scrub(message or f"HTTP {status}", secrets)
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 1] + "…"
    return ApiError(status, error_type, text, retry_after(headers.get("Retry-After"), now))


def rule_for(error: ApiError) -> Rule:
    """The table's rule: by error_type, else by status (5xx: transient), else UNKNOWN."""
    if error.error_type in RULES:
        return RULES[error.error_type]
    if error.status in BY_STATUS:
        return BY_STATUS[error.status]
    if error.status >= 500:
        return RULES["backend_error"]
    return UNKNOWN


def to_exception(
    error: ApiError, *, destination: str, counter_id: int, now: datetime
) -> ConvsyncError:
    """The exception the worker understands, with a message a person can act on."""
    rule = rule_for(error)
    code = error.error_type or f"http_{error.status}"
    said = f"Metrica answered {error.status} {code}: {error.message}"
    hint = (rule.hint or "").format(destination=destination, counter_id=counter_id)
    if rule.effect is Effect.TRANSIENT:
        return TransientError(said, retry_after=error.retry_after, code=code)
    if rule.effect is Effect.DAILY_QUOTA:
        reset = next_quota_reset(now)
        return DestinationUnavailable(
            code,
            f"{said}. {hint} Deliveries wait until it resets at {reset:%Y-%m-%d %H:%M} UTC.",
            retry_at=reset,
        )
    if rule.effect is Effect.UNAVAILABLE:
        return DestinationUnavailable(code, f"{said}. {hint}")
    return PermanentError(code, f"{said}. {hint}")


def next_quota_reset(now: datetime) -> datetime:
    """The next 00:00 UTC, when Metrica resets the daily request quotas."""
    today = now.astimezone(UTC).date()
    return datetime.combine(today + timedelta(days=1), time(0), UTC)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class UploadMaybeStored(TransientError):
    """The upload request failed in a way that leaves open whether Metrica stored the
    file (a read timeout, a dropped connection, a 5xx): before sending it again, look for
    it by its comment."""
