"""Config of the ``vk_ads`` destination."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, SecretStr, field_validator

from convsync.configbase import StrictModel

#: characters that would break the tracker URL's hand-built ``e=RG:VALUE/GOAL;`` part
FORBIDDEN_GOAL_CHARS = ";/&?#=%"


class VkAdsConfig(StrictModel):
    """A VK Ads pixel (offline events) and, for the Ads API, an OAuth client."""

    type: Literal["vk_ads"]
    pixel_id: PositiveInt
    client_id: str | None = Field(default=None, description="VK Ads API client id.")
    client_secret: SecretStr | None = Field(default=None, description="VK Ads API secret.")
    tracker_url: str = "https://top-fwz1.mail.ru/tracker"
    api_base_url: str = "https://ads.vk.com"


class VkAdsTarget(StrictModel):
    """Which pixel goal (JS event) a convsync goal lands in."""

    goal: str = Field(description="Name of the pixel's JavaScript-event goal.")

    @field_validator("goal")
    @classmethod
    def _check_goal(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("the goal name is empty")
        bad = sorted({c for c in text if c in FORBIDDEN_GOAL_CHARS or c.isspace()})
        if bad:
            shown = " ".join(repr(c) for c in bad)
            raise ValueError(f"goal name {text!r} contains {shown}, which the tracker URL cannot carry")
        return text
