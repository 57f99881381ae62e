"""Config of the ``google_ads`` destination and of its per-goal targets.

One destination type speaks two APIs (``api``): the Data Manager API, the route Google
leaves open to every new user since 2026-06-15 and the default, and the Google Ads API,
which takes offline conversion imports only from developer tokens allowlisted before then.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    SecretStr,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from convsync.core.configtypes import StrictModel

# [0-9], not \d: \d also matches other scripts' digits ("١٢٣"), which the API never takes.
_ACTION_RESOURCE = re.compile(r"customers/[0-9]+/conversionActions/([0-9]+)")
_VARIABLE_RESOURCE = re.compile(r"customers/[0-9]+/conversionCustomVariables/([0-9]+)")
_DIGITS = re.compile(r"[0-9]+")

#: seconds an upload request may take; a 2,000-row upload takes a few seconds, Google's
#: own deadline is longer (both APIs)
REQUEST_TIMEOUT = 120.0


def _customer_id(value: Any) -> str:
    text = str(value).strip().replace("-", "")
    if not (len(text) == 10 and _DIGITS.fullmatch(text)):
        raise ValueError(
            f"{value!r} is not a Google Ads customer id (10 digits, e.g. 123-456-7890)"
        )
    return text


#: Google's ids are 64-bit integers
_MAX_ID = 2**63 - 1


def _resource_id(value: Any, resource: re.Pattern[str]) -> int | None:
    """The id (1 … 2⁶³−1) of ``123`` or ``customers/…/<resource>/123``; None if neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= _MAX_ID else None
    if isinstance(value, str):
        text = value.strip()
        m = resource.fullmatch(text)
        if m:
            text = m.group(1)
        if _DIGITS.fullmatch(text) and len(text) <= 19 and 0 < int(text) <= _MAX_ID:
            return int(text)
    return None


def _conversion_action_id(value: Any) -> int:
    found = _resource_id(value, _ACTION_RESOURCE)
    if found is None:
        raise ValueError(
            f"{value!r} is not a conversion action id: use the number from Google Ads "
            "(Goals → Conversions → the action's ctId) or customers/…/conversionActions/…"
        )
    return found


def _custom_variable_id(value: Any) -> int:
    found = _resource_id(value, _VARIABLE_RESOURCE)
    if found is None:
        raise ValueError(
            f"{value!r} is not a conversion custom variable id: use the number from Google "
            "Ads or customers/…/conversionCustomVariables/…"
        )
    return found


CustomerId = Annotated[str, BeforeValidator(_customer_id)]
ConversionActionId = Annotated[int, BeforeValidator(_conversion_action_id)]
FieldName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class OAuthRefreshTokenAuth(StrictModel):
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - public endpoint URL, not a secret


class ServiceAccountAuth(StrictModel):
    key_file: str = Field(description="Path of the service account's JSON key file.")
    impersonated_email: str | None = None


class ApplicationDefaultAuth(StrictModel):
    application_default: Literal[True]


def _auth_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "refresh_token" in value or "client_id" in value:
            return "oauth"
        if "key_file" in value:
            return "service_account"
        if "application_default" in value:
            return "application_default"
        return None
    if isinstance(value, OAuthRefreshTokenAuth):
        return "oauth"
    if isinstance(value, ServiceAccountAuth):
        return "service_account"
    if isinstance(value, ApplicationDefaultAuth):
        return "application_default"
    return None


GoogleAdsAuth = Annotated[
    Annotated[OAuthRefreshTokenAuth, Tag("oauth")]
    | Annotated[ServiceAccountAuth, Tag("service_account")]
    | Annotated[ApplicationDefaultAuth, Tag("application_default")],
    Discriminator(
        _auth_kind,
        custom_error_type="google_ads_auth",
        custom_error_message=(
            "auth must be one of: {client_id, client_secret, refresh_token} (OAuth), "
            "{key_file[, impersonated_email]} (service account) or "
            "{application_default: true}"
        ),
    ),
]


GoogleApi = Literal["data_manager", "google_ads_api"]
DATA_MANAGER: GoogleApi = "data_manager"
GOOGLE_ADS_API: GoogleApi = "google_ads_api"

#: the OAuth scope of each API: what credentials ask for, and what a refresh token needs
API_SCOPES: dict[str, str] = {
    DATA_MANAGER: "https://www.googleapis.com/auth/datamanager",
    GOOGLE_ADS_API: "https://www.googleapis.com/auth/adwords",
}

#: each API's own endpoint, the default of ``endpoint``
DEFAULT_ENDPOINTS: dict[str, str] = {
    DATA_MANAGER: "datamanager.googleapis.com",
    GOOGLE_ADS_API: "googleads.googleapis.com",
}

ConsentStatus = Literal["granted", "denied"]


def _consent_status(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class ConsentDefaults(StrictModel):
    """The request's consent (Data Manager API): what applies to a conversion whose record
    says nothing itself. A key left out is not sent."""

    ad_user_data: Annotated[ConsentStatus | None, BeforeValidator(_consent_status)] = None
    ad_personalization: Annotated[ConsentStatus | None, BeforeValidator(_consent_status)] = None


class GoogleAdsConfig(StrictModel):
    """A Google Ads account that receives offline click conversions."""

    type: Literal["google_ads"]
    api: GoogleApi = Field(
        default=DATA_MANAGER,
        description=(
            "data_manager (the Data Manager API, open to every user) or google_ads_api (the "
            "Google Ads API, for developer tokens allowlisted for offline conversion imports)."
        ),
    )
    customer_id: CustomerId = Field(
        description="The operating account: the one that owns the conversion actions."
    )
    login_customer_id: CustomerId | None = Field(
        default=None, description="Manager account id when access goes through a manager."
    )
    developer_token: SecretStr | None = Field(
        default=None, description="api: google_ads_api only; legacy since the 2026 sunset."
    )
    endpoint: str = Field(
        default="",
        description="The chosen API's endpoint (datamanager.googleapis.com or "
        "googleads.googleapis.com by default).",
    )
    auth: GoogleAdsAuth = Field(
        default_factory=lambda: ApplicationDefaultAuth(application_default=True)
    )
    send_ip_address: bool = Field(
        default=False,
        description=(
            "api: data_manager only: send each conversion's ip_address and user_agent "
            "(landing_page_device_info). Off by default: both are personal data, and Google "
            "does not match by IP for users in the EEA, the UK and Switzerland."
        ),
    )
    consent: ConsentDefaults | None = Field(
        default=None,
        description="api: data_manager only: the request's default consent "
        "{ad_user_data, ad_personalization}: granted or denied.",
    )

    @model_validator(mode="before")
    @classmethod
    def _endpoint_of_the_api(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("endpoint"):
            api = data.get("api", DATA_MANAGER)
            if api in DEFAULT_ENDPOINTS:
                data = {**data, "endpoint": DEFAULT_ENDPOINTS[api]}
        return data

    @model_validator(mode="after")
    def _keys_of_the_api(self) -> GoogleAdsConfig:
        if self.api == DATA_MANAGER and self.developer_token is not None:
            raise ValueError(
                "developer_token belongs to the Google Ads API; the Data Manager API (api: "
                "data_manager, the default) needs none: remove it, or set api: google_ads_api "
                "if this token is allowlisted for offline conversion imports"
            )
        if self.api == GOOGLE_ADS_API:
            for key in ("send_ip_address", "consent"):
                if key in self.model_fields_set and getattr(self, key):
                    raise ValueError(
                        f"{key} needs api: data_manager (the Google Ads API no longer takes IP "
                        "addresses from new users, and convsync sends its consent per row)"
                    )
        return self


EventSource = Literal["WEB", "APP", "IN_STORE", "PHONE", "MESSAGE", "OTHER"]


def _event_source(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class GoogleAdsTarget(StrictModel):
    """Where one goal lands in Google Ads.

    Validated with the destination's ``api`` in the context (``{"api": …}``) where the
    config loader knows it: custom variables are named by id in the Google Ads API and by
    name in the Data Manager API, and ``event_source`` is the Data Manager API's alone.
    """

    conversion_action: ConversionActionId
    enhanced_for_leads: bool = Field(
        default=False,
        description="Send conversions without a click id with hashed e-mail/phone (EC4L).",
    )
    custom_variables: dict[str, FieldName] = Field(
        default_factory=dict,
        description=(
            "Conversion custom variables → the record field whose value each carries: by the "
            "variable's name with api: data_manager, by its id (Goals → Conversions → "
            "Settings → Custom variables) with api: google_ads_api. A record without a value "
            "for the field is sent without the variable."
        ),
    )
    event_source: Annotated[EventSource | None, BeforeValidator(_event_source)] = Field(
        default=None,
        description=(
            "api: data_manager only: where the conversion happened (WEB, APP, IN_STORE, "
            "PHONE, MESSAGE, OTHER); WEB when not given, as in Google's own samples."
        ),
    )

    @field_validator("custom_variables", mode="before")
    @classmethod
    def _variables_of_the_api(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value
        api = (info.context or {}).get("api")
        out: dict[str, Any] = {}
        for key, field_name in value.items():
            found = _resource_id(key, _VARIABLE_RESOURCE)
            if api == GOOGLE_ADS_API:
                out[str(_custom_variable_id(key))] = field_name
            elif api == DATA_MANAGER:
                if found is not None:
                    raise ValueError(
                        f"{key!r} is a custom variable id; with api: data_manager a custom "
                        "variable is named by its name (as Google Ads shows it under Goals → "
                        "Conversions → Settings → Custom variables)"
                    )
                name = str(key).strip()
                if not name:
                    raise ValueError("a custom variable's name is empty")
                out[name] = field_name
            else:  # no API known (a target built in code): ids normalised, names kept
                out[str(found) if found is not None else str(key).strip()] = field_name
        return out

    @model_validator(mode="after")
    def _source_of_the_api(self, info: ValidationInfo) -> GoogleAdsTarget:
        if (info.context or {}).get("api") == GOOGLE_ADS_API and self.event_source is not None:
            raise ValueError("event_source needs api: data_manager (the Google Ads API has none)")
        return self
