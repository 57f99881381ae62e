"""Google Ads: offline click conversions and enhanced conversions for leads.

The destination class is imported on first use only: the config layer imports
``google_ads.config`` (which runs this file), and must not pay for the uploader and the
google-ads client behind it when no Google destination is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from convsync.destinations.google_ads.destination import GoogleAdsDestination

__all__ = ["GoogleAdsDestination"]


def __getattr__(name: str) -> Any:
    if name == "GoogleAdsDestination":
        from convsync.destinations.google_ads.destination import GoogleAdsDestination

        return GoogleAdsDestination
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
