"""Config of the ``vk_ads`` destination."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, PositiveInt, SecretStr, field_validator

from convsync.configbase import Duration, StrictModel
from convsync.destinations.preflight import bad_chars

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
    max_event_age: Duration = Field(
        default=timedelta(days=30),
        description=(
            "Oldest conversion sent. A pixel event carries no time of its own: VK counts it "
            "on the day it arrives, so a late event lands on the wrong day."
        ),
    )

    @field_validator("max_event_age")
    @classmethod
    def _check_max_event_age(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("max_event_age must be longer than zero, e.g. 30d")
        return value


class VkAdsTarget(StrictModel):
    """Which pixel goal (JS event) a convsync goal lands in."""

    goal: str = Field(description="Name of the pixel's JavaScript-event goal.")

    @field_validator("goal")
    @classmethod
    def _check_goal(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("the goal name is empty")
        bad = sorted(bad_chars(text, FORBIDDEN_GOAL_CHARS))
        if bad:
            shown = " ".join(repr(c) for c in bad)
            raise ValueError(
                f"goal name {text!r} contains {shown}, which the tracker URL cannot carry"
            )
        return text
