"""The Google Ads API's upload summaries without the network: the query convsync sends,
a summary read into plain values, its rows for the ledger, and how a refused read is
classified."""

from __future__ import annotations

from datetime import date

import pytest
from google.ads.googleads.v26.resources.types import (
    offline_conversion_upload_client_summary as client_summary,
)
from google.ads.googleads.v26.resources.types.offline_conversion_upload_conversion_action_summary import (
    OfflineConversionUploadConversionActionSummary,
)

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget
from convsync.destinations.google_ads.failures import ApiError
from convsync.destinations.google_ads.summaries import (
    FIELDS,
    RESOURCE,
    ActionSummary,
    DayCounts,
    action_summary,
    refused,
    summary_query,
)
from convsync.store.platform_reports import PlatformDay
from convsync.sync.platform_summaries import goals_by_action, platform_days

CONFIG = GoogleAdsConfig.model_validate(
    {"type": "google_ads", "api": "google_ads_api", "customer_id": "123-456-7890"}
)


def test_the_query_asks_for_the_api_uploads_of_the_given_actions() -> None:
    query = summary_query([777, 555, 777])
    assert query.startswith("SELECT\n  " + f"{RESOURCE}.conversion_action_id,")
    assert all(f"{RESOURCE}.{name}" in query for name in FIELDS)
    assert f"FROM {RESOURCE}\n" in query
    assert query.endswith(
        f"WHERE {RESOURCE}.client = 'GOOGLE_ADS_API'\n"
        f"  AND {RESOURCE}.conversion_action_id IN (555, 777)"
    )
    with pytest.raises(ValueError, match="no conversion action"):
        summary_query([])


def _summary(**fields: object) -> OfflineConversionUploadConversionActionSummary:
    return OfflineConversionUploadConversionActionSummary(
        conversion_action_id=555, conversion_action_name="Purchase", status="GOOD", **fields
    )


def test_a_summary_reads_as_days_and_alerts_of_the_latest_day_with_events() -> None:
    daily = [
        client_summary.OfflineConversionSummary(
            upload_date=day, successful_count=s, failed_count=f, pending_count=p
        )
        for day, s, f, p in (
            ("2026-11-22", 0, 0, 0),  # nothing that day: alerts are of a day with uploads
            ("2026-11-21", 3, 1, 2),
            ("2026-11-20 00:00:00", 8, 2, 0),  # a time after the date is ignored
            ("20.11.2026", 1, 1, 1),  # not a date: left out
        )
    ]
    alert = client_summary.OfflineConversionAlert
    error = client_summary.OfflineConversionError
    summary = action_summary(
        _summary(
            daily_summaries=daily,
            alerts=[
                alert(error=error(conversion_upload_error="CLICK_NOT_FOUND"), error_percentage=0.1),
                alert(
                    error=error(conversion_upload_error="CLICK_NOT_FOUND"), error_percentage=0.05
                ),
                alert(error=error(date_error="INVALID_FIELD_VALUES_IN_DATE"), error_percentage=0.2),
            ],
        )
    )
    assert summary == ActionSummary(
        555,
        "Purchase",
        "GOOD",
        (
            DayCounts(date(2026, 11, 22), 0, 0, 0),
            DayCounts(date(2026, 11, 21), 3, 1, 2),
            DayCounts(date(2026, 11, 20), 8, 2, 0),
        ),
        {"CLICK_NOT_FOUND": pytest.approx(0.15), "INVALID_FIELD_VALUES_IN_DATE": 0.2},
        date(2026, 11, 21),
    )


def test_without_daily_counts_the_alerts_are_of_the_last_upload() -> None:
    summary = action_summary(_summary(last_upload_date_time="2026-11-19 23:10:00"))
    assert (summary.days, summary.alerts, summary.alerts_day) == ((), {}, date(2026, 11, 19))


def test_an_error_newer_than_the_client_is_named_by_its_number() -> None:
    raw = OfflineConversionUploadConversionActionSummary.pb(_summary())
    alert = raw.alerts.add()
    alert.error.conversion_upload_error = 9999
    alert.error_percentage = 0.5
    summary = action_summary(OfflineConversionUploadConversionActionSummary.wrap(raw))
    assert summary.alerts == {"conversion_upload_error:9999": 0.5}


def test_the_ledger_rows_map_actions_back_to_every_goal_that_sends_to_them() -> None:
    targets = {
        "purchase": {"google": GoogleAdsTarget(conversion_action=555), "vk": object()},
        "repeat": {"google": GoogleAdsTarget(conversion_action=555)},
        "lead": {"google": GoogleAdsTarget(conversion_action=777)},
        "call": {"other": GoogleAdsTarget(conversion_action=888)},
    }
    goals = goals_by_action(targets, "google")  # type: ignore[arg-type]
    assert goals == {555: ["purchase", "repeat"], 777: ["lead"]}
    days = (DayCounts(date(2026, 11, 21), 3, 1, 2), DayCounts(date(2026, 11, 20), 8, 2, 0))
    found = [
        ActionSummary(555, "P", "GOOD", days, {"CLICK_NOT_FOUND": 0.25}, date(2026, 11, 21)),
        ActionSummary(999, "Not ours", "GOOD", days),
    ]
    alerts = {"CLICK_NOT_FOUND": 0.25}
    assert platform_days(found, goals) == [
        PlatformDay("purchase", 555, date(2026, 11, 21), 3, 1, 2, alerts),
        PlatformDay("purchase", 555, date(2026, 11, 20), 8, 2, 0, None),
        PlatformDay("repeat", 555, date(2026, 11, 21), 3, 1, 2, alerts),
        PlatformDay("repeat", 555, date(2026, 11, 20), 8, 2, 0, None),
    ]


@pytest.mark.parametrize(
    ("error", "raised", "code"),
    [
        (ApiError("authorization_error", "USER_PERMISSION_DENIED", "No."), DestinationUnavailable,
         "permission_denied"),
        (ApiError("authentication_error", "OAUTH_TOKEN_REVOKED", "No."), DestinationUnavailable,
         "auth_failed"),
        (ApiError("internal_error", "TRANSIENT_ERROR", "Later."), TransientError, "transient_error"),
        (ApiError("quota_error", "RESOURCE_EXHAUSTED", "Quota."), TransientError,
         "daily_quota_exhausted"),
        (ApiError("query_error", "UNRECOGNIZED_FIELD", "Bad field."), PermanentError,
         "unrecognized_field"),
    ],
)  # fmt: skip
def test_a_refused_read_is_classified_by_the_upload_table(
    error: ApiError, raised: type[Exception], code: str
) -> None:
    found = refused([error], "INVALID_ARGUMENT", "google", CONFIG)
    assert isinstance(found, raised)
    assert getattr(found, "code", None) == code
    assert error.message in str(found)


def test_the_most_severe_error_decides_and_its_hint_names_the_destination() -> None:
    errors = [
        ApiError("internal_error", "TRANSIENT_ERROR", "Later."),
        ApiError("authorization_error", "USER_PERMISSION_DENIED", "No access."),
    ]
    found = refused(errors, "PERMISSION_DENIED", "google", CONFIG)
    assert isinstance(found, DestinationUnavailable)
    assert "login_customer_id of destinations.google" in found.message
    assert "customer 1234567890" in found.message
    nothing = refused([], "INVALID_ARGUMENT: ?", "google", CONFIG)
    assert isinstance(nothing, PermanentError) and nothing.code == "request_failed"
