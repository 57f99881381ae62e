"""A fake amoCRM account on 127.0.0.1 (a random port), in a thread:
``with fake_amo() as fake: …`` (pytest or not).

Response shapes follow the API v4 reference: HAL lists (``_page``, ``_links.next`` while
a page is full, ``_embedded.<items>``), 204 No Content for an empty page, events newest
first, ``custom_fields_values`` on leads and contacts, ``_embedded.contacts`` with
``with=contacts``; the OAuth token endpoint rotates refresh tokens (a spent one answers
400). Failures are injected per path (``fail``), every request is recorded with its
arrival time (``requests``) so a test can check the pacing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.local_server import LocalServer

TOKEN = "long-lived-token-0123456789"
CLIENT_ID = "client-abc"
CLIENT_SECRET = "client-secret-0123456789"
FIRST_REFRESH = "refresh-token-0000-initial"
PIPELINE = 7001
WON = 142
LEAD_FIELDS = [
    {"id": 501, "name": "GCLID", "code": "GCLID", "type": "tracking_data"},
    {"id": 502, "name": "YCLID", "code": "YCLID", "type": "tracking_data"},
    {"id": 503, "name": "_YM_UID", "code": "_YM_UID", "type": "tracking_data"},
    {"id": 504, "name": "UTM_SOURCE", "code": "UTM_SOURCE", "type": "tracking_data"},
    {"id": 505, "name": "Клик VK", "code": None, "type": "text"},
]
CONTACT_FIELDS = [
    {"id": 601, "name": "Телефон", "code": "PHONE", "type": "multitext"},
    {"id": 602, "name": "Email", "code": "EMAIL", "type": "multitext"},
]


@dataclass
class Seen:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    query: list[tuple[str, str]]


@dataclass
class Failure:
    path: str
    status: int
    retry_after: str | None
    times: int


@dataclass
class FakeAccount:
    events: list[dict[str, Any]] = field(default_factory=list)
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    pipelines: dict[int, list[int]] = field(default_factory=lambda: {PIPELINE: [1, 2, WON, 143]})
    access_tokens: set[str] = field(default_factory=lambda: {TOKEN})
    refresh_token: str = FIRST_REFRESH
    spent_refresh: set[str] = field(default_factory=set)
    refreshes: int = 0
    events_limit_cap: int = 100


class FakeAmo(LocalServer):
    def __init__(self) -> None:
        self.account = FakeAccount()
        self.requests: list[Seen] = []
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        self._next_event = 0
        super().__init__(self._handler_class(), "fake-amo")

    # -- control ---------------------------------------------------------------------

    def source_config(self, **extra: Any) -> dict[str, Any]:
        """An ``amocrm`` source config for this fake (long-lived token unless told)."""
        return {
            "type": "amocrm",
            "subdomain": "test",
            "pipeline_id": PIPELINE,
            "auth": {"token": TOKEN},
            "api_base_url": self.base_url,
            **extra,
        }

    def fail(
        self, path: str, status: int, *, retry_after: str | None = None, times: int = 1
    ) -> None:
        """The next ``times`` requests to ``path`` (without the query) answer ``status``."""
        self.failures.append(Failure(path, status, retry_after, times))

    def expire_access_tokens(self) -> None:
        self.account.access_tokens.clear()

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def add_won_lead(
        self,
        lead_id: int,
        won_at: int,
        *,
        price: int | None = 1000,
        gclid: str | None = None,
        yclid: str | None = None,
        vk_click: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        contact_id: int | None = None,
        status_id: int = WON,
        event_id: str | None = None,
        with_lead: bool = True,
    ) -> str:
        """A lead moved into the won status at ``won_at`` (its event and, if
        ``with_lead``, the lead and its contact); the event id."""
        self._next_event += 1
        eid = event_id or f"01ev{self._next_event:022d}"
        self.account.events.append(
            {
                "id": eid,
                "type": "lead_status_changed",
                "entity_id": lead_id,
                "entity_type": "lead",
                "created_by": 0,
                "created_at": won_at,
                "value_after": [{"lead_status": {"id": WON, "pipeline_id": PIPELINE}}],
                "value_before": [{"lead_status": {"id": 2, "pipeline_id": PIPELINE}}],
                "account_id": 1,
                "_links": {"self": {"href": f"{self.base_url}/api/v4/events/{eid}"}},
                "_embedded": {"entity": {"id": lead_id}},
            }
        )
        if not with_lead:
            return eid
        values = []
        for fid, code, value in (
            (501, "GCLID", gclid),
            (502, "YCLID", yclid),
            (505, None, vk_click),
        ):
            if value is not None:
                values.append(
                    {"field_id": fid, "field_name": code or "Клик VK", "field_code": code,
                     "field_type": "tracking_data", "values": [{"value": value}]}
                )  # fmt: skip
        contacts = []
        if contact_id is not None:
            contacts.append({"id": contact_id, "is_main": True})
            cvalues = []
            if phone is not None:
                cvalues.append({"field_id": 601, "field_name": "Телефон", "field_code": "PHONE",
                                "field_type": "multitext",
                                "values": [{"value": phone, "enum_id": 1, "enum_code": "WORK"}]})  # fmt: skip
            if email is not None:
                cvalues.append({"field_id": 602, "field_name": "Email", "field_code": "EMAIL",
                                "field_type": "multitext",
                                "values": [{"value": email, "enum_id": 2, "enum_code": "WORK"}]})  # fmt: skip
            self.account.contacts[contact_id] = {
                "id": contact_id, "name": "Покупатель", "first_name": "", "last_name": "",
                "custom_fields_values": cvalues or None, "account_id": 1,
            }  # fmt: skip
        self.account.leads[lead_id] = {
            "id": lead_id, "name": f"Сделка #{lead_id}", "price": price,
            "responsible_user_id": 1, "group_id": 0, "status_id": status_id,
            "pipeline_id": PIPELINE, "loss_reason_id": None, "created_by": 1, "updated_by": 1,
            "created_at": won_at - 3600, "updated_at": won_at, "closed_at": won_at,
            "closest_task_at": None, "is_deleted": False,
            "custom_fields_values": values or None, "score": None, "account_id": 1,
            "_links": {"self": {"href": f"{self.base_url}/api/v4/leads/{lead_id}"}},
            "_embedded": {"tags": [], "companies": [], "contacts": contacts},
        }  # fmt: skip
        return eid

    # -- answers ---------------------------------------------------------------------

    def answer(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qsl(parts.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(Seen(time.monotonic(), method, path, query))
            for failure in self.failures:
                if failure.times > 0 and path == failure.path:
                    failure.times -= 1
                    extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                    return failure.status, extra, {"title": "Injected", "status": failure.status}
            if method == "POST" and path == "/oauth2/access_token":
                return self._token(json.loads(body or b"{}"))
            auth = headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.account.access_tokens:
                return 401, {}, {"title": "Unauthorized", "status": 401, "detail": "Unauthorized"}
            return self._get(path, query)

    def _token(self, form: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        acct = self.account
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return (
                401,
                {},
                {"hint": "Client authentication failed", "title": "invalid_client", "status": 401},
            )
        given = form.get("refresh_token")
        if form.get("grant_type") != "refresh_token" or given != acct.refresh_token:
            return (
                400,
                {},
                {"hint": "Token has been revoked", "title": "invalid_grant", "status": 400},
            )
        acct.refreshes += 1
        acct.spent_refresh.add(given)
        acct.refresh_token = f"refresh-token-{acct.refreshes:04d}-rotated"
        access = f"access-token-{acct.refreshes:04d}-issued"
        acct.access_tokens.add(access)
        return 200, {}, {"token_type": "Bearer", "expires_in": 86400,
                         "access_token": access, "refresh_token": acct.refresh_token}  # fmt: skip

    def _get(self, path: str, query: list[tuple[str, str]]) -> tuple[int, dict[str, str], Any]:
        q: dict[str, list[str]] = {}
        for k, v in query:
            q.setdefault(k, []).append(v)

        def one(name: str, default: str | None = None) -> str | None:
            return q.get(name, [default])[0]

        page = int(one("page", "1") or 1)
        if path.startswith("/api/v4/leads/pipelines/"):
            pid = int(path.rsplit("/", 1)[1])
            if pid not in self.account.pipelines:
                return 404, {}, {"title": "Not found", "status": 404}
            statuses = [
                {"id": s, "name": f"status {s}", "pipeline_id": pid}
                for s in self.account.pipelines[pid]
            ]
            return 200, {}, {"id": pid, "name": "Воронка", "_embedded": {"statuses": statuses}}
        if path in ("/api/v4/leads/custom_fields", "/api/v4/contacts/custom_fields"):
            items = LEAD_FIELDS if path.startswith("/api/v4/leads") else CONTACT_FIELDS
            return self._page(path, "custom_fields", items, page, int(one("limit", "50") or 50))
        if path == "/api/v4/events":
            limit = min(int(one("limit", "100") or 100), self.account.events_limit_cap)
            found = [e for e in self.account.events if self._event_matches(e, q)]
            found.sort(key=lambda e: (e["created_at"], e["id"]), reverse=True)  # newest first
            return self._page(path, "events", found, page, limit)
        if path in ("/api/v4/leads", "/api/v4/contacts"):
            store = self.account.leads if path == "/api/v4/leads" else self.account.contacts
            ids = [int(i) for i in q.get("filter[id][]", [])]
            limit = min(int(one("limit", "50") or 50), 250)
            items = [store[i] for i in ids if i in store] if ids else list(store.values())
            if path == "/api/v4/leads" and "contacts" not in (one("with") or "").split(","):
                items = [
                    {**lead, "_embedded": {**lead["_embedded"], "contacts": []}} for lead in items
                ]
            return self._page(path, path.rsplit("/", 1)[1], items, page, limit)
        return 404, {}, {"title": "Not found", "status": 404}

    @staticmethod
    def _event_matches(event: dict[str, Any], q: dict[str, list[str]]) -> bool:
        if "filter[type]" in q and event["type"] not in q["filter[type]"][0].split(","):
            return False
        since = q.get("filter[created_at][from]")
        until = q.get("filter[created_at][to]")
        if since and event["created_at"] < int(since[0]):
            return False
        if until and event["created_at"] > int(until[0]):
            return False
        pid = q.get("filter[value_after][leads_statuses][0][pipeline_id]")
        sid = q.get("filter[value_after][leads_statuses][0][status_id]")
        after = event["value_after"][0]["lead_status"]
        if pid and after["pipeline_id"] != int(pid[0]):
            return False
        return not (sid and after["id"] != int(sid[0]))

    def _page(
        self, path: str, key: str, items: list[Any], page: int, limit: int
    ) -> tuple[int, dict[str, str], Any]:
        chunk = items[(page - 1) * limit : page * limit]
        if not chunk:
            return 204, {}, None
        links: dict[str, Any] = {"self": {"href": f"{self.base_url}{path}?page={page}"}}
        if len(chunk) == limit:  # like amoCRM: a full page links on, even to a 204
            links["next"] = {"href": f"{self.base_url}{path}?page={page + 1}"}
        return 200, {}, {"_page": page, "_links": links, "_embedded": {key: chunk}}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._serve("GET", b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._serve("POST", self.rfile.read(length))

            def _serve(self, method: str, body: bytes) -> None:
                status, extra, payload = fake.answer(
                    method, self.path, dict(self.headers.items()), body
                )
                data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                kind = "application/hal+json" if status < 400 else "application/problem+json"
                if data:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                if data:
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def fake_amo() -> Iterator[FakeAmo]:
    with FakeAmo() as fake:
        yield fake
