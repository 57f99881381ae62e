"""``GoogleAdsService/Search`` of the fake: the account's offline conversion upload
summaries at conversion action level, answered to the GAQL query the client sends.

The query is parsed as far as convsync's needs go — ``SELECT`` fields, ``FROM`` one
resource, ``WHERE`` conditions joined by ``AND`` (``field = 'VALUE'``, ``field = 123``,
``field IN (1, 2)``) — and what Google would refuse is refused with its query errors: a
resource other than the summaries, a field that is not the resource's, a condition on a
field that cannot be filtered, an empty ``IN`` list. Only the selected fields come back
(and ``resource_name``, which Google always returns), on a single page.

    fake.add_summary(555, days={"2026-11-20": (8, 2, 1)}, alerts={"CLICK_NOT_FOUND": 0.2})
    fake.searches[-1].query.fields  # what the client asked for
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.ads.googleads.v26.resources.types import (
    offline_conversion_upload_client_summary as client_summary,
)
from google.ads.googleads.v26.resources.types.offline_conversion_upload_conversion_action_summary import (
    OfflineConversionUploadConversionActionSummary as ActionSummary,
)
from google.ads.googleads.v26.services.types import google_ads_service as gas
from google.protobuf import field_mask_pb2

from .faults import Err

RESOURCE = "offline_conversion_upload_conversion_action_summary"
#: the fields of the resource that may stand in WHERE (the reference's "Filterable")
FILTERABLE = frozenset(
    {
        "client",
        "conversion_action_id",
        "conversion_action_name",
        "status",
        "total_event_count",
        "successful_event_count",
        "pending_event_count",
        "last_upload_date_time",
        "resource_name",
    }
)
_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)(?:\s+WHERE\s+(?P<where>.+?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(r"^\s*(?P<field>[\w.]+)\s*(?P<op>=|IN)\s*(?P<value>.+?)\s*$", re.I)


class QueryRefused(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.error = Err("query_error", name)


@dataclass(frozen=True)
class ParsedQuery:
    """A GAQL query as the fake understood it."""

    text: str
    resource: str
    #: the SELECT fields without the resource prefix (``conversion_action_id`` …)
    fields: tuple[str, ...]
    #: field (without prefix) → the values it must have (one for ``=``)
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def parse(text: str) -> ParsedQuery:
    """``text`` parsed, or ``QueryRefused`` with the query error Google would give."""
    match = _QUERY.match(text)
    if match is None:
        raise QueryRefused("UNEXPECTED_INPUT")
    resource = match["resource"]
    if resource != RESOURCE:
        raise QueryRefused("PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE")
    fields = tuple(_own_field(f.strip()) for f in match["fields"].split(","))
    where: dict[str, tuple[str, ...]] = {}
    for condition in re.split(r"\s+AND\s+", match["where"] or "", flags=re.I):
        if not condition.strip():
            continue
        found = _CONDITION.match(condition)
        if found is None:
            raise QueryRefused("BAD_OPERATOR")
        name = _own_field(found["field"])
        if name not in FILTERABLE:
            raise QueryRefused("PROHIBITED_FIELD_IN_WHERE_CLAUSE")
        where[name] = _values(found["op"].upper(), found["value"])
    return ParsedQuery(text, resource, fields, where)


def _own_field(qualified: str) -> str:
    resource, _, name = qualified.partition(".")
    if resource != RESOURCE or name not in ActionSummary.meta.fields:
        raise QueryRefused("UNRECOGNIZED_FIELD")
    return name


def _values(op: str, text: str) -> tuple[str, ...]:
    if op == "IN":
        if not (text.startswith("(") and text.endswith(")")):
            raise QueryRefused("EXPECTED_LIST")
        values = tuple(_value(v) for v in text[1:-1].split(",") if v.strip())
        if not values:
            raise QueryRefused("PROHIBITED_EMPTY_LIST_IN_CONDITION")
        return values
    return (_value(text),)


def _value(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if not re.fullmatch(r"-?[0-9]+|[A-Z_]+", text):
        raise QueryRefused("BAD_VALUE")
    return text


def summary(
    customer_id: str,
    action_id: int,
    *,
    days: Mapping[str, tuple[int, int, int]],
    alerts: Mapping[str, float] | None = None,
    client: str = "GOOGLE_ADS_API",
    status: str = "EXCELLENT",
    name: str | None = None,
    last_upload: str | None = None,
) -> ActionSummary:
    """One action's summary: ``days`` upload date → (successful, failed, pending);
    ``alerts`` conversion upload error name → share."""
    daily = [
        client_summary.OfflineConversionSummary(
            upload_date=day, successful_count=s, failed_count=f, pending_count=p
        )
        for day, (s, f, p) in sorted(days.items(), reverse=True)
    ]
    return ActionSummary(
        resource_name=(
            f"customers/{customer_id}/offlineConversionUploadConversionActionSummaries/"
            f"{action_id}~{client}"
        ),
        client=client,
        conversion_action_id=action_id,
        conversion_action_name=name or f"Offline purchase {action_id}",
        status=status,
        total_event_count=sum(sum(c) for c in days.values()),
        successful_event_count=sum(c[0] for c in days.values()),
        pending_event_count=sum(c[2] for c in days.values()),
        last_upload_date_time=last_upload or (f"{max(days)} 10:00:00" if days else ""),
        daily_summaries=daily,
        alerts=[
            client_summary.OfflineConversionAlert(
                error=client_summary.OfflineConversionError(conversion_upload_error=code),
                error_percentage=share,
            )
            for code, share in (alerts or {}).items()
        ],
    )


def answer(query: ParsedQuery, summaries: Sequence[ActionSummary]) -> gas.SearchGoogleAdsResponse:
    """The rows of ``summaries`` that match the query, with the selected fields only."""
    rows = []
    for found in summaries:
        if not all(_text(getattr(found, f)) in values for f, values in query.where.items()):
            continue
        shown = ActionSummary(resource_name=found.resource_name)
        for name in query.fields:
            setattr(shown, name, getattr(found, name))
        rows.append(gas.GoogleAdsRow(offline_conversion_upload_conversion_action_summary=shown))
    mask = field_mask_pb2.FieldMask(paths=[f"{RESOURCE}.{f}" for f in query.fields])
    return gas.SearchGoogleAdsResponse(results=rows, field_mask=mask)


def _text(value: Any) -> str:
    return str(getattr(value, "name", value))
