"""What each Google Ads API error means for convsync: the one classification table.

Every error Google reports (per row in a partial failure, or for the whole request) is
looked up by its ``error_code`` oneof field and enum name, e.g.
``("conversion_upload_error", "TOO_RECENT_EVENT")``. A key not in the table is looked up
as ``(field, "*")``, then falls back to ``REJECT``: an error we do not know is never
retried blindly and never taken for a success.

When one row has several errors, the most severe verdict decides its outcome
(``REJECT`` > ``DEFER`` > ``TRANSIENT`` > ``DELIVERED``); every error still goes into the
ledger message. ``UNAVAILABLE`` (credentials, access) stops the destination for the run.

Sources: google-ads 34.0.0 ``v26/errors/types/*`` (enum texts), Google's error-type and
partial-failure guides, reference/google-ads.md §5-§6.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: Google resets daily operation quotas at midnight Pacific Time.
QUOTA_DAY_ZONE = ZoneInfo("America/Los_Angeles")
#: a RESOURCE_EXHAUSTED that asks for a wait this short is a rate limit, not the day's quota
RATE_LIMIT_MAX_DELAY = timedelta(minutes=15)


class Verdict(enum.IntEnum):
    """What an error means for its row; a higher value wins when a row has several."""

    DELIVERED = 0  # Google has the conversion already (or says it is fine to ignore)
    TRANSIENT = 1  # may pass on a retry in this run
    DAILY_QUOTA = 2  # the day's operations are used up: later, when the quota resets
    DEFER = 3  # Google says "later": retry at a computed time
    REJECT = 4  # permanent: the data or the configuration must change
    UNAVAILABLE = 5  # credentials or access: stop the destination for this run


class DeferFrom(enum.Enum):
    NOW = "now"
    CONVERSION = "conversion"  # counted from the conversion's own time


@dataclass(frozen=True, slots=True)
class Rule:
    verdict: Verdict
    #: the outcome code; None: the enum name lower-cased (``too_recent_event``)
    code: str | None = None
    #: DEFER: how long to wait, and from when
    wait: timedelta | None = None
    wait_from: DeferFrom = DeferFrom.NOW
    #: one sentence on what to do; may name {goal}, {destination} and {customer_id}
    hint: str | None = None


def _reject(hint: str | None = None) -> Rule:
    return Rule(Verdict.REJECT, hint=hint)


def _defer(wait: timedelta, wait_from: DeferFrom = DeferFrom.NOW) -> Rule:
    return Rule(Verdict.DEFER, wait=wait, wait_from=wait_from)


_TRANSIENT = Rule(Verdict.TRANSIENT)
_SIX_HOURS = timedelta(hours=6)
_UPLOAD = "conversion_upload_error"
_ADJUST = "conversion_adjustment_upload_error"

_ACTION_HINT = (
    "check conversion_action in goals.{goal}.send.{destination}: it must be an import "
    "action of customer {customer_id}."
)
_CUSTOMER_HINT = (
    "upload to the account that owns the conversion actions (its conversion customer; the "
    "manager under cross-account conversion tracking): check customer_id of "
    "destinations.{destination}."
)
_TERMS_HINT = "accept the customer data terms in Google Ads (Goals → Settings)."
_EC4L_HINT = (
    "turn on enhanced conversions for leads in Google Ads (Goals → Settings), or remove "
    "enhanced_for_leads from goals.{goal}.send.{destination}."
)
_VARIABLE_HINT = (
    "check custom_variables in goals.{goal}.send.{destination}: the variable must exist and "
    "be enabled in Google Ads, and its value must not hold personal data."
)
_CLICK_ID_HINT = "check how the source captures the click id from the landing-page URL."
_AUTH_HINT = (
    "Google Ads refused the credentials of destinations.{destination}.auth: re-issue the "
    "refresh token (or the service account key) and check that the Google account still "
    "has access to customer {customer_id}."
)
_ACCESS_HINT = (
    "the Google account has no access to customer {customer_id}: if access goes through a "
    "manager account, set login_customer_id of destinations.{destination} to the manager's "
    "id; otherwise grant the account access in Google Ads."
)
_PROJECT_HINT = (
    "the Google Cloud project of the OAuth client or service account is not approved for "
    "the Google Ads API in production: apply for Basic or Standard access."
)

#: (error_code oneof field, enum name) → rule. Keep it sorted by verdict, then field.
RULES: dict[tuple[str, str], Rule] = {
    # --- delivered: Google already has it, or says the warning can be ignored ---
    (_UPLOAD, "ORDER_ID_ALREADY_IN_USE"): Rule(Verdict.DELIVERED, "duplicate"),
    (_UPLOAD, "CLICK_CONVERSION_ALREADY_EXISTS"): Rule(Verdict.DELIVERED, "duplicate"),
    # Only for rows matched by hashed e-mail/phone (EC4L); see ``row_rule``.
    (_UPLOAD, "CLICK_NOT_FOUND"): Rule(Verdict.DELIVERED, "click_not_found"),
    (_ADJUST, "CONVERSION_ALREADY_RETRACTED"): Rule(Verdict.DELIVERED, "duplicate"),
    (_ADJUST, "RESTATEMENT_ALREADY_EXISTS"): Rule(Verdict.DELIVERED, "duplicate"),
    (_ADJUST, "MORE_RECENT_RESTATEMENT_FOUND"): Rule(Verdict.DELIVERED, "superseded"),
    # --- transient: retry with backoff inside the run ---
    ("internal_error", "INTERNAL_ERROR"): _TRANSIENT,
    ("internal_error", "TRANSIENT_ERROR"): _TRANSIENT,
    ("internal_error", "DEADLINE_EXCEEDED"): _TRANSIENT,
    ("database_error", "CONCURRENT_MODIFICATION"): _TRANSIENT,
    ("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED"): _TRANSIENT,
    ("quota_error", "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION"): _TRANSIENT,
    # --- defer: Google says "later" ---
    (_UPLOAD, "TOO_RECENT_EVENT"): _defer(_SIX_HOURS),
    (_UPLOAD, "TOO_RECENT_CALL"): _defer(_SIX_HOURS),
    (_UPLOAD, "TOO_RECENT_CONVERSION_ACTION"): _defer(_SIX_HOURS),
    (_ADJUST, "TOO_RECENT_CONVERSION_ACTION"): _defer(_SIX_HOURS),
    (_ADJUST, "TOO_RECENT_CONVERSION"): _defer(timedelta(hours=24), DeferFrom.CONVERSION),
    # Often the conversion is not processed yet (uploads take hours to appear); the
    # 54-day pre-flight window bounds the waiting.
    (_ADJUST, "CONVERSION_NOT_FOUND"): _defer(_SIX_HOURS),
    # --- the day's quota: stop until it resets (see ``is_rate_limit`` for the exception) ---
    ("quota_error", "RESOURCE_EXHAUSTED"): Rule(Verdict.DAILY_QUOTA, "daily_quota_exhausted"),
    # --- reject: the data must change ---
    (_UPLOAD, "UNPARSEABLE_GCLID"): _reject(_CLICK_ID_HINT),
    (_UPLOAD, "UNPARSEABLE_GBRAID"): _reject(_CLICK_ID_HINT),
    (_UPLOAD, "UNPARSEABLE_WBRAID"): _reject(_CLICK_ID_HINT),
    (_UPLOAD, "EXPIRED_EVENT"): _reject(
        "the click is older than the conversion action's click-through lookback window."
    ),
    (_UPLOAD, "CONVERSION_PRECEDES_EVENT"): _reject(
        "the conversion time is before the click: check the source's time zone."
    ),
    (_UPLOAD, "EVENT_NOT_FOUND"): _reject(
        "the click id does not belong to a Google Ads click of this account."
    ),
    (_UPLOAD, "GBRAID_WBRAID_BOTH_SET"): _reject(),
    (_UPLOAD, "INVALID_USER_IDENTIFIER"): _reject(
        "e-mails and phones must be normalised and SHA-256 hashed."
    ),
    (_UPLOAD, "ORDER_ID_CONTAINS_PII"): _reject("use an order id without personal data."),
    (_UPLOAD, "CUSTOM_VARIABLE_NOT_ENABLED"): _reject(_VARIABLE_HINT),
    (_UPLOAD, "CUSTOM_VARIABLE_VALUE_CONTAINS_PII"): _reject(_VARIABLE_HINT),
    (_UPLOAD, "DUPLICATE_ORDER_ID"): _reject("two conversions of one request share the order id."),
    (_UPLOAD, "DUPLICATE_CLICK_CONVERSION_IN_REQUEST"): _reject(
        "two conversions of one request share the click and conversion time."
    ),
    (_ADJUST, "CONVERSION_EXPIRED"): _reject(
        "Google Ads adjusts conversions only up to 54 days old."
    ),
    (_ADJUST, "GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET"): _reject(),
    (_ADJUST, "ADJUSTMENT_PRECEDES_CONVERSION"): _reject(),
    # --- reject: the configuration must change ---
    (_UPLOAD, "NO_CONVERSION_ACTION_FOUND"): _reject(_ACTION_HINT),
    (_UPLOAD, "INVALID_CONVERSION_ACTION_TYPE"): _reject(_ACTION_HINT),
    (_UPLOAD, "INVALID_CUSTOMER_FOR_CLICK"): _reject(_CUSTOMER_HINT),
    (_UPLOAD, "UNAUTHORIZED_CUSTOMER"): _reject(_CUSTOMER_HINT),
    (_UPLOAD, "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS"): _reject(_TERMS_HINT),
    (_UPLOAD, "CUSTOMER_NOT_ENABLED_ENHANCED_CONVERSIONS_FOR_LEADS"): _reject(_EC4L_HINT),
    (_ADJUST, "NO_CONVERSION_ACTION_FOUND"): _reject(_ACTION_HINT),
    (_ADJUST, "INVALID_CONVERSION_ACTION_TYPE"): _reject(_ACTION_HINT),
    (_ADJUST, "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS"): _reject(_TERMS_HINT),
    # Client bugs: convsync never sends more than max_batch (2,000) rows.
    (_UPLOAD, "TOO_MANY_CONVERSIONS_IN_REQUEST"): _reject(),
    (_ADJUST, "TOO_MANY_ADJUSTMENTS_IN_REQUEST"): _reject(),
    ("database_error", "REQUEST_TOO_LARGE"): _reject(),
    # --- unavailable: stop the destination for this run, rows stay pending ---
    ("authentication_error", "*"): Rule(Verdict.UNAVAILABLE, "auth_failed", hint=_AUTH_HINT),
    ("authorization_error", "*"): Rule(Verdict.UNAVAILABLE, "permission_denied", hint=_ACCESS_HINT),
    ("authorization_error", "CUSTOMER_NOT_ENABLED"): Rule(
        Verdict.UNAVAILABLE,
        "customer_not_enabled",
        hint=(
            "customer {customer_id} is cancelled or not fully set up: check customer_id of "
            "destinations.{destination}."
        ),
    ),
    ("authorization_error", "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION"): Rule(
        Verdict.UNAVAILABLE, "project_not_approved", hint=_PROJECT_HINT
    ),
    ("authorization_error", "DEVELOPER_TOKEN_NOT_APPROVED"): Rule(
        Verdict.UNAVAILABLE, "project_not_approved", hint=_PROJECT_HINT
    ),
    ("authorization_error", "INVALID_LOGIN_CUSTOMER_ID_SERVING_CUSTOMER_ID_COMBINATION"): Rule(
        Verdict.UNAVAILABLE,
        "permission_denied",
        hint=(
            "login_customer_id of destinations.{destination} is not a manager of customer "
            "{customer_id}: set it to the manager account the access goes through."
        ),
    ),
    ("header_error", "*"): Rule(
        Verdict.UNAVAILABLE,
        "invalid_header",
        hint="check login_customer_id of destinations.{destination} (10 digits, a manager).",
    ),
    ("quota_error", "ACCESS_PROHIBITED"): Rule(
        Verdict.UNAVAILABLE, "access_prohibited", hint=_PROJECT_HINT
    ),
    # Since 2026-06-15 offline conversion imports (EC4L included) are closed to developer
    # tokens that did not import between 2025-12-17 and 2026-06-15; the route left open
    # is the Data Manager API. Per row or for the request, it stops the destination.
    ("not_allowlisted_error", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"): Rule(
        Verdict.UNAVAILABLE,
        "not_allowlisted",
        hint=(
            "the Google Ads API takes offline conversion imports only from developer tokens "
            "that imported before 2026-06-15; switch destinations.{destination} to api: "
            "data_manager (the Data Manager API, open to every user: see the README's "
            "Google section), and the pending conversions go there."
        ),
    ),
}

#: anything else: rejected with its own name as the code, never delivered
UNKNOWN = _reject()


_RATE_LIMITED = Rule(Verdict.TRANSIENT)
_CLICK_NOT_FOUND = (_UPLOAD, "CLICK_NOT_FOUND")


def lookup(field: str, name: str) -> Rule:
    """The table's rule: the exact key, else the field's ``*`` rule, else UNKNOWN."""
    return RULES.get((field, name)) or RULES.get((field, "*")) or UNKNOWN


def rule_for(
    field: str,
    name: str,
    *,
    retry_delay: timedelta | None = None,
    matched_by_identifiers: bool = True,
) -> Rule:
    """The rule of one error in its context: the table, with two refinements.

    - ``RESOURCE_EXHAUSTED`` that asks for a wait of at most 15 minutes is a rate limit
      (transient), not the day's quota.
    - ``CLICK_NOT_FOUND`` is the warning Google says to ignore only for a row sent with
      hashed e-mail/phone (EC4L); for any other row it is an unknown error, so rejected.
    """
    rule = lookup(field, name)
    if rule.verdict is Verdict.DAILY_QUOTA and is_rate_limit(retry_delay):
        return _RATE_LIMITED
    if (field, name) == _CLICK_NOT_FOUND and not matched_by_identifiers:
        return UNKNOWN
    return rule


def outcome_code(name: str, rule: Rule) -> str:
    """The ledger code: the rule's, else the enum name lower-cased (``too_recent_event``)."""
    return rule.code or name.lower()


def is_rate_limit(retry_delay: timedelta | None) -> bool:
    return retry_delay is not None and retry_delay <= RATE_LIMIT_MAX_DELAY


def next_quota_reset(now: datetime) -> datetime:
    """The next midnight in Pacific Time (when Google resets daily quotas), in UTC."""
    local = now.astimezone(QUOTA_DAY_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), QUOTA_DAY_ZONE)
    return midnight.astimezone(UTC)


def defer_until(rule: Rule, now: datetime, conversion_time: datetime) -> datetime:
    """When a DEFER row is due again, in UTC (never earlier than a minute from now)."""
    assert rule.wait is not None, "a DEFER rule says how long to wait"
    start = conversion_time if rule.wait_from is DeferFrom.CONVERSION else now
    # a few minutes' margin past Google's own limit, so clock skew cannot bounce it again
    margin = timedelta(minutes=5) if rule.wait_from is DeferFrom.CONVERSION else timedelta(0)
    return max(start + rule.wait + margin, now + timedelta(minutes=1)).astimezone(UTC)
