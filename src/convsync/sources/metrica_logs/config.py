"""Config of the ``metrica_logs`` source (Yandex.Metrica Logs API, visits)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator

from convsync.core.configtypes import (
    BaseUrl,
    Duration,
    Id,
    Int64,
    StrictModel,
    TimeZoneName,
    WholeNumber,
    Within,
)

#: the Logs API's attribution models (``attribution`` of a log request)
Attribution = Literal[
    "FIRST",
    "LAST",
    "LASTSIGN",
    "LAST_YANDEX_DIRECT_CLICK",
    "CROSS_DEVICE_FIRST",
    "CROSS_DEVICE_LAST",
    "CROSS_DEVICE_LAST_SIGNIFICANT",
    "CROSS_DEVICE_LAST_YANDEX_DIRECT_CLICK",
    "AUTOMATIC",
]

#: every record field this source fills (when the visit has the value)
PROVIDED_FIELDS: frozenset[str] = frozenset(
    {
        "metrica_goal_id", "metrica_visit_id", "metrica_client_id", "landing_url",
        "gclid", "gbraid", "wbraid", "yclid", "vk_click_id", "purchase_id", "order_id",
        "value", "currency", "utm_source", "utm_medium", "utm_campaign", "utm_content",
        "utm_term",
    }
)  # fmt: skip


class MetricaLogsSourceConfig(StrictModel):
    """Goals reached in the visits of one Metrica counter, read through the Logs API."""

    @staticmethod
    def provided_fields(fields: Mapping[str, Any]) -> set[str]:
        """The record fields this source yields (the config loader's goal cross-check);
        the source has no ``fields`` mapping, so ``fields`` is ignored."""
        return set(PROVIDED_FIELDS)

    type: Literal["metrica_logs"]
    counter_id: Id = Field(gt=0, description="The Metrica counter (tag) number.")
    token: SecretStr = Field(
        description="OAuth token of a Yandex account that can read the counter "
        "(scope metrika:read); ${…} only."
    )
    goal_ids: list[int] = Field(
        min_length=1,
        description="Metrica goal ids whose reaches become records (other goals are "
        'ignored); a goal rule picks one with when: {metrica_goal_id: "123"}.',
    )
    api_base_url: BaseUrl = Field(
        default="https://api-metrika.yandex.net", description="API base (a test server's URL)."
    )
    attribution: Attribution | None = Field(
        default=None,
        description="Attribution model of the UTM fields (the Logs API's attribution); "
        "default: Metrica's own (LASTSIGN, the last significant source).",
    )
    start_date: date | None = Field(
        default=None,
        description="First day the first pull reads; default: 30 days before it.",
    )
    lookback_days: WholeNumber = Field(
        default=3,
        ge=0,
        le=30,
        description="Days before the saved cursor that each pull reads again (a visit "
        "stays mutable for about 3 days).",
    )
    reread_every: Annotated[Duration, Within(0, "1w")] = Field(
        default=timedelta(hours=6),
        description="When no new day is complete, re-read the lookback days at most this "
        "often (0: every run).",
    )
    max_days_per_request: WholeNumber = Field(
        default=30, ge=1, le=365, description="Most days one log request covers."
    )
    requests_per_second: float = Field(
        default=10.0, gt=0, le=10, description="Most API requests started per second (≤ 10)."
    )
    timezone: TimeZoneName | None = Field(
        default=None,
        description="The counter's time zone; default: read from the counter's settings.",
    )
    goals_timezone: TimeZoneName | Literal["counter"] = Field(
        default="Europe/Moscow",
        description="Time zone of ym:s:goalsDateTime (documented as UTC+3), or counter.",
    )
    goal_price_scale: Int64 = Field(
        default=1000,
        gt=0,
        description="ym:s:goalsPrice is the goal value times this (documented: 1000).",
    )
    poll_interval: Annotated[Duration, Within(0, "1h")] = Field(
        default=timedelta(seconds=10),
        description="First wait before asking whether a log request is ready (it grows).",
    )
    processing_timeout: Annotated[Duration, Within("1s", "1d")] = Field(
        default=timedelta(minutes=30),
        description="Give a log request up (cancel it) when not ready after this long.",
    )

    @field_validator("goal_ids")
    @classmethod
    def _check_goal_ids(cls, value: list[int]) -> list[int]:
        bad = [g for g in value if not 0 < g < 2**32]
        if bad:
            raise ValueError(f"{bad[0]} is not a Metrica goal id (a positive number)")
        return list(dict.fromkeys(value))

    @field_validator("poll_interval")
    @classmethod
    def _check_poll(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be more than 0s")
        return value
