"""Config of the ``ga4_bigquery`` source (the GA4 BigQuery export, read with
``google-cloud-bigquery``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from convsync.core.configtypes import (
    BaseUrl,
    ByteSize,
    Duration,
    StrictModel,
    TimeZoneName,
    WholeNumber,
    Within,
)

#: field spec → the result column the query always selects for it (query.py)
COLUMNS: dict[str, str] = {
    "event_name": "event_name",
    "stream_id": "stream_id",
    "user_pseudo_id": "user_pseudo_id",
    "user_id": "user_id",
    "ecommerce.transaction_id": "transaction_id",
    "ecommerce.purchase_revenue": "purchase_revenue",
    "collected_traffic_source.gclid": "collected_gclid",
}
EVENT_PARAM = "event_params."
USER_PROPERTY = "user_properties."

#: what a record carries unless ``fields`` says otherwise; a list is tried in order, the
#: first non-empty value wins (a purchase's revenue, else a lead's ``value`` parameter)
DEFAULT_FIELDS: dict[str, str | list[str]] = {
    "event_name": "event_name",
    "user_pseudo_id": "user_pseudo_id",
    "user_id": "user_id",
    "order_id": "ecommerce.transaction_id",
    "purchase_id": "ecommerce.transaction_id",
    "value": ["ecommerce.purchase_revenue", "event_params.value"],
    "currency": "event_params.currency",
    "gclid": "collected_traffic_source.gclid",
    "landing_url": "event_params.page_location",
}

_KEY = re.compile(r"[A-Za-z0-9_]{1,100}")
_EVENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
# a project id (optionally domain-scoped: example.com:my-project), then a dataset name
_DATASET = re.compile(r"(?:([a-z][a-z0-9.:-]{3,61}[a-z0-9])\.)?([A-Za-z0-9_]{1,1024})")
FieldSpec = str | list[str] | None


def check_spec(spec: str) -> str:
    """A field spec: one of ``COLUMNS``, ``event_params.<key>`` or ``user_properties.<key>``."""
    spec = spec.strip()
    if spec in COLUMNS:
        return spec
    for prefix in (EVENT_PARAM, USER_PROPERTY):
        if spec.startswith(prefix) and _KEY.fullmatch(spec.removeprefix(prefix)):
            return spec
    raise ValueError(
        f"{spec!r} is not a GA4 export column this source reads: use one of "
        f"{', '.join(COLUMNS)}, event_params.<key> or user_properties.<key>"
    )


def merged_fields(fields: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Record field → its specs in order: the defaults, overridden by ``fields``, the
    ones set to null or ``""`` left out."""
    merged: dict[str, Any] = {**DEFAULT_FIELDS, **dict(fields or {})}
    out: dict[str, list[str]] = {}
    for name, spec in merged.items():
        specs = [spec] if isinstance(spec, str) else list(spec or [])
        specs = [str(s).strip() for s in specs if s and str(s).strip()]
        if specs:
            out[str(name)] = specs
    return out


class Ga4BigQuerySourceConfig(StrictModel):
    """Configured events of one GA4 property's BigQuery export."""

    @staticmethod
    def provided_fields(fields: Mapping[str, Any]) -> set[str]:
        """The record fields this source yields for these raw ``fields`` (the config
        loader's goal cross-check)."""
        return set(merged_fields(fields))

    type: Literal["ga4_bigquery"]
    dataset: str = Field(
        description="The export's dataset: <project>.analytics_<property id>, or "
        "analytics_<property id> in the project that runs the queries."
    )
    events: list[str] = Field(
        min_length=1, description="GA4 event names to pull, like purchase or generate_lead."
    )
    project: str | None = Field(
        default=None,
        description="GCP project that runs (and is billed for) the query jobs; default: "
        "the service account's or application default credentials' project.",
    )
    intraday: bool = Field(
        default=False,
        description="Also read events_intraday_* (streaming export) for the dates that "
        "have no daily table yet.",
    )
    credentials_file: str | None = Field(
        default=None,
        description="Service-account JSON key (relative to the config file); default: "
        "application default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata).",
    )
    api_endpoint: BaseUrl | None = Field(
        default=None, description="BigQuery API endpoint; default Google's (tests: a fake)."
    )
    location: str | None = Field(
        default=None, description="Location of the dataset (US, EU, europe-west3, …)."
    )
    maximum_bytes_billed: ByteSize = Field(
        default=10 * 10**9,
        gt=0,
        description="Refuse a query estimated (dry run) to process more, and cap the job "
        "itself at it (10GB, 500MB, 1TiB or bytes).",
    )
    lookback_days: WholeNumber = Field(
        default=3,
        ge=0,
        le=30,
        description="Each pull reads again the daily tables of this many days before the "
        "last one read (GA4 adds late events to a daily table for 3 days).",
    )
    start_date: date | None = Field(
        default=None,
        description="First date (table suffix) the first pull reads; default: 30 days "
        "before the first run.",
    )
    fields: dict[str, FieldSpec] = Field(
        default_factory=dict,
        description="Record field → export column (event_name, user_pseudo_id, user_id, "
        "stream_id, ecommerce.transaction_id, ecommerce.purchase_revenue, "
        "collected_traffic_source.gclid), event_params.<key> or user_properties.<key>, "
        "or a list tried in order; merged over the defaults, null switches one off.",
    )
    timezone: TimeZoneName | None = Field(
        default=None,
        description="The GA4 property's reporting time zone (its table dates); default: "
        "the top-level one.",
    )
    query_timeout: Annotated[Duration, Within("1s", "6h")] = Field(
        default=timedelta(minutes=10),
        description="Longest wait for one query (the job, its pages and retries of "
        "transient errors).",
    )

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[str]) -> list[str]:
        names = [v.strip() for v in value]
        for name in names:
            if not _EVENT.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a GA4 event name (letters, digits and _, starting "
                    "with a letter, at most 40)"
                )
        return list(dict.fromkeys(names))

    @field_validator("dataset")
    @classmethod
    def _check_dataset(cls, value: str) -> str:
        value = value.strip()
        if not _DATASET.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a dataset: write it like my-project.analytics_123456789"
            )
        return value

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        out: dict[str, FieldSpec] = {}
        for name, spec in value.items():
            if not _KEY.fullmatch(name):
                raise ValueError(f"{name!r}: a record field name is letters, digits and _")
            try:
                if isinstance(spec, list):
                    out[name] = [check_spec(s) for s in spec]
                else:
                    out[name] = check_spec(spec) if spec else None
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return out

    def table_family(self) -> tuple[str | None, str]:
        """``(project or None, dataset name)`` of ``dataset``."""
        match = _DATASET.fullmatch(self.dataset)
        assert match is not None  # validated
        return match.group(1), match.group(2)
