"""A ``GoogleAdsDestination`` configured for a running fake (no pytest needed)."""

from __future__ import annotations

from typing import Any

from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.destinations.google_ads.config import GoogleAdsConfig

from .server import FakeGoogleAds


def destination_for(
    fake: FakeGoogleAds, name: str = "google", **overrides: Any
) -> GoogleAdsDestination:
    """A destination on ``fake`` (overrides: config keys, e.g. ``login_customer_id``)."""
    config = GoogleAdsConfig.model_validate(fake.destination_config(**overrides))
    return GoogleAdsDestination(name, config)
