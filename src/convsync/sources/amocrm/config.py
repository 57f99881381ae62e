"""Config of the ``amocrm`` source (amoCRM / Kommo, API v4).

A marketer writes the field mapping as ``canonical field: where it is``::

    fields:
      gclid: lead.GCLID                 # a lead custom field by its code (tracking fields)
      yclid: lead.YCLID
      metrica_client_id: lead._YM_UID
      landing_url: lead.123456          # a lead custom field by its id
      utm_source: {field_name: "Источник"}   # … or by the name shown in amoCRM
      email: contact.email              # the lead's main contact
      phone: contact.phone
      value: lead.price                 # the default

``lead.<name>`` / ``contact.<name>`` is an attribute of the lead or contact when
``<name>`` is one (``price``, ``name``, ``email``…), else a custom field: by id when it
is a number, else by code. The dict form says it explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    model_validator,
)

from convsync.core.configtypes import Id, Lookback, StrictModel, TimeZoneName

#: attributes of a lead that ``lead.<name>`` reads from the lead itself
LEAD_ATTRIBUTES = frozenset(
    {
        "id", "name", "price", "status_id", "pipeline_id", "responsible_user_id",
        "created_at", "updated_at", "closed_at", "loss_reason_id",
        "status",  # computed: won, or moved_after_won when the lead left the won status
    }
)  # fmt: skip
#: canonical fields every record has without a mapping (``value`` ← lead.price,
#: ``status`` ← lead.status); a goal may use them
IMPLICIT_FIELDS = frozenset({"value", "status"})
#: attributes of a contact; ``email`` and ``phone`` are its EMAIL / PHONE fields
CONTACT_ATTRIBUTES = frozenset({"id", "name", "first_name", "last_name", "email", "phone"})

_FIELD_HELP = (
    "write lead.<field> or contact.<field> (lead.price, lead.GCLID, lead.123456, "
    "contact.email) or {field_id: 123456} / {field_code: GCLID} / {field_name: …}"
)


class AmoFieldRef(StrictModel):
    """Where one canonical field is read: an attribute or a custom field of the lead or
    of its main contact."""

    entity: Literal["lead", "contact"] = "lead"
    attribute: str | None = None
    field_id: Id | None = None
    field_code: str | None = None
    field_name: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AmoFieldRef:
        given = [
            k
            for k in ("attribute", "field_id", "field_code", "field_name")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(f"give exactly one of field_id, field_code, field_name: {_FIELD_HELP}")
        known = LEAD_ATTRIBUTES if self.entity == "lead" else CONTACT_ATTRIBUTES
        if self.attribute is not None and self.attribute not in known:
            raise ValueError(
                f"{self.entity} has no attribute {self.attribute!r} "
                f"(attributes: {', '.join(sorted(known))})"
            )
        return self

    def describe(self) -> str:
        """How the user wrote it, for messages and ``RawRecord.columns``."""
        if self.attribute is not None:
            return f"{self.entity}.{self.attribute}"
        if self.field_id is not None:
            return f"{self.entity}.{self.field_id}"
        if self.field_code is not None:
            return f"{self.entity}.{self.field_code}"
        return f"{self.entity}[{self.field_name}]"


def _parse_field_ref(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    entity, dot, name = value.strip().partition(".")
    name = name.strip()
    if not dot or entity not in ("lead", "contact") or not name:
        raise ValueError(f"{value!r} is not a field: {_FIELD_HELP}")
    known = LEAD_ATTRIBUTES if entity == "lead" else CONTACT_ATTRIBUTES
    if name.lower() in known:
        return {"entity": entity, "attribute": name.lower()}
    if name.isdigit():
        return {"entity": entity, "field_id": int(name)}
    return {"entity": entity, "field_code": name}


FieldSpec = Annotated[AmoFieldRef, BeforeValidator(_parse_field_ref)]


class AmoTokenAuth(StrictModel):
    """A long-lived token of a private integration (amoCRM → Settings → Integrations)."""

    token: SecretStr


class AmoOAuth(StrictModel):
    """An external integration's OAuth keys and the refresh token of its first
    authorization; convsync rotates and keeps the refresh token in the ledger."""

    client_id: str
    client_secret: SecretStr
    redirect_uri: str
    refresh_token: SecretStr


def _auth_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "token" in value:
            return "token"
        if "refresh_token" in value or "client_id" in value:
            return "oauth"
        return None
    if isinstance(value, AmoTokenAuth):
        return "token"
    if isinstance(value, AmoOAuth):
        return "oauth"
    return None


AmoAuth = Annotated[
    Annotated[AmoTokenAuth, Tag("token")] | Annotated[AmoOAuth, Tag("oauth")],
    Discriminator(
        _auth_kind,
        custom_error_type="amocrm_auth",
        custom_error_message=(
            "auth must be {token: ${…}} (a long-lived token) or "
            "{client_id, client_secret, redirect_uri, refresh_token} (OAuth)"
        ),
    ),
]


class AmoCrmSourceConfig(StrictModel):
    """Leads of one amoCRM / Kommo account that reached the won status of a pipeline."""

    @staticmethod
    def provided_fields(fields: Mapping[str, Any]) -> set[str]:
        """The record fields this source yields for these raw ``fields``: they, and the
        lead's price and status unless mapped otherwise (the config loader's check)."""
        return {str(k) for k in fields} | IMPLICIT_FIELDS

    type: Literal["amocrm"]
    subdomain: str = Field(
        description="The account's subdomain: `mycompany` of mycompany.amocrm.ru."
    )
    domain: Literal["amocrm.ru", "amocrm.com", "kommo.com"] = "amocrm.ru"
    pipeline_id: Id = Field(description="The pipeline whose won status means the goal happened.")
    won_status_id: Id = Field(
        default=142,
        description="The status that means won: 142 (Closed-Won) in every pipeline.",
    )
    auth: AmoAuth
    fields: dict[str, FieldSpec] = Field(
        default_factory=dict,
        description=(
            "Canonical field → lead.<attribute or custom field code or id>, "
            "contact.<…>, or {field_id | field_code | field_name[, entity: contact]}. "
            "value defaults to lead.price, status to lead.status (won / moved_after_won)."
        ),
    )
    time: Literal["won_at", "closed_at"] = Field(
        default="won_at",
        description="The conversion's time: when the lead became won, or its closed_at.",
    )
    lookback: Lookback = Field(
        default=timedelta(minutes=10),
        description="Each pull re-reads this much before the last event seen (late events).",
    )
    start_date: datetime | date | None = Field(
        default=None,
        description="First run: leads won since then (default: 30 days before the first run).",
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="Time zone of the account; default: the top-level one."
    )
    requests_per_second: float = Field(
        default=7.0,
        gt=0,
        le=7,
        description="Requests per second to the account (amoCRM allows 7, for all integrations).",
    )
    api_base_url: str | None = Field(
        default=None, description="API base; default https://<subdomain>.<domain>."
    )

    @property
    def base_url(self) -> str:
        return (self.api_base_url or f"https://{self.subdomain}.{self.domain}").rstrip("/")
