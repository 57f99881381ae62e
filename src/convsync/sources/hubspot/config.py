"""Config of the ``hubspot`` source (CRM v3 search API, private-app token)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from convsync.core.configtypes import BaseUrl, Lookback, StrictModel, TimeZoneName

#: what a won deal carries unless ``fields`` says otherwise: the deal's own amount and
#: currency, the first associated contact's e-mail, phone, Google click id and first
#: page URL (convsync parses gclid, yclid, … out of ``landing_url``)
DEFAULT_FIELDS: dict[str, str] = {
    "value": "amount",
    "currency": "deal_currency_code",
    "email": "contact.email",
    "phone": "contact.phone",
    "gclid": "contact.hs_google_click_id",
    "landing_url": "contact.hs_analytics_first_url",
}

#: the field every record carries: the deals pulled are the won ones
STATUS_FIELD = "status"
CONTACT_PREFIX = "contact."
_PROPERTY = re.compile(r"^(contact\.)?[A-Za-z0-9_]+$")


def mapped_field_names(fields: Mapping[str, Any] | None) -> set[str]:
    """The record fields a ``hubspot`` source with these raw ``fields`` yields: the
    defaults, minus those switched off (``""``/null), plus the configured ones and
    ``status`` (for the config loader's goal cross-check)."""
    merged: dict[str, Any] = {**DEFAULT_FIELDS, **dict(fields or {})}
    return {str(k) for k, v in merged.items() if v} | {STATUS_FIELD}


class HubSpotSourceConfig(StrictModel):
    """Closed-won deals of one HubSpot account."""

    @staticmethod
    def provided_fields(fields: Mapping[str, Any]) -> set[str]:
        """The record fields this source yields for these raw ``fields`` (the config
        loader's goal cross-check)."""
        return mapped_field_names(fields)

    type: Literal["hubspot"]
    token: SecretStr = Field(description="Private-app access token (pat-…); ${…} only.")
    api_base_url: BaseUrl = Field(
        default="https://api.hubapi.com", description="API base (a test server's URL)."
    )
    pipeline: str | None = Field(
        default=None,
        description="Only deals of this pipeline (its id or its label); default: all.",
    )
    won_stages: list[str] = Field(
        default_factory=list,
        description="Deal stages (ids or labels) that mean won; default: HubSpot's own "
        "closed-won flag (hs_is_closed_won).",
    )
    lookback: Lookback = Field(
        default=timedelta(minutes=10),
        description="Each pull starts this long before the saved cursor (search index lag).",
    )
    start_date: datetime | date | None = Field(
        default=None,
        description="Where the first pull starts (deals modified since); default: 90 days "
        "before the first run.",
    )
    fields: dict[str, str | None] = Field(
        default_factory=dict,
        description="Canonical field → deal property, or contact.<property> for the first "
        "associated contact that has it; merged over the defaults, null switches one off.",
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="Time zone of naive times; default: the top-level one."
    )
    search_requests_per_second: float = Field(
        default=5.0, gt=0, le=100, description="Most search requests started per second."
    )
    requests_per_second: float = Field(
        default=10.0,
        gt=0,
        le=100,
        description="Most other requests (associations, contacts) started per second.",
    )

    @field_validator("fields")
    @classmethod
    def _check_properties(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for name, prop in value.items():
            if prop and not _PROPERTY.fullmatch(prop.strip()):
                raise ValueError(
                    f"{name}: {prop!r} is not a property's internal name "
                    "(like amount, hs_google_click_id or contact.email)"
                )
        return {k: (v.strip() if v else None) for k, v in value.items()}

    def mapping(self) -> dict[str, str]:
        """Canonical field → property (``contact.``-prefixed for contact properties)."""
        merged = {**DEFAULT_FIELDS, **self.fields}
        return {k: v for k, v in merged.items() if v}
