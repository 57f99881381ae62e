"""Fixtures of the Google Ads tests: the fake Google Ads API (``fake``) and a destination
connected to it at the tests' fixed clock (``google``)."""

from __future__ import annotations

import pytest

from convsync.destinations.google_ads import GoogleAdsDestination
from tests.google_ads_fake import FakeGoogleAds
from tests.integration.google_ads.rows import NOW


@pytest.fixture
def fake(google_ads_fake: FakeGoogleAds) -> FakeGoogleAds:
    return google_ads_fake


@pytest.fixture
def google(google_ads_destination: GoogleAdsDestination) -> GoogleAdsDestination:
    google_ads_destination.clock = lambda: NOW
    google_ads_destination.connect()
    return google_ads_destination
