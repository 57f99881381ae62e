"""VK Ads offline events through the pixel's server-to-server tracker.

The destination class is imported on first use only, like every destination: the config
layer imports ``vk_ads.config`` (which runs this file) and must not load the uploader
when no VK destination is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from convsync.destinations.vk_ads.destination import VkAdsDestination

__all__ = ["VkAdsDestination"]


def __getattr__(name: str) -> Any:
    if name == "VkAdsDestination":
        from convsync.destinations.vk_ads.destination import VkAdsDestination

        return VkAdsDestination
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
