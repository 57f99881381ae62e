"""The one query this source runs, its parameters, and a result row → record.

The SQL text is fixed but for the dataset's name (validated, quoted with backticks):
every value that comes from the config or the cursor — event names, the table suffix
range, the intraday dates, the parameter keys — goes in as a named query parameter.
The query selects a fixed set of small columns and, of ``event_params`` and
``user_properties``, only the keys the configured fields name (BigQuery bills the
whole ``event_params`` column either way: ``page_location`` lives there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from google.cloud import bigquery

from convsync.sources.ga4.config import COLUMNS, EVENT_PARAM, USER_PROPERTY

DAILY_PREFIX = "events_"
INTRADAY_PREFIX = "events_intraday_"
SUFFIX_FORMAT = "%Y%m%d"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_VALUE = (
    "COALESCE({v}.string_value, CAST({v}.int_value AS STRING), "
    "CAST({v}.double_value AS STRING), CAST({v}.float_value AS STRING))"
)

# only the backticked dataset name (validated in config.py) is formatted in; values are
# query parameters
_SELECT = f"""SELECT
  _TABLE_SUFFIX AS table_suffix,
  {{intraday}} AS intraday,
  event_timestamp,
  event_name,
  stream_id,
  user_pseudo_id,
  user_id,
  ecommerce.transaction_id AS transaction_id,
  ecommerce.purchase_revenue AS purchase_revenue,
  collected_traffic_source.gclid AS collected_gclid,
  ARRAY(SELECT AS STRUCT p.key, {_VALUE.format(v="p.value")} AS value
        FROM UNNEST(event_params) AS p WHERE p.key IN UNNEST(@param_keys)) AS params,
  ARRAY(SELECT AS STRUCT u.key, {_VALUE.format(v="u.value")} AS value
        FROM UNNEST(user_properties) AS u WHERE u.key IN UNNEST(@property_keys)) AS user_props
FROM `{{table}}`
WHERE {{suffixes}}
  AND event_name IN UNNEST(@events)"""  # noqa: S608 (see above)

_DAILY_SUFFIXES = "_TABLE_SUFFIX BETWEEN @first_suffix AND @last_suffix"
_INTRADAY_SUFFIXES = "_TABLE_SUFFIX IN UNNEST(@intraday_suffixes)"
# by table date first: a chunk's cursor can then name the last complete daily table
_ORDER = "ORDER BY table_suffix, intraday, event_timestamp, event_name, user_pseudo_id"


def suffix(day: date) -> str:
    return day.strftime(SUFFIX_FORMAT)


def suffix_date(text: str) -> date:
    return datetime.strptime(text, SUFFIX_FORMAT).date()


def shift(text: str, days: int) -> str:
    return suffix(suffix_date(text) + timedelta(days=days))


@dataclass(frozen=True, slots=True)
class EventQuery:
    """What one pull reads: daily tables ``first``…``last`` (none if ``first`` is None)
    and the intraday tables of ``intraday`` dates."""

    first: str | None
    last: str | None
    intraday: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return self.first is None and not self.intraday

    def describe(self) -> str:
        parts = [f"events_{self.first}…{self.last}"] if self.first else []
        parts += [f"events_intraday_{', '.join(self.intraday)}"] if self.intraday else []
        return " and ".join(parts)


def build_sql(data_project: str, dataset: str, query: EventQuery) -> str:
    base = f"{data_project}.{dataset}."
    parts = []
    if query.first is not None:
        parts.append(
            _SELECT.format(intraday="FALSE", table=base + "events_*", suffixes=_DAILY_SUFFIXES)
        )
    if query.intraday:
        parts.append(
            _SELECT.format(
                intraday="TRUE", table=base + "events_intraday_*", suffixes=_INTRADAY_SUFFIXES
            )
        )
    return "\nUNION ALL\n".join(parts) + "\n" + _ORDER


def build_parameters(
    query: EventQuery, events: Sequence[str], specs: Mapping[str, list[str]]
) -> list[bigquery.ArrayQueryParameter | bigquery.ScalarQueryParameter]:
    all_specs = [s for chosen in specs.values() for s in chosen]
    param_keys = sorted(
        {s.removeprefix(EVENT_PARAM) for s in all_specs if s.startswith(EVENT_PARAM)}
    )
    property_keys = sorted(
        {s.removeprefix(USER_PROPERTY) for s in all_specs if s.startswith(USER_PROPERTY)}
    )
    params: list[bigquery.ArrayQueryParameter | bigquery.ScalarQueryParameter] = [
        bigquery.ArrayQueryParameter("events", "STRING", list(events)),
        bigquery.ArrayQueryParameter("param_keys", "STRING", param_keys),
        bigquery.ArrayQueryParameter("property_keys", "STRING", property_keys),
    ]
    if query.first is not None:
        params.append(bigquery.ScalarQueryParameter("first_suffix", "STRING", query.first))
        params.append(bigquery.ScalarQueryParameter("last_suffix", "STRING", query.last))
    if query.intraday:
        params.append(
            bigquery.ArrayQueryParameter("intraday_suffixes", "STRING", list(query.intraday))
        )
    return params


def record_id(row: Mapping[str, Any]) -> str:
    """The same for one event whether read from the intraday or the daily table, and on
    every re-read: GA4's own dedup key (stream, user, name, timestamp, transaction)."""
    key = "\x1f".join(
        str(row.get(name) or "")
        for name in (
            "stream_id",
            "user_pseudo_id",
            "event_name",
            "event_timestamp",
            "transaction_id",
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def occurred_at(micros: int) -> datetime:
    """``event_timestamp`` (µs since the epoch, UTC), exactly."""
    return EPOCH + timedelta(microseconds=micros)


def field_value(row: Mapping[str, Any], spec: str) -> str:
    """The text of one field spec in a result row ("" when absent)."""
    if spec.startswith(EVENT_PARAM):
        return _keyed(row.get("params"), spec.removeprefix(EVENT_PARAM))
    if spec.startswith(USER_PROPERTY):
        return _keyed(row.get("user_props"), spec.removeprefix(USER_PROPERTY))
    value = row.get(COLUMNS[spec])
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value).strip()


def _keyed(items: Any, key: str) -> str:
    for item in items or ():
        if item.get("key") == key:
            value = item.get("value")
            if value is not None and str(value).strip():
                return str(value).strip()
    return ""
