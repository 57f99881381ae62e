"""What each Data Manager API error means for convsync: the one classification table.

The API fails fast: one invalid event fails the whole request, and nothing of it is
recorded. So a refusal is read in three ways:

- violations that name events (``events.events[i]…``) reject those rows, each with
  Google's reason and a hint naming the config key to check; the other rows are sent
  again at once, without them;
- violations that name a request destination reject the rows of that conversion action,
  or — for reasons about the whole account — stop the destination for the run;
- anything else is a status of the whole call, decided by ``call_error`` below:
  retried in the run (``TransientError``), the destination stopped for the run
  (``DestinationUnavailable``; a used-up daily quota with the time it resets), or, for
  an ``INVALID_ARGUMENT`` that names no row, ``None``: the rows at fault are found by
  halving the request.

Sources: reference/google-data-manager.md; Google's errors guide (retry UNAVAILABLE,
DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, ABORTED) and limits page (``quota_limit`` in the
ErrorInfo metadata tells the per-minute quota from the daily one); google-ads-datamanager
0.9 ``ErrorReason``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from convsync.core.errors import (
    ConvsyncError,
    DestinationUnavailable,
    PermanentError,
    TransientError,
)
from convsync.destinations.google_ads.classify import is_rate_limit, next_quota_reset
from convsync.destinations.google_ads.datamanager.failures import CallFailure, Violation

if TYPE_CHECKING:
    from convsync.destinations.google_ads.client import Addresses

DAILY_QUOTA_CODE = "daily_quota_exhausted"
#: grpc's text when the credentials could not renew the access token for a call (as in
#: ``google_ads.client``, which this module does not import: it is the network side)
AUTH_PLUGIN_FAILED = "Getting metadata from plugin failed"
#: the wait after a per-minute quota refusal without a RetryInfo: the next minute
RATE_LIMIT_WAIT = 60.0

_TRANSIENT_STATUSES = frozenset(
    {"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN", "ABORTED", "CANCELLED"}
)

_CLICK_ID_HINT = (
    "check how sources.{source} captures the click id (its gclid field, or the landing-page "
    "URL it is parsed from)."
)
_CONTACT_HINT = (
    "convsync sends e-mails and phones SHA-256 hashed in hex; check the email and phone "
    "fields of sources.{source}."
)
_VARIABLE_HINT = (
    "check custom_variables in goals.{goal}.send.{destination}: with api: data_manager a "
    "variable is named by its name, and it must exist and be enabled in Google Ads."
)
_ACTION_HINT = (
    "check conversion_action in goals.{goal}.send.{destination}: it must be an offline "
    "(import) conversion action owned by customer {customer_id}."
)
_TIME_HINT = "check the time field and the timezone of sources.{source}."
_VALUE_HINT = "check value and currency of goals.{goal} (and the currency field of the source)."
_EC4L_HINT = (
    "turn on enhanced conversions for leads and accept the customer data terms in Google Ads "
    "(Goals → Settings), or remove enhanced_for_leads from goals.{goal}.send.{destination}."
)
_ACCOUNT_HINT = (
    "customer_id of destinations.{destination} must be the account that owns the conversion "
    "actions (the Data Manager API takes neither its manager nor a sub-account), and "
    "login_customer_id the manager the credentials reach it through, if any."
)
_SIGNALS_HINT = (
    "check the google_session_attributes, ip_address and user_agent fields of sources.{source} "
    "(or set send_ip_address: false on destinations.{destination})."
)

#: ErrorReason → the hint of a field violation with it (checked before the path's hint)
REASON_HINTS: dict[str, str] = {
    "INVALID_CONVERSION_ACTION_ID": _ACTION_HINT,
    "INVALID_CONVERSION_ACTION_TYPE": _ACTION_HINT,
    "CONVERSION_ACTION_TOO_RECENTLY_CREATED": (
        "the conversion action of goals.{goal}.send.{destination} was created moments ago: "
        "convsync sends these rows again with `convsync retry` once Google has it."
    ),
    "INVALID_CURRENCY_CODE": _VALUE_HINT,
    "INVALID_HEX_ENCODING": _CONTACT_HINT,
    "INVALID_SHA256_FORMAT": _CONTACT_HINT,
    "EVENT_TIME_INVALID": _TIME_HINT,
    "DESTINATION_ACCOUNT_NOT_ENABLED_ENHANCED_CONVERSIONS_FOR_LEADS": _EC4L_HINT,
    "DESTINATION_ACCOUNT_ENHANCED_CONVERSIONS_TERMS_NOT_SIGNED": _EC4L_HINT,
    "DESTINATION_ACCOUNT_DATA_POLICY_PROHIBITS_ENHANCED_CONVERSIONS": _EC4L_HINT,
    "CUSTOM_VARIABLE_NOT_FOUND": _VARIABLE_HINT,
    "CUSTOM_VARIABLE_NOT_ENABLED": _VARIABLE_HINT,
    "CUSTOM_VARIABLE_VALUE_CONTAINS_PII": _VARIABLE_HINT,
    "INVALID_AD_IDENTIFIER_FOR_ACCOUNT": _ACCOUNT_HINT,
    "EVENT_SOURCE_AND_DESTINATION_MISMATCH": (
        "check event_source of goals.{goal}.send.{destination}: the conversion action does "
        "not take events from that source."
    ),
}

#: field path (within the event or destination) → hint, the first prefix that matches
PATH_HINTS: tuple[tuple[str, str], ...] = (
    ("ad_identifiers.gclid", _CLICK_ID_HINT),
    ("ad_identifiers.gbraid", _CLICK_ID_HINT),
    ("ad_identifiers.wbraid", _CLICK_ID_HINT),
    ("ad_identifiers", _SIGNALS_HINT),
    ("user_data", _CONTACT_HINT),
    ("custom_variables", _VARIABLE_HINT),
    ("currency", _VALUE_HINT),
    ("conversion_value", _VALUE_HINT),
    ("event_timestamp", _TIME_HINT),
    ("transaction_id", "check order_id of goals.{goal} (every conversion is sent with one)."),
    ("consent", "check the ad_user_data_consent field of sources.{source}."),
    ("event_source", "check event_source of goals.{goal}.send.{destination}."),
    ("product_destination_id", _ACTION_HINT),
    ("operating_account", _ACCOUNT_HINT),
    ("login_account", _ACCOUNT_HINT),
)

#: violation reasons about the whole account: the destination stops for the run (its rows
#: stay pending and go once the account is fixed) instead of rejecting rows
ACCOUNT_REASONS = frozenset(
    {
        "TERMS_AND_CONDITIONS_NOT_SIGNED",
        "PERMISSION_DENIED",
        "NOT_ALLOWLISTED",
        "OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH",
        "DESTINATION_ACCOUNT_TYPE_MISMATCH",
    }
)


def hint_for(violation: Violation) -> str | None:
    hint = REASON_HINTS.get(violation.reason)
    if hint is not None:
        return hint
    path = violation.path
    return next((h for prefix, h in PATH_HINTS if path.startswith(prefix)), None)


def violation_code(violation: Violation) -> str:
    """The ledger code of a rejected row: Google's reason, lower-cased."""
    return (violation.reason or "invalid_argument").lower()


def call_error(
    failure: CallFailure,
    *,
    destination: str,
    customer_id: str,
    now: datetime,
    addresses: Addresses | None = None,
) -> ConvsyncError | None:
    """The error a failed call means when it names no row; ``None`` for an
    INVALID_ARGUMENT that names none either (the caller isolates the rows at fault).

    A call that failed in the network (no connection to ``addresses.api``, no answer in
    time, or no new access token from ``addresses.token``) is classified as its status
    says, in the plain words of ``convsync.core.network``."""
    status = failure.status
    said = f"the Data Manager API answered {failure.label.rstrip('.')}"
    if AUTH_PLUGIN_FAILED in failure.message:
        # the access token expired during the run and could not be renewed
        refused = any(e in failure.message for e in ("invalid_grant", "invalid_client"))
        unreached = (
            None if refused or addresses is None else addresses.describe(status, failure.message)
        )
        if unreached is not None:
            return DestinationUnavailable("auth_unavailable", unreached)
        return DestinationUnavailable(
            "auth_failed" if refused else "auth_unavailable",
            f"{said}; "
            + (
                f"the credentials of destinations.{destination}.auth were revoked or are "
                "wrong: issue a new refresh token (`convsync auth google`) or key."
                if refused
                else "deliveries stay pending until the next run."
            ),
        )
    if failure.request_id:
        said += f" (request id {failure.request_id})"
    if status == "RESOURCE_EXHAUSTED":
        return _quota_error(failure, said, now)
    if status in _TRANSIENT_STATUSES:
        unreached = addresses.describe(status, failure.message) if addresses else None
        return TransientError(
            unreached or said, retry_after=failure.retry_after, code=status.lower()
        )
    if status == "UNAUTHENTICATED":
        return DestinationUnavailable(
            "auth_failed",
            f"{said}; check the credentials of destinations.{destination}.auth (a refresh "
            "token can be issued again with `convsync auth google`).",
        )
    if status == "PERMISSION_DENIED":
        return _access_error(failure, said, destination, customer_id)
    reasons = {failure.reason, *(v.reason for v in failure.violations)}
    if status in {"FAILED_PRECONDITION", "NOT_FOUND"} or reasons & ACCOUNT_REASONS:
        return DestinationUnavailable(
            status.lower(),
            f"{said}; {_ACCOUNT_HINT.format(destination=destination)} Deliveries stay "
            "pending until it is fixed.",
        )
    if status == "INVALID_ARGUMENT":
        return None
    return PermanentError(status.lower(), f"{said}.")  # ``said`` ends without a stop


def _quota_error(failure: CallFailure, said: str, now: datetime) -> ConvsyncError:
    limit = failure.metadata.get("quota_limit", "")
    delay = None if failure.retry_after is None else timedelta(seconds=failure.retry_after)
    daily = "PerDay" in limit or (
        "PerMinute" not in limit and delay is not None and not is_rate_limit(delay)
    )
    if daily:
        reset = next_quota_reset(now)
        return DestinationUnavailable(
            DAILY_QUOTA_CODE,
            f"{said}. The Cloud project's daily quota of Data Manager API requests is used "
            f"up; deliveries wait until it resets at {reset:%Y-%m-%d %H:%M} UTC (midnight "
            "Pacific Time).",
            retry_at=reset,
        )
    return TransientError(
        f"{said} (the per-minute request quota of the Cloud project)",
        retry_after=failure.retry_after if failure.retry_after is not None else RATE_LIMIT_WAIT,
        code="rate_limited",
    )


def _access_error(
    failure: CallFailure, said: str, destination: str, customer_id: str
) -> DestinationUnavailable:
    if failure.reason == "SERVICE_DISABLED":
        url = failure.metadata.get("activationUrl", "")
        where = f" ({url})" if url else ""
        return DestinationUnavailable(
            "api_disabled",
            f"{said}; enable the Data Manager API in the Google Cloud project of the "
            f"credentials{where}, wait a few minutes, and run again.",
        )
    if failure.reason == "ACCESS_TOKEN_SCOPE_INSUFFICIENT":
        return DestinationUnavailable(
            "auth_scope",
            f"{said}; the credentials of destinations.{destination}.auth were issued without "
            "the https://www.googleapis.com/auth/datamanager scope: issue a refresh token with "
            "`convsync auth google` (or grant the scope to the service account).",
        )
    return DestinationUnavailable(
        "permission_denied",
        f"{said}; the Google account (or service account) of destinations.{destination}.auth "
        f"needs access to customer {customer_id} in Google Ads — "
        f"{_ACCOUNT_HINT.format(destination=destination)}",
    )
