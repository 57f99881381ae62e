"""The upload summaries (``offline_conversion_upload_conversion_action_summary``) read by
the real ``google-ads`` client from the fake Google Ads API over TLS: the query it sends,
what it reads, access through a manager, and every failure classified."""

from __future__ import annotations

from datetime import date
from typing import Any

import grpc
import pytest
from google.ads.googleads.errors import GoogleAdsException  # type: ignore[import-untyped]  # no py.typed

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.destinations.google_ads import client as google_client
from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.destinations.google_ads.summaries import (
    RESOURCE,
    ActionSummary,
    DayCounts,
    read_summaries,
)
from tests.google_ads_fake import (
    CUSTOMER_ID,
    Err,
    FakeGoogleAds,
    RequestFault,
    internal,
    invalid_argument,
    permission_denied,
    quota_exhausted,
    unauthenticated,
    unavailable,
)

MANAGER = "9999999999"


def _config(fake: FakeGoogleAds, **overrides: Any) -> GoogleAdsConfig:
    return GoogleAdsConfig.model_validate(fake.destination_config(**overrides))


def test_the_client_reads_the_api_summaries_of_the_configured_actions(fake: FakeGoogleAds) -> None:
    fake.add_summary(
        555,
        days={"2026-11-21": (3, 0, 4), "2026-11-20": (8, 2, 1)},
        alerts={"CLICK_NOT_FOUND": 0.25, "EXPIRED_EVENT": 0.05},
        status="NEEDS_ATTENTION",
        name="Offline purchase",
    )
    # uploads of the same action through the Google Ads UI are not convsync's
    fake.add_summary(555, days={"2026-11-21": (50, 0, 0)}, client="GOOGLE_ADS_WEB_CLIENT")
    fake.add_summary(777, days={"2026-11-21": (1, 1, 1)})  # an action no goal uses
    found = read_summaries("google", _config(fake), [555, 666])
    assert found == [
        ActionSummary(
            555,
            "Offline purchase",
            "NEEDS_ATTENTION",
            (DayCounts(date(2026, 11, 21), 3, 0, 4), DayCounts(date(2026, 11, 20), 8, 2, 1)),
            {"CLICK_NOT_FOUND": 0.25, "EXPIRED_EVENT": 0.05},
            date(2026, 11, 21),
        )
    ]
    [search] = fake.searches
    assert search.request.customer_id == CUSTOMER_ID
    assert search.query is not None and search.query.resource == RESOURCE
    assert set(search.query.fields) >= {
        "conversion_action_id", "daily_summaries", "alerts", "status", "last_upload_date_time",
    }  # fmt: skip
    assert search.query.where == {
        "client": ("GOOGLE_ADS_API",),
        "conversion_action_id": ("555", "666"),
    }
    assert search.metadata["authorization"].startswith("Bearer ")
    assert "login-customer-id" not in search.metadata
    assert fake.calls == []  # no upload


def test_a_client_account_is_read_through_its_manager(fake: FakeGoogleAds) -> None:
    fake.customers[CUSTOMER_ID] = MANAGER
    fake.add_summary(555, days={"2026-11-21": (1, 0, 0)})
    with pytest.raises(DestinationUnavailable) as caught:
        read_summaries("google", _config(fake), [555])
    assert caught.value.code == "permission_denied"
    assert "login_customer_id of destinations.google" in caught.value.message
    [found] = read_summaries("google", _config(fake, login_customer_id=MANAGER), [555])
    assert found.days == (DayCounts(date(2026, 11, 21), 1, 0, 0),)
    assert fake.searches[-1].metadata["login-customer-id"] == MANAGER


@pytest.mark.parametrize(
    ("fault", "raised", "code"),
    [
        (permission_denied(), DestinationUnavailable, "permission_denied"),
        (unauthenticated(), DestinationUnavailable, "auth_failed"),
        (unavailable(), TransientError, "unavailable"),
        (internal(), TransientError, "internal_error"),  # unwrapped, failure in the trailers
        (internal(with_failure=False), TransientError, "internal"),
        (quota_exhausted(daily=True), TransientError, "daily_quota_exhausted"),
        (invalid_argument(Err("query_error", "UNRECOGNIZED_FIELD")), PermanentError,
         "unrecognized_field"),
        # no failure in the trailers: the client leaves it unwrapped
        (RequestFault(grpc.StatusCode.INVALID_ARGUMENT), PermanentError, "invalid_argument"),
    ],
)  # fmt: skip
def test_every_failure_of_the_read_is_classified(
    fake: FakeGoogleAds, fault: RequestFault, raised: type[Exception], code: str
) -> None:
    fake.script_search(fault)
    with pytest.raises(raised) as caught:
        read_summaries("google", _config(fake), [555], timeout=10)
    assert getattr(caught.value, "code", None) == code
    assert caught.value.__cause__ is None
    assert len(fake.searches) == 1


def test_a_revoked_token_fails_before_the_search(fake: FakeGoogleAds) -> None:
    config = _config(fake)
    fake.oauth.revoke(config.auth.refresh_token.get_secret_value())  # type: ignore[union-attr]
    with pytest.raises(DestinationUnavailable) as caught:
        read_summaries("google", config, [555])
    assert caught.value.code == "auth_failed"
    assert fake.searches == []


def test_an_unreachable_endpoint_says_where(fake: FakeGoogleAds) -> None:
    config = _config(fake, endpoint="127.0.0.1:9")  # nothing listens there
    with pytest.raises(TransientError) as caught:
        read_summaries("google", config, [555], timeout=5)
    assert "destinations.google.endpoint" in str(caught.value)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("SELECT campaign.id FROM campaign", "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE"),
        (f"SELECT {RESOURCE}.nothing FROM {RESOURCE}", "UNRECOGNIZED_FIELD"),
        (
            f"SELECT {RESOURCE}.alerts FROM {RESOURCE} WHERE {RESOURCE}.daily_summaries = 1",
            "PROHIBITED_FIELD_IN_WHERE_CLAUSE",
        ),
        (
            f"SELECT {RESOURCE}.alerts FROM {RESOURCE} WHERE {RESOURCE}.conversion_action_id IN ()",
            "PROHIBITED_EMPTY_LIST_IN_CONDITION",
        ),
    ],
)
def test_the_fake_refuses_a_query_google_would_refuse(
    fake: FakeGoogleAds, query: str, error: str
) -> None:
    config = _config(fake)
    credentials, _ = google_client.connected("google", config)
    service = google_client.build_client(config, credentials).get_service("GoogleAdsService")
    try:
        with pytest.raises(GoogleAdsException) as caught:
            list(service.search(customer_id=CUSTOMER_ID, query=query, retry=None, timeout=10))
    finally:
        service.transport.close()
    [failure] = caught.value.failure.errors
    assert failure.error_code.query_error.name == error
