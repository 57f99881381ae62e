"""What Google Ads reports of the uploads to each conversion action: its upload summaries,
read with ``GoogleAdsService.Search`` (the official client, API v26), and the
classification of what that call raises.

The Google Ads API judges no row after an upload (``debug_enabled`` went in v21); its
offline data diagnostics are per account (``offline_conversion_upload_client_summary``)
and per conversion action (``offline_conversion_upload_conversion_action_summary``, the
one read here). What Google's docs say of the latter
(developers.google.com/google-ads/api/docs/conversions/upload-summaries and the field
reference; google-ads 34.0.0 ``v26/resources/types``):

- one resource per conversion action and upload client
  (``customers/{customer_id}/offlineConversionUploadConversionActionSummaries/{conversion_action_id}~{client}``);
  ``client`` and ``conversion_action_id`` are filterable. convsync asks for client
  ``GOOGLE_ADS_API`` and the configured actions only: uploads made in the Google Ads UI
  or through other routes are not its own;
- ``daily_summaries``: ``successful_count``, ``failed_count``, ``pending_count`` per
  ``upload_date``, over the last 7 days (``job_summaries``: the same per upload request,
  the last 7; not read);
- ``alerts``: an ``OfflineConversionError`` (a oneof of error enums) and its
  ``error_percentage`` in [0, 1.0], "generated from most recent calendar day with upload
  stats"; so is ``status`` (EXCELLENT, GOOD, NEEDS_ATTENTION, NO_RECENT_UPLOAD);
- ``last_upload_date_time``: ``yyyy-mm-dd hh:mm:ss`` in the account's time zone.

Not confirmed by the docs: the format of ``upload_date`` (read as ``yyyy-mm-dd``; a day
that does not parse is left out) and its time zone (taken to be the account's, as
``last_upload_date_time``'s).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from google.ads.googleads.errors import GoogleAdsException  # type: ignore[import-untyped]  # no py.typed at the package root
from google.api_core import exceptions as core_exceptions

from convsync.core.errors import (
    ConvsyncError,
    DestinationUnavailable,
    PermanentError,
    TransientError,
)
from convsync.destinations.google_ads import classify
from convsync.destinations.google_ads import client as google_client
from convsync.destinations.google_ads.api import (
    GoogleAdsServiceClient,
    OfflineConversionError,
    SearchGoogleAdsRequest,
)
from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.destinations.google_ads.failures import (
    ApiError,
    failure_errors,
    failure_from_trailers,
    longest_delay,
)
from convsync.destinations.google_ads.upload import ACCESS_CALL_ERRORS, TRANSIENT_CALL_ERRORS

RESOURCE = "offline_conversion_upload_conversion_action_summary"
#: the resource's fields convsync reads
FIELDS = (
    "conversion_action_id",
    "conversion_action_name",
    "status",
    "last_upload_date_time",
    "daily_summaries",
    "alerts",
)
#: the upload client of convsync's uploads (OfflineEventUploadClient)
CLIENT = "GOOGLE_ADS_API"
#: seconds the search may take; the answer is a few rows
DEFAULT_TIMEOUT = 60.0


def summary_query(action_ids: Collection[int]) -> str:
    """The GAQL query of the summaries of ``action_ids`` uploaded through the API."""
    if not action_ids:
        raise ValueError("no conversion action to ask about")
    fields = ",\n  ".join(f"{RESOURCE}.{name}" for name in FIELDS)
    ids = ", ".join(str(i) for i in sorted(set(action_ids)))
    return (
        f"SELECT\n  {fields}\nFROM {RESOURCE}\n"
        f"WHERE {RESOURCE}.client = '{CLIENT}'\n"
        f"  AND {RESOURCE}.conversion_action_id IN ({ids})"
    )


@dataclass(frozen=True, slots=True)
class DayCounts:
    """Events of one upload day as Google counted them."""

    day: date
    successful: int
    failed: int
    pending: int


@dataclass(frozen=True, slots=True)
class ActionSummary:
    """One conversion action's upload summary (client GOOGLE_ADS_API)."""

    conversion_action_id: int
    name: str
    #: Google's rating of the latest day with uploads: EXCELLENT, NEEDS_ATTENTION …
    status: str
    days: tuple[DayCounts, ...]
    #: error code (the enum name, e.g. CLICK_NOT_FOUND) → its share of the events (0…1)
    alerts: Mapping[str, float] = field(default_factory=dict)
    #: the day the alerts are of: the latest with events, else that of the last upload
    alerts_day: date | None = None


def action_summary(summary: Any) -> ActionSummary:
    """An ``OfflineConversionUploadConversionActionSummary`` as plain values."""
    days = tuple(
        DayCounts(day, int(d.successful_count), int(d.failed_count), int(d.pending_count))
        for d in summary.daily_summaries
        if (day := _day(str(d.upload_date))) is not None
    )
    alerts: dict[str, float] = {}
    for alert in summary.alerts:
        code = _error_name(alert.error)
        alerts[code] = alerts.get(code, 0.0) + float(alert.error_percentage)
    busy = [d.day for d in days if d.successful or d.failed or d.pending]
    return ActionSummary(
        conversion_action_id=int(summary.conversion_action_id),
        name=str(summary.conversion_action_name),
        status=summary.status.name,
        days=days,
        alerts=alerts,
        alerts_day=max(busy) if busy else _day(str(summary.last_upload_date_time)),
    )


def _day(text: str) -> date | None:
    """``2026-12-04`` (or the date of ``2026-12-04 10:00:00``); None if not a date."""
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _error_name(error: Any) -> str:
    """The enum name of an ``OfflineConversionError`` (the wire value: an enum value newer
    than this client is named ``field:number``)."""
    raw = OfflineConversionError.pb(error)
    which = raw.WhichOneof("error_code")
    if not which:
        return "UNSPECIFIED"
    number = int(getattr(raw, which))
    try:
        return str(OfflineConversionError.meta.fields[which].enum(number).name)
    except ValueError:
        return f"{which}:{number}"


def read_summaries(
    name: str,
    config: GoogleAdsConfig,
    action_ids: Collection[int],
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[ActionSummary]:
    """The upload summaries of ``action_ids`` in the destination's account: one Search
    with a client of its own (the deliver step's is closed by now). Raises
    ``DestinationUnavailable`` (credentials, access), ``TransientError`` or
    ``PermanentError``, classified as the upload's errors are."""
    credentials, secrets = google_client.connected(name, config, timeout=timeout)
    client = google_client.build_client(config, credentials)
    service: GoogleAdsServiceClient = client.get_service("GoogleAdsService")
    request = SearchGoogleAdsRequest(
        customer_id=config.customer_id, query=summary_query(action_ids)
    )
    try:
        # retry=None: the library's default retries for up to an hour; a failed read
        # is tried again at the next run instead
        rows = service.search(request=request, retry=None, timeout=timeout)
        return [action_summary(getattr(row, RESOURCE)) for row in rows]
    except GoogleAdsException as exc:
        status = f"{exc.error.code().name}: {exc.error.details()}"
        raise refused(failure_errors(exc.failure, ""), status, name, config) from None
    except core_exceptions.GoogleAPICallError as exc:
        addresses = google_client.Addresses.of(name, config, timeout)
        raise call_failed(exc, name, config, secrets, addresses) from None
    finally:
        service.transport.close()  # type: ignore[no-untyped-call]  # generated transport, unannotated


def refused(
    errors: Sequence[ApiError], status: str, name: str, config: GoogleAdsConfig
) -> ConvsyncError:
    """The error of a Search Google refused, by the upload's table (``classify``): its
    most severe error decides."""
    if not errors:
        return PermanentError("request_failed", f"Google Ads refused the query ({status}).")
    ruled = [(e, classify.rule_for(e.field, e.name, retry_delay=e.retry_delay)) for e in errors]
    error, rule = max(ruled, key=lambda pair: pair[1].verdict)
    code = classify.outcome_code(error.name, rule)
    message = f"Google Ads answered {error.label}"
    if rule.hint:
        hint = rule.hint.format(destination=name, customer_id=config.customer_id, goal="…")
        message += f"; {hint}"
    if rule.verdict is classify.Verdict.UNAVAILABLE:
        return DestinationUnavailable(code, message)
    if rule.verdict in (classify.Verdict.TRANSIENT, classify.Verdict.DAILY_QUOTA):
        return TransientError(message, retry_after=longest_delay([error]), code=code)
    return PermanentError(code, message)


def call_failed(
    exc: core_exceptions.GoogleAPICallError,
    name: str,
    config: GoogleAdsConfig,
    secrets: Sequence[str],
    addresses: google_client.Addresses,
) -> ConvsyncError:
    """A failed call the client did not wrap (as ``upload._call_failed``): a failure in
    the trailers, access, an access token that could not be renewed, the network."""
    trailers = getattr(exc.__cause__, "trailing_metadata", None)
    failure = failure_from_trailers(list(trailers() or ()) if callable(trailers) else [])
    status = getattr(exc.grpc_status_code, "name", None) or type(exc).__name__
    if failure is not None and failure.errors:
        return refused(failure_errors(failure, ""), status, name, config)
    details = str(exc.message or "")
    message = google_client.scrub(f"Google Ads answered {status}: {details}", secrets)
    if isinstance(exc, ACCESS_CALL_ERRORS):
        return DestinationUnavailable(
            "auth_failed",
            f"{message}; check the credentials of destinations.{name}.auth and the access "
            f"of the Google account to customer {config.customer_id}.",
        )
    unreached = addresses.describe(status, details)
    if google_client.AUTH_PLUGIN_FAILED in details:  # the access token could not be renewed
        if any(word in details for word in ("invalid_grant", "invalid_client")):
            return DestinationUnavailable("auth_failed", message)
        return DestinationUnavailable("auth_unavailable", unreached or message)
    if isinstance(exc, TRANSIENT_CALL_ERRORS):
        return TransientError(unreached or message, code=status.lower())
    return PermanentError(status.lower(), message)
