"""What the fake HubSpot knows and how it answers, without HTTP (reference/sources.md §3).

Shapes follow HubSpot's documentation: search answers ``{"total", "results": [{"id",
"properties", "createdAt", "updatedAt", "archived"}], "paging": {"next": {"after"}}}``;
batch reads answer ``{"status": "COMPLETE", "results": […]}`` (207 with ``errors`` when
some ids are unknown); errors are ``{"status": "error", "message", "category",
"correlationId"}`` (429: ``errorType: RATE_LIMIT``, ``policyName``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
DATE_PROPERTIES = {"hs_lastmodifieddate", "closedate", "createdate", "lastmodifieddate"}
SEARCH = "/crm/v3/objects/deals/search"
ASSOCIATIONS = "/crm/v4/associations/deals/contacts/batch/read"
CONTACTS = "/crm/v3/objects/contacts/batch/read"
PIPELINES = "/crm/v3/pipelines/deals"
Answer = tuple[int, dict[str, Any], dict[str, str]]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_ms(value: Any) -> int | None:
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


@dataclass
class Fault:
    """An answer given instead of the real one, ``times`` times, on requests to ``path``."""

    path: str
    status: int
    times: int = 1
    body: dict[str, Any] | None = None
    retry_after: str | None = None


@dataclass
class Seen:
    """One request as it arrived."""

    at: float  # time.monotonic()
    method: str
    path: str
    body: Any
    status: int = 0


def error(status: int, message: str, category: str, **extra: Any) -> Answer:
    body = {"status": "error", "message": message, "category": category,
            "correlationId": str(uuid.uuid4()), **extra}  # fmt: skip
    return status, body, {}


@dataclass
class HubSpotState:
    token: str = TOKEN
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → properties
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)  # deal id → contact ids
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    cap: int = 10_000
    #: the last page still points to a next one, which is empty (seen in the wild)
    trailing_empty_page: bool = False
    missing_scopes: set[str] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- test control --------------------------------------------------------------------

    def add_deal(self, deal_id: str, contacts: list[str] | None = None, **props: Any) -> None:
        props.setdefault("hs_object_id", deal_id)
        self.deals[deal_id] = {k: v for k, v in props.items() if v is not None}
        if contacts:
            self.links[deal_id] = list(contacts)

    def fail(self, path: str, status: int, times: int = 1, **kw: Any) -> None:
        self.faults.append(Fault(path, status, times, **kw))

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    # --- answering -----------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> Answer:
        seen = Seen(time.monotonic(), method, path, body)
        with self.lock:
            self.seen.append(seen)
            result = self._answer(method, path, headers, body)
        seen.status = result[0]
        return result

    def _answer(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> Answer:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return error(401, "Authentication credentials not found. This API supports OAuth "
                         "2.0 authentication", "INVALID_AUTHENTICATION")  # fmt: skip
        for fault in self.faults:
            if fault.path == path and fault.times > 0:
                fault.times -= 1
                return self._fault(fault)
        scope = "crm.objects.contacts.read" if path == CONTACTS else "crm.objects.deals.read"
        if scope in self.missing_scopes:
            return error(
                403, "This app hasn't been granted all required scopes to make this call.",
                "MISSING_SCOPES",
                errors=[{"message": "One or more of the following scopes are required.",
                         "context": {"requiredGranularScopes": [scope]}}],
            )  # fmt: skip
        if method == "POST" and path == SEARCH:
            return self.search(body)
        if method == "POST" and path == ASSOCIATIONS:
            return self.associations(body)
        if method == "POST" and path == CONTACTS:
            return self.batch_contacts(body)
        if method == "GET" and path == PIPELINES:
            return 200, {"results": self.pipelines}, {}
        return error(404, f"no route {method} {path}", "OBJECT_NOT_FOUND")

    def _fault(self, fault: Fault) -> Answer:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.body is not None:
            return fault.status, fault.body, headers
        if fault.status == 429:
            body = {"status": "error", "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                    "policyName": "SECONDLY"}  # fmt: skip
            return 429, body, headers
        return fault.status, {"status": "error", "message": "internal error"}, headers

    def search(self, body: dict[str, Any]) -> Answer:
        limit = int(body.get("limit", 10))
        offset = int(body.get("after") or 0)
        if limit > 200:
            return error(400, "limit must be at most 200", "VALIDATION_ERROR")
        if offset + limit > self.cap:
            return error(400, f"Cannot page past {self.cap} results", "VALIDATION_ERROR")
        groups = body.get("filterGroups") or [{"filters": []}]
        found = [
            (i, p) for i, p in self.deals.items()
            if any(all(_matches(p, f) for f in g.get("filters") or []) for g in groups)
        ]  # fmt: skip
        for sort in reversed(body.get("sorts") or []):
            name = sort["propertyName"]
            found.sort(
                key=lambda item: _sort_key(item[1].get(name), name),
                reverse=sort.get("direction") == "DESCENDING",
            )
        wanted = set(body.get("properties") or []) | {"hs_object_id", "hs_lastmodifieddate",
                                                       "createdate"}  # fmt: skip
        page = found[offset : offset + limit]
        results = [_object(i, p, wanted) for i, p in page]
        answer: dict[str, Any] = {"total": len(found), "results": results}
        if offset + limit < len(found) or (self.trailing_empty_page and page):
            after = str(offset + limit)
            answer["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return 200, answer, {}

    def associations(self, body: dict[str, Any]) -> Answer:
        inputs = body.get("inputs") or []
        if len(inputs) > 1000:
            return error(400, "Batch read may not exceed 1000 inputs", "VALIDATION_ERROR")
        results, errors = [], []
        for item in inputs:
            linked = self.links.get(str(item["id"]))
            if linked:
                to = [
                    {
                        "toObjectId": int(c),
                        "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}
                        ],
                    }
                    for c in linked
                ]
                results.append({"from": {"id": str(item["id"])}, "to": to})
            else:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "context": {"fromObjectId": [str(item["id"])]},
                        "message": f"No contacts is associated to deal {item['id']}.",
                    }
                )
        return _batch(results, errors)

    def batch_contacts(self, body: dict[str, Any]) -> Answer:
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            return error(400, "Batch read may not exceed 100 inputs", "VALIDATION_ERROR")
        wanted = set(body.get("properties") or []) | {"hs_object_id"}
        results, errors = [], []
        for item in inputs:
            props = self.contacts.get(str(item["id"]))
            if props is None:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "context": {"ids": [str(item["id"])]},
                        "message": "not found",
                    }
                )
            else:
                results.append(_object(str(item["id"]), {"hs_object_id": item["id"], **props},
                                       wanted))  # fmt: skip
        return _batch(results, errors)


def _batch(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Answer:
    now = iso(datetime.now(UTC))
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now,
                            "completedAt": now}  # fmt: skip
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return (207 if errors else 200), body, {}


def _object(object_id: str, props: Mapping[str, Any], wanted: set[str]) -> dict[str, Any]:
    shown = {k: (None if props.get(k) is None else str(props[k])) for k in sorted(wanted)}
    return {"id": object_id, "properties": shown, "createdAt": props.get("createdate"),
            "updatedAt": props.get("hs_lastmodifieddate"), "archived": False}  # fmt: skip


def _sort_key(value: Any, name: str) -> tuple[int, Any]:
    if value is None:
        return (1, 0)
    if name in DATE_PROPERTIES:
        return (0, _as_ms(value) or 0)
    return (0, str(value))


def _matches(props: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    name, op = rule["propertyName"], rule["operator"]
    have = props.get(name)
    if op == "HAS_PROPERTY":
        return have is not None
    if op == "NOT_HAS_PROPERTY":
        return have is None
    if have is None:
        return False
    if op in ("IN", "NOT_IN"):
        inside = str(have).lower() in {str(v).lower() for v in rule.get("values") or []}
        return inside if op == "IN" else not inside
    want = rule.get("value")
    if name in DATE_PROPERTIES:
        a, b = _as_ms(have), _as_ms(want)
        return a is not None and b is not None and _compare(op, a, b)
    return _compare(op, str(have).lower(), str(want).lower())


def _compare(op: str, a: Any, b: Any) -> bool:
    return bool(
        {"EQ": a == b, "NEQ": a != b, "GT": a > b, "GTE": a >= b, "LT": a < b, "LTE": a <= b}[op]
    )
