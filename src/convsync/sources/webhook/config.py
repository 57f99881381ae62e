"""Config of a ``webhook`` source (the server that receives them: ``config/webhooks.py``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from convsync.core.configtypes import StrictModel, TimeZoneName

Sender = Literal["generic", "tilda", "amocrm", "bitrix24"]


@dataclass(frozen=True)
class SenderPreset:
    """What a kind of sender posts, so its config needs only a token."""

    records: str | None = None
    id: tuple[str, ...] = ("id",)
    time: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    #: a body field that may carry the token (for senders that cannot add a header)
    token_field: str | None = None


PRESETS: dict[str, SenderPreset] = {
    "generic": SenderPreset(),
    # Tilda forms: one submission per request, its id in tranid; field names are the
    # form's own (Email and Phone are Tilda's defaults); COOKIES holds _ym_uid when the
    # "send cookies" option is on
    "tilda": SenderPreset(
        id=("tranid",),
        fields={
            "email": "Email",
            "phone": "Phone",
            "metrica_client_id": "COOKIES._ym_uid",
            "form_id": "formid",
        },
    ),
    # amoCRM account webhooks on a status change: leads[status][N][…], several per request
    "amocrm": SenderPreset(
        records="leads.status",
        id=("id", "status_id"),
        time="last_modified",
        fields={"status": "status_id", "pipeline_id": "pipeline_id", "value": "price"},
    ),
    # Bitrix24: an automation rule's outgoing webhook (parameters of the user's choosing)
    # or an event handler (data[FIELDS][ID], token in auth[application_token])
    "bitrix24": SenderPreset(id=("id",), token_field="auth.application_token"),  # noqa: S106 (a field name, not a secret)
}

_PATH = re.compile(r"^[^.\s][^\s]*$")


def _check_path(value: str, what: str) -> str:
    text = value.strip()
    if not _PATH.fullmatch(text) or ".." in text or text.endswith("."):
        raise ValueError(
            f"{what} {value!r} is not a field path (a field name, or names joined by dots "
            "like leads.status or COOKIES._ym_uid)"
        )
    return text


class WebhookSourceConfig(StrictModel):
    """Target actions posted to ``/webhooks/<source name>`` by sites, forms and CRMs."""

    @staticmethod
    def source_fields(raw: Mapping[str, Any]) -> set[str]:
        """The record fields this source yields (the config loader's goal cross-check):
        the sender's defaults, minus those switched off, plus the configured ones."""
        preset = PRESETS.get(str(raw.get("sender", "generic")), PRESETS["generic"])
        configured = raw.get("fields")
        merged: dict[str, Any] = {
            **preset.fields,
            **(configured if isinstance(configured, dict) else {}),
        }
        return {str(k) for k, v in merged.items() if v}

    type: Literal["webhook"]
    token: SecretStr = Field(
        description="Shared secret the sender presents (header X-Convsync-Token, "
        "Authorization: Bearer, or ?token=); ${…} only."
    )
    sender: Sender = Field(
        default="generic",
        description="Who posts: generic (JSON or form), tilda, amocrm or bitrix24; "
        "sets the defaults of records, id, time and fields.",
    )
    records: str | None = Field(
        default=None,
        description="Path to the list of records in a body that holds several "
        "(amocrm: leads.status); default: the body is one record (a JSON array: several).",
    )
    id: str | list[str] | None = Field(
        default=None,
        description="Path(s) of the submission id in a record; several are joined. "
        "A repeated id is acknowledged but recorded once.",
    )
    time: str | None = Field(
        default=None,
        description="Path of the moment the action happened; default: the moment of receipt.",
    )
    fields: dict[str, str | None] = Field(
        default_factory=dict,
        description="Record field → path in the posted record; merged over the sender's "
        "defaults, null switches one off.",
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="Time zone of naive times; default: the top-level one."
    )

    @field_validator("records", "time")
    @classmethod
    def _check_single_path(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value, "path")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("give at least one path")
            return [_check_path(v, "path") for v in value]
        return None if value is None else _check_path(value, "path")

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        return {k: (_check_path(v, f"{k}:") if v else None) for k, v in value.items()}

    @property
    def preset(self) -> SenderPreset:
        return PRESETS[self.sender]

    def records_path(self) -> str | None:
        return self.records if self.records is not None else self.preset.records

    def id_paths(self) -> tuple[str, ...]:
        if self.id is None:
            return self.preset.id
        return (self.id,) if isinstance(self.id, str) else tuple(self.id)

    def time_path(self) -> str | None:
        return self.time if self.time is not None else self.preset.time

    def mapping(self) -> dict[str, str]:
        """Record field → path, defaults merged."""
        merged = {**self.preset.fields, **self.fields}
        return {k: v for k, v in merged.items() if v}
