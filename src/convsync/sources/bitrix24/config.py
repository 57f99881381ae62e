"""Config of the ``bitrix24`` source (REST API through an inbound webhook)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from convsync.core.configtypes import Int64, Lookback, StrictModel, TimeZoneName, WholeNumber

#: a canonical field the source fills without a mapping (the user's mapping wins)
DEFAULT_FIELDS = {"value": "OPPORTUNITY", "currency": "CURRENCY_ID"}
#: prefix of a mapping that reads the deal's primary contact instead of the deal
CONTACT_PREFIX = "contact."


class Bitrix24RateLimit(StrictModel):
    """The portal's leaky bucket: ``per_second`` drained, requests refused above ``burst``."""

    per_second: float = Field(
        default=2.0,
        gt=0,
        le=100,
        description="Requests per second sustained: 2 on most plans, 5 on Enterprise.",
    )
    burst: WholeNumber = Field(
        default=50,
        ge=1,
        le=1000,
        description="Requests allowed in a burst (the bucket): 50 on most plans, 250 on "
        "Enterprise. Lower it if other integrations share the portal.",
    )


class Bitrix24SourceConfig(StrictModel):
    """Won deals of one Bitrix24 portal."""

    @staticmethod
    def provided_fields(fields: Mapping[str, Any]) -> set[str]:
        """The record fields this source yields for these raw ``fields``: they, the
        deal's value and currency, and ``status`` (the config loader's goal check)."""
        return {str(k) for k in fields} | set(DEFAULT_FIELDS) | {"status"}

    type: Literal["bitrix24"]
    webhook_url: SecretStr = Field(
        description="Inbound webhook, https://<portal>/rest/<user>/<code>/ (it is a credential: "
        "write it as ${ENV} or ${file:…})."
    )
    category_id: Int64 | None = Field(
        default=None,
        ge=0,
        description="The pipeline (deal direction) whose won stage means the goal; "
        "0 is the default pipeline; none: every pipeline.",
    )
    stage_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only these won stages (STAGE_ID, e.g. WON or C2:WON); default: any "
        "stage whose semantics is success.",
    )
    lookback: Lookback = Field(
        default=timedelta(minutes=10),
        description="How far before the last win seen each pull starts again (the ledger "
        "absorbs the overlap); 0 follows the history id alone.",
    )
    start_date: datetime | date | None = Field(
        default=None,
        description="Wins before this moment are never pulled (first run); naive times are "
        "in the source's time zone. Default: the whole history.",
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical field name → deal field (UF_CRM_…, UTM_SOURCE, OPPORTUNITY, …) "
        "or contact.<field> of the deal's primary contact (contact.EMAIL, contact.PHONE).",
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="Time zone of the portal; default: the top-level one."
    )
    rate_limit: Bitrix24RateLimit = Field(default_factory=Bitrix24RateLimit)
    retries: WholeNumber = Field(
        default=4, ge=0, le=10, description="Retries of a request refused for the rate or a 5xx."
    )
    timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds per request.")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_shape(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if not url.startswith(("https://", "http://")) or "/rest/" not in url:
            # the value itself is a secret: never quote it
            raise ValueError(
                "expected the inbound webhook's URL, https://<portal>/rest/<user id>/<code>/"
            )
        return SecretStr(url.rstrip("/") + "/")

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: dict[str, str]) -> dict[str, str]:
        for canonical, name in value.items():
            bare = name.removeprefix(CONTACT_PREFIX)
            if not bare or not bare.replace("_", "").isalnum():
                raise ValueError(
                    f"{canonical}: {name!r} is not a Bitrix24 field name "
                    "(UF_CRM_…, UTM_SOURCE, contact.EMAIL …)"
                )
        return value
