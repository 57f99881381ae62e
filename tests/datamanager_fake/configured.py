"""A ``DataManagerDestination`` configured for a running fake (no pytest needed)."""

from __future__ import annotations

from typing import Any

from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.destinations.google_ads.datamanager.destination import DataManagerDestination

from .server import FakeDataManager


def destination_for(
    fake: FakeDataManager, name: str = "google", **overrides: Any
) -> DataManagerDestination:
    """A destination on ``fake`` (overrides: config keys, e.g. ``login_customer_id``)."""
    config = GoogleAdsConfig.model_validate(fake.destination_config(**overrides))
    return DataManagerDestination(name, config)
