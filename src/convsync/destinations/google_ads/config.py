"""Config of the ``google_ads`` destination and of its per-goal targets."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, SecretStr, StringConstraints, Tag

from convsync.configbase import StrictModel

# [0-9], not \d: \d also matches other scripts' digits ("١٢٣"), which the API never takes.
_ACTION_RESOURCE = re.compile(r"customers/[0-9]+/conversionActions/([0-9]+)")
_VARIABLE_RESOURCE = re.compile(r"customers/[0-9]+/conversionCustomVariables/([0-9]+)")
_DIGITS = re.compile(r"[0-9]+")


def _customer_id(value: Any) -> str:
    text = str(value).strip().replace("-", "")
    if not (len(text) == 10 and _DIGITS.fullmatch(text)):
        raise ValueError(
            f"{value!r} is not a Google Ads customer id (10 digits, e.g. 123-456-7890)"
        )
    return text


def _resource_id(value: Any, resource: re.Pattern[str]) -> int | None:
    """The positive id of ``123`` or ``customers/…/<resource>/123``; None if neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if isinstance(value, str):
        text = value.strip()
        m = resource.fullmatch(text)
        if m:
            text = m.group(1)
        if _DIGITS.fullmatch(text) and int(text) > 0:
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
CustomVariableId = Annotated[int, BeforeValidator(_custom_variable_id)]
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


class GoogleAdsConfig(StrictModel):
    """A Google Ads account that receives offline click conversions."""

    type: Literal["google_ads"]
    customer_id: CustomerId = Field(description="The conversion customer, with or without dashes.")
    login_customer_id: CustomerId | None = Field(
        default=None, description="Manager account id when access goes through a manager."
    )
    developer_token: SecretStr | None = Field(
        default=None, description="Legacy; optional since the 2026 developer-token sunset."
    )
    endpoint: str = "googleads.googleapis.com"
    auth: GoogleAdsAuth = Field(
        default_factory=lambda: ApplicationDefaultAuth(application_default=True)
    )


class GoogleAdsTarget(StrictModel):
    """Where one goal lands in Google Ads."""

    conversion_action: ConversionActionId
    enhanced_for_leads: bool = Field(
        default=False,
        description="Send conversions without a click id with hashed e-mail/phone (EC4L).",
    )
    custom_variables: dict[CustomVariableId, FieldName] = Field(
        default_factory=dict,
        description=(
            "Conversion custom variables: the variable's id in Google Ads (Goals → "
            "Conversions → Settings → Custom variables) → the record field whose value it "
            "carries. A record without a value for the field is sent without the variable."
        ),
    )
