"""pytest fixtures around the fake Google Ads API, loaded for the whole suite by
``tests/conftest.py`` (import nothing from this module in a test: pytest must import it
first, to rewrite its asserts).

``google_ads_fake`` is a started fake; ``google_ads_config`` a destination config for it
(OAuth refresh token from the fake token endpoint, a developer token); and
``google_ads_destination`` a ``GoogleAdsDestination`` on that config, closed afterwards
(not connected: tests call ``connect()``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.destinations.google_ads.config import GoogleAdsConfig

from .server import FakeGoogleAds, fake_google_ads


@pytest.fixture
def google_ads_fake() -> Iterator[FakeGoogleAds]:
    with fake_google_ads() as fake:
        yield fake


@pytest.fixture
def google_ads_config(google_ads_fake: FakeGoogleAds) -> GoogleAdsConfig:
    return GoogleAdsConfig.model_validate(google_ads_fake.destination_config())


@pytest.fixture
def google_ads_destination(google_ads_config: GoogleAdsConfig) -> Iterator[GoogleAdsDestination]:
    destination = GoogleAdsDestination("google", google_ads_config)
    yield destination
    destination.close()
