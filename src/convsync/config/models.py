"""The YAML config file users edit: models, ``${ENV}`` interpolation, validation, schema.

``load_config`` validates the whole file at once and raises one ``ConfigError`` that
lists every problem with its dotted path and line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeAlias, Union
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import BaseModel, Field, field_validator, model_validator

from convsync.config.alerts import AlertsConfig
from convsync.config.ui import UiConfig
from convsync.config.webhooks import WebhookServerConfig
from convsync.core.configtypes import (
    CurrencyCode,
    Duration,
    StrictModel,
    TimeZoneName,
    WholeNumber,
    Within,
)
from convsync.destinations import destination_config_models, target_models
from convsync.sources import source_config_models


class SourceSettings(Protocol):
    """What code outside a source's own package reads of its config (mypy's view of
    ``sources.<name>``; at run time the union of the registered types' models)."""

    @property
    def type(self) -> str: ...

    @property
    def timezone(self) -> str | None: ...


class DestinationSettings(Protocol):
    """What code outside a destination's own package reads of its config."""

    @property
    def type(self) -> str: ...


if TYPE_CHECKING:
    SourceConfig: TypeAlias = SourceSettings
    DestinationConfig: TypeAlias = DestinationSettings

#: each type's model of a ``sources.<name>`` / ``destinations.<name>`` block, and of a
#: goal's ``send.<destination>`` block, from the registries (sources/__init__.py,
#: destinations/__init__.py) in their order: a new connector type is a line there
SOURCE_MODELS: dict[str, type[BaseModel]] = source_config_models()
DESTINATION_MODELS: dict[str, type[BaseModel]] = destination_config_models()
TARGET_MODELS: dict[str, type[BaseModel]] = target_models()

if not TYPE_CHECKING:  # the unions pydantic validates with, told apart by ``type``
    SourceConfig = Annotated[
        Union[tuple(SOURCE_MODELS.values())],  # noqa: UP007 - built at run time
        Field(discriminator="type"),
    ]
    DestinationConfig = Annotated[
        Union[tuple(DESTINATION_MODELS.values())],  # noqa: UP007 - likewise
        Field(discriminator="type"),
    ]

#: canonical record fields with a meaning of their own (others may be used in ``when``)
KNOWN_FIELDS = frozenset(
    {
        "email", "phone", "gclid", "gbraid", "wbraid", "yclid", "metrica_client_id",
        "metrica_user_id", "purchase_id", "vk_click_id", "vk_user_id", "landing_url",
        "value", "currency", "status", "consent", "ad_user_data_consent", "order_id",
        "google_session_attributes", "ip_address", "user_agent",
    }
)  # fmt: skip


class ScheduleConfig(StrictModel):
    """``{every: 15m}`` or ``{cron: "*/15 * * * *"}``."""

    # a run every few weeks at most: beyond that, click ids expire before they are sent
    every: Annotated[Duration, Within("1m", "4w")] | None = None
    cron: str | None = None

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is not None:
            _check_crontab(value)
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' (like 15m) or 'cron' (like */15 * * * *)")
        return self


_CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def _check_crontab(text: str) -> None:
    """A cron expression APScheduler takes; otherwise which of its fields is wrong."""
    from apscheduler.triggers.cron import CronTrigger

    fields = text.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(
            f"{text!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}; a cron "
            f"expression has 5 ({', '.join(_CRON_FIELDS)}), like */15 * * * *"
        )
    for i, name in enumerate(_CRON_FIELDS):
        alone = ["*"] * len(_CRON_FIELDS)
        alone[i] = fields[i]
        try:
            CronTrigger.from_crontab(" ".join(alone))
        except ValueError as exc:
            said = str(exc).removeprefix(f"Error validating expression {fields[i]!r}: ")
            reason = said[:1].lower() + said[1:]
            raise ValueError(
                f"{text!r}: the {name} field {fields[i]!r} is not valid ({reason})"
            ) from None


class DeliveryConfig(StrictModel):
    """How hard convsync tries before it gives a delivery up."""

    # the bounds: 20 doubling deferrals already span weeks (and keep retry_backoff ·
    # 2**attempts far from timedelta's limit); a lease longer than a day would leave an
    # interrupted batch stuck that long
    max_attempts: WholeNumber = Field(
        8, ge=1, le=20, description="Failed sends before retries_exhausted."
    )
    retries_in_run: WholeNumber = Field(
        3, ge=0, le=10, description="Quick retries of transient errors."
    )
    retry_backoff: Annotated[Duration, Within("1s", "1w")] = Field(
        timedelta(minutes=15), description="First deferral after a failed run."
    )
    max_backoff: Annotated[Duration, Within("1s", "4w")] = Field(
        timedelta(hours=24), description="Longest deferral between attempts."
    )
    lease: Annotated[Duration, Within("1s", "1d")] = Field(
        timedelta(minutes=10), description="How long a claimed batch is reserved."
    )


class HealthConfig(StrictModel):
    """When convsync reports itself unhealthy (``/healthz``, ``convsync health``)."""

    max_pending_age: Annotated[Duration, Within("1m", "4w")] = Field(
        timedelta(hours=6),
        description="A delivery waiting longer than this makes a run degraded.",
    )
    max_source_silence: Annotated[Duration, Within("1h", "366d")] = Field(
        timedelta(days=2),
        description="A source that had records before and has none for longer than this "
        "makes a run degraded.",
    )
    fail_on_degraded: bool = Field(
        False,
        description="Answer 503 (and `convsync health` exit 1) when degraded, not only "
        "when failed.",
    )


class NotCondition(StrictModel):
    not_: str | list[str] = Field(alias="not")

    @field_validator("not_", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return _condition_text(value)


def _fixed_value_ok(value: int | float) -> bool:
    """A goal's fixed value: finite, not negative, exact as a double (as amounts are)."""
    from convsync.core.parsing import AMOUNT_LIMIT, AMOUNT_MAX_DIGITS

    if isinstance(value, int):  # compared as it is: a huge int has no float or text form
        return 0 <= value < AMOUNT_LIMIT
    if not math.isfinite(value) or not 0 <= value < AMOUNT_LIMIT:
        return False
    return len(Decimal(str(value)).normalize().as_tuple().digits) <= AMOUNT_MAX_DIGITS


def _condition_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_scalar_text(v) for v in value]
    if isinstance(value, dict):
        return value
    return _scalar_text(value)


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | str):
        return str(value)
    return value


class GoalConfig(StrictModel):
    """Which records of a source are this goal, what they are worth, where they go."""

    source: str
    when: dict[str, str | list[str] | NotCondition] = Field(
        default_factory=dict,
        description="field: value | [values] | {not: value or [values]}; all must hold.",
    )
    value: str | float | None = Field(
        default=None, description="Field holding the amount, or a fixed number."
    )
    currency: CurrencyCode | None = Field(
        default=None, description="Currency when the record has none (ISO 4217)."
    )
    order_id: str | None = Field(
        default=None, description="Field holding the order id; default: the record id."
    )
    dedup_by: Literal["record", "order_id"] = Field(
        default="record",
        description="order_id: one order seen by several sources is one conversion.",
    )
    send: dict[str, dict[str, Any]] = Field(
        description="destination name → that platform's target (conversion action, goal…)."
    )
    retract_when: dict[str, str | list[str] | NotCondition] | None = Field(
        default=None,
        description=(
            "Conditions like `when`: a recorded conversion whose record later matches them "
            "is retracted where the platform allows it (Google Ads)."
        ),
    )
    restate_on_value_change: bool = Field(
        default=False,
        description=(
            "A recorded conversion whose record later shows another value is restated "
            "with the new total where the platform allows it (Google Ads)."
        ),
    )

    @field_validator("when", "retract_when", mode="before")
    @classmethod
    def _when_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _condition_text(v) for k, v in value.items()}
        return value

    @property
    def adjusts(self) -> bool:
        """Whether records may adjust this goal's conversions after they are recorded."""
        return bool(self.retract_when) or self.restate_on_value_change

    @field_validator("value", mode="before")
    @classmethod
    def _value_kind(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a field name or a number")
        if isinstance(value, int | float) and not _fixed_value_ok(value):
            raise ValueError(
                "a fixed value is a number from 0 to 999999999999999 (15 digits at most: ad "
                "platforms keep values as double-precision numbers)"
            )
        return value


class AppConfig(StrictModel):
    """The whole config file."""

    timezone: TimeZoneName = Field("UTC", description="For source timestamps without an offset.")
    phone_region: str | None = Field(
        default=None, description="Region of phones written without a country code, e.g. RU."
    )
    schedule: ScheduleConfig = Field(default_factory=lambda: ScheduleConfig(every=900))
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    webhooks: WebhookServerConfig = Field(default_factory=WebhookServerConfig)
    sources: dict[str, SourceConfig]
    destinations: dict[str, DestinationConfig]
    goals: dict[str, GoalConfig]
    alerts: AlertsConfig | None = Field(
        default=None, description="Anomaly alerts: where they go and when they fire."
    )
    ui: UiConfig = Field(default_factory=UiConfig)

    @field_validator("phone_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region code: use two letters like RU, KZ or US")
        return region

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def webhook_sources(self) -> list[str]:
        return [name for name, cfg in self.sources.items() if cfg.type == "webhook"]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config file and what was derived from it."""

    app: AppConfig
    path: Path
    #: goal → destination → validated target model
    targets: Mapping[str, Mapping[str, BaseModel]]
    #: every credential value read from the environment or a secret file
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def base_dir(self) -> Path:
        return self.path.parent
