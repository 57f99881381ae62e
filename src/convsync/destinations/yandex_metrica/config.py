"""Config of the ``yandex_metrica`` destination (the way into Yandex.Direct)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import (
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from convsync.core.configtypes import Id, StrictModel
from convsync.destinations.preflight import bad_chars

#: characters Metrica forbids in a goal identifier (JS-event goals, "matches"/"contains")
FORBIDDEN_TARGET_CHARS = '/\\&#?="'

#: the optional columns of a calls file (Metrica's "Sending call data"), in file order
CallColumn = Literal[
    "PhoneNumber",
    "TalkDuration",
    "HoldDuration",
    "CallMissed",
    "Tag",
    "FirstTimeCaller",
    "URL",
    "CallTrackerURL",
    "StaticCall",
]
CALL_COLUMNS: tuple[str, ...] = get_args(CallColumn)
FieldName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

#: record fields that hold a customer's raw contact: convsync keeps them only hashed, so
#: they can never be a call column (PhoneNumber is the number the customer called)
_CONTACT_FIELDS = frozenset({"email", "phone"})


class MetricaConfig(StrictModel):
    """A Yandex.Metrica counter linked to the Yandex.Direct campaigns."""

    type: Literal["yandex_metrica"]
    counter_id: Id
    token: SecretStr = Field(
        description=(
            "OAuth token with the metrika:offline_data scope (uploads) and metrika:read "
            "(the status of uploads); metrika:write covers both."
        )
    )
    api_base_url: str = "https://api-metrika.yandex.net"


class MetricaTarget(StrictModel):
    """Which Metrica goal a convsync goal lands in, or that it is uploaded as calls."""

    type: Literal["conversions", "calls"] = Field(
        default="conversions",
        description=(
            "conversions: offline conversions of a JavaScript-event goal (target); calls: "
            "call-tracking records, counted by Metrica in the counter's calls."
        ),
    )
    target: str | None = Field(
        default=None,
        description="Identifier of a JavaScript-event goal (not its name); conversions only.",
    )
    call_fields: dict[CallColumn, FieldName] = Field(
        default_factory=dict,
        description=(
            "Calls only: call column (PhoneNumber, TalkDuration, HoldDuration, CallMissed, "
            "Tag, FirstTimeCaller, URL, CallTrackerURL, StaticCall) → the record field whose "
            "value it carries. A record without a value for the field leaves the cell empty."
        ),
    )

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str | None) -> str | None:
        return None if value is None else _checked_target(value)

    @model_validator(mode="after")
    def _check_type(self) -> MetricaTarget:
        if self.type == "calls":
            if self.target is not None:
                raise ValueError(
                    "a calls target takes no 'target': Metrica counts uploaded calls in the "
                    "counter's own call goals"
                )
            contact = sorted(
                f"{column}: {field}"
                for column, field in self.call_fields.items()
                if field in _CONTACT_FIELDS
            )
            if contact:
                raise ValueError(
                    f"call_fields {', '.join(contact)}: e-mail and phone fields hold the "
                    "customer's contact, which convsync keeps only hashed; PhoneNumber is the "
                    "number the customer called (the tracking number), so map the field that "
                    "holds that number"
                )
            return self
        if self.call_fields:
            raise ValueError("call_fields needs type: calls")
        if self.target is None:
            raise ValueError("'target' is required: the identifier of a JavaScript-event goal")
        return self


def _checked_target(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("the goal identifier is empty")
    bad = sorted(bad_chars(text, FORBIDDEN_TARGET_CHARS))
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ValueError(
            f"goal identifier {text!r} contains {shown}: Metrica goal identifiers "
            f"cannot contain spaces or any of {FORBIDDEN_TARGET_CHARS}"
        )
    return text
