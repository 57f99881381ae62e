"""Config of the ``vk_ads`` destination."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from convsync.core.configtypes import Duration, Id, StrictModel, WholeNumber
from convsync.destinations.preflight import bad_chars

#: characters that would break the tracker URL's hand-built ``e=RG:VALUE/GOAL;`` part
FORBIDDEN_GOAL_CHARS = ";/&?#=%"

#: the tracker has no documented rate limit; these keep a backlog from hammering it
DEFAULT_CONCURRENCY = 8
DEFAULT_EVENTS_PER_SECOND = 20.0


def _base_url(value: str, *, key: str) -> str:
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{key} must be an http(s) URL such as https://host/path, got {text!r}")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(
            f"{key} must not carry a query or fragment: convsync appends the tracker's own "
            f"'?id=…;e=…' query to it, got {text!r}"
        )
    if bad_chars(text, ""):
        raise ValueError(f"{key} must not contain spaces or control characters")
    return text


class VkAdsConfig(StrictModel):
    """A VK Ads pixel (offline events) and, for the Ads API, an OAuth client."""

    type: Literal["vk_ads"]
    pixel_id: Id
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
    concurrency: WholeNumber = Field(
        default=DEFAULT_CONCURRENCY,
        ge=1,
        le=64,
        description="Tracker requests in flight at once (one request per conversion).",
    )
    max_events_per_second: float = Field(
        default=DEFAULT_EVENTS_PER_SECOND,
        gt=0,
        le=1000,
        description="Most tracker requests started per second, whatever the concurrency.",
    )

    @field_validator("max_event_age")
    @classmethod
    def _check_max_event_age(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("max_event_age must be longer than zero, e.g. 30d")
        return value

    @field_validator("tracker_url")
    @classmethod
    def _check_tracker_url(cls, value: str) -> str:
        return _base_url(value, key="tracker_url")

    @field_validator("api_base_url")
    @classmethod
    def _check_api_base_url(cls, value: str) -> str:
        return _base_url(value, key="api_base_url").rstrip("/")

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or bad_chars(value.strip(), "")):
            raise ValueError("client_id must be the VK Ads API client id, without spaces")
        return None if value is None else value.strip()

    @model_validator(mode="after")
    def _client_pair(self) -> VkAdsConfig:
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError(
                "client_id and client_secret go together (the VK Ads API client of the "
                "account); set both or neither"
            )
        return self


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
