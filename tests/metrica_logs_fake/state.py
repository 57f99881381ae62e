"""What the fake Metrica Logs API knows and how it answers, without HTTP.

Shapes follow the Logs API reference (reference/yandex-metrica.md §9, ru/logs/openapi/*):
``{"log_request": {"request_id", "counter_id", "source", "date1", "date2", "fields",
"status", "size", "parts": [{"part_number", "size"}], "attribution"}}``, evaluate's
``{"log_request_evaluation": {"possible", "max_possible_day_quantity"}}``, the list's
``{"requests": […]}``, the counter's ``{"counter": {"id", "time_zone_name", "goals"}}``
and errors ``{"errors": [{"error_type", "message"}], "code", "message"}``. Parts are TSV
with a header line, escaped as ClickHouse's TabSeparated (arrays ``[1,2]``, ``['a']``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .tsv import visits_tsv

COUNTER_ID = 44_444_444
Answer = tuple[int, Any, dict[str, str]]  # status, JSON body or TSV bytes, headers

#: the visit fields the fake knows (a subset of ru/logs/fields/visits) …
PLAIN_FIELDS = frozenset(
    {
        "ym:s:visitID", "ym:s:counterID", "ym:s:date", "ym:s:dateTime", "ym:s:dateTimeUTC",
        "ym:s:clientID", "ym:s:startURL", "ym:s:endURL", "ym:s:goalsID",
        "ym:s:goalsSerialNumber", "ym:s:goalsDateTime", "ym:s:goalsPrice", "ym:s:goalsOrder",
        "ym:s:goalsCurrency", "ym:s:purchaseID", "ym:s:referer", "ym:s:pageViews",
    }
)  # fmt: skip
#: … and those that take an attribution model, ``ym:s:<model>UTMSource``
ATTRIBUTED = frozenset({"UTMSource", "UTMMedium", "UTMCampaign", "UTMContent", "UTMTerm",
                        "TrafficSource", "GCLID"})  # fmt: skip
MODELS = {
    "FIRST": "first", "LAST": "last", "LASTSIGN": "lastsign",
    "LAST_YANDEX_DIRECT_CLICK": "last_yandex_direct_click",
    "CROSS_DEVICE_FIRST": "cross_device_first", "CROSS_DEVICE_LAST": "cross_device_last",
    "CROSS_DEVICE_LAST_SIGNIFICANT": "cross_device_last_significant",
    "CROSS_DEVICE_LAST_YANDEX_DIRECT_CLICK": "cross_device_last_yandex_direct_click",
    "AUTOMATIC": "automatic",
}  # fmt: skip

ERRORS: dict[str, tuple[int, str]] = {
    "quota_requests_by_uid": (429, "Превышен лимит количества запросов к API в сутки для пользователя"),
    "quota_requests_by_ip": (429, "Превышен лимит количества запросов к API в секунду для IP адреса"),
    "quota_parallel_requests": (429, "Превышен лимит количества параллельных запросов к API"),
    "backend_error": (503, "Backend error"),
    "invalid_token": (403, "Invalid oauth_token"),
    "access_denied": (403, "Access is denied"),
}  # fmt: skip


def error(status: int, error_type: str, message: str) -> Answer:
    body = {"errors": [{"error_type": error_type, "message": message}], "code": status,
            "message": message}  # fmt: skip
    return status, body, {}


@dataclass
class Visit:
    """One visit: ``start`` is in the counter's time zone, goal times as Metrica writes
    them (``goals_tz``); ``goals`` are (id, time, price × 1000, order, currency)."""

    visit_id: int
    start: datetime  # naive, counter's time zone
    client_id: str = "1700000000123456789"
    start_url: str = "https://shop.example/"
    goals: list[tuple[int, str, int, str, str]] = field(default_factory=list)
    purchases: list[str] = field(default_factory=list)
    #: attribution prefix (lastsign, first, …) → {UTMSource: …}
    utm: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def day(self) -> date:
        return self.start.date()


@dataclass
class LogRequest:
    request_id: int
    date1: str
    date2: str
    fields: list[str]
    attribution: str
    status: str = "created"
    polls_left: int = 0
    fail: bool = False
    parts: list[bytes] = field(default_factory=list)

    def describe(self, counter_id: int) -> dict[str, Any]:
        size = sum(len(p) for p in self.parts)
        return {
            "request_id": self.request_id, "counter_id": counter_id, "source": "visits",
            "date1": self.date1, "date2": self.date2, "fields": list(self.fields),
            "status": self.status, "size": size, "attribution": self.attribution,
            "parts": [{"part_number": n, "size": len(p)} for n, p in enumerate(self.parts)],
        }  # fmt: skip


@dataclass
class Fault:
    """An answer given instead of the real one to the next ``times`` requests of
    ``kind`` (counter, list, evaluate, create, info, download, clean, cancel, any)."""

    kind: str
    status: int
    error_type: str | None = None
    message: str = ""
    times: int = 1
    retry_after: str | None = None


@dataclass
class Call:
    kind: str
    method: str
    path: str
    query: dict[str, str]
    status: int = 0
    request_id: int | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class LogsState:
    token: str = field(default_factory=lambda: f"y0_fake-logs-{secrets.token_hex(12)}")
    counter_id: int = COUNTER_ID
    time_zone_name: str = "Europe/Moscow"
    goals: list[dict[str, Any]] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: polls answered ``created`` before a request is ``processed``
    polls_to_process: int = 0
    #: the next this many requests end ``processing_failed``
    fail_next: int = 0
    #: data rows per part (a request with more rows has several parts)
    rows_per_part: int = 1000
    #: the most days evaluate says one request may cover
    max_days: int = 365
    #: stored bytes (processed, not cleaned) past which evaluate says 0 days
    storage_limit: int = 10 * 2**30
    #: the next this many downloads stop half-way (the connection closes)
    break_downloads: int = 0
    #: seconds a download takes before its answer starts (requests overlap)
    download_delay: float = 0.0
    #: fields this counter's API refuses as unknown
    unknown_fields: set[str] = field(default_factory=set)
    requests: dict[int, LogRequest] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    next_id: int = 7000
    lock: threading.RLock = field(default_factory=threading.RLock)

    # --- test control ----------------------------------------------------------------

    def fail(self, kind: str, status: int, error_type: str | None = None, **kw: Any) -> None:
        message = kw.pop("message", None)
        if message is None:
            message = ERRORS.get(error_type or "", (status, f"HTTP {status}"))[1]
        self.faults.append(Fault(kind, status, error_type, message, **kw))

    def calls_of(self, kind: str) -> list[Call]:
        return [c for c in self.calls if c.kind == kind]

    def today(self) -> date:
        return self.clock().astimezone(ZoneInfo(self.time_zone_name)).date()

    def unclean(self) -> list[LogRequest]:
        """Requests still holding the counter's storage or still queued."""
        return [r for r in self.requests.values() if r.status in ("created", "processed",
                                                                  "processing_failed")]  # fmt: skip

    # --- answering -------------------------------------------------------------------

    def answer(self, call: Call, headers: Mapping[str, str]) -> Answer:
        with self.lock:
            self.calls.append(call)
            result = self._answer(call, headers)
        call.status = result[0]
        return result

    def _answer(self, call: Call, headers: Mapping[str, str]) -> Answer:
        auth = headers.get("Authorization")
        if auth is None:
            return error(401, "unauthorized", "Unauthorized")
        if auth != f"OAuth {self.token}":
            return error(403, "invalid_token", "Invalid oauth_token")
        for fault in self.faults:
            if fault.times > 0 and fault.kind in (call.kind, "any"):
                fault.times -= 1
                status, body, _ = error(fault.status, fault.error_type or "backend_error",
                                        fault.message)  # fmt: skip
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return status, body, extra
        handler = getattr(self, f"_{call.kind}", None)
        if handler is None:
            return error(404, "not_found", f"No such method: {call.method} {call.path}")
        result: Answer = handler(call)
        return result

    def _counter(self, call: Call) -> Answer:
        counter = {"id": self.counter_id, "status": "Active", "name": "Shop",
                   "time_zone_name": self.time_zone_name, "time_zone_offset": 180}  # fmt: skip
        if "goals" in call.query.get("field", ""):
            counter["goals"] = self.goals
        return 200, {"counter": counter}, {}

    def _list(self, call: Call) -> Answer:
        described = [r.describe(self.counter_id) for r in self.requests.values()]
        return 200, {"requests": described}, {}

    def _checked(self, query: Mapping[str, str]) -> Answer | None:
        for name in ("date1", "date2", "fields", "source"):
            if not query.get(name):
                return error(400, "missing_parameter", f"Не указан обязательный параметр {name}")
        if query["source"] != "visits":
            return error(400, "invalid_parameter", f"Unknown source {query['source']}")
        try:
            d1, d2 = date.fromisoformat(query["date1"]), date.fromisoformat(query["date2"])
        except ValueError:
            return error(400, "invalid_parameter", "Wrong date format")
        if d2 >= self.today():
            return error(400, "invalid_parameter",
                         "Incorrect date2: it cannot be today or a later day")  # fmt: skip
        if d1 > d2 or (d2 - d1).days >= 366:
            return error(400, "invalid_parameter", "Incorrect period: at most one year")
        model = query.get("attribution", "LASTSIGN")
        if model not in MODELS:
            return error(400, "invalid_parameter", f"Unknown attribution {model}")
        if len(query["fields"]) > 3000:
            return error(400, "invalid_parameter", "fields is longer than 3000 characters")
        for name in query["fields"].split(","):
            if name in self.unknown_fields or not _known(name):
                return error(400, "invalid_parameter", f"Неизвестное поле: {name}")
        return None

    def _evaluate(self, call: Call) -> Answer:
        problem = self._checked(call.query)
        if problem is not None:
            return problem
        days = (
            date.fromisoformat(call.query["date2"]) - date.fromisoformat(call.query["date1"])
        ).days + 1
        stored = sum(len(p) for r in self.requests.values() if r.status == "processed"
                     for p in r.parts)  # fmt: skip
        most = 0 if stored >= self.storage_limit else self.max_days
        answer = {"possible": days <= most, "max_possible_day_quantity": most}
        return 200, {"log_request_evaluation": answer}, {}

    def _create(self, call: Call) -> Answer:
        problem = self._checked(call.query)
        if problem is not None:
            return problem
        self.next_id += 1
        fail = self.fail_next > 0
        self.fail_next -= 1 if fail else 0
        request = LogRequest(
            self.next_id, call.query["date1"], call.query["date2"],
            call.query["fields"].split(","), call.query.get("attribution", "LASTSIGN"),
            polls_left=self.polls_to_process, fail=fail,
        )  # fmt: skip
        self.requests[request.request_id] = request
        call.request_id = request.request_id
        return 200, {"log_request": request.describe(self.counter_id)}, {}

    def _request(self, call: Call) -> LogRequest | Answer:
        request = self.requests.get(call.request_id or -1)
        if request is None:
            return error(404, "not_found", f"Запрос логов {call.request_id} не найден")
        return request

    def _info(self, call: Call) -> Answer:
        request = self._request(call)
        if not isinstance(request, LogRequest):
            return request
        if request.status == "created":
            request.polls_left -= 1
            if request.polls_left < 0:
                if request.fail:
                    request.status = "processing_failed"
                else:
                    request.status = "processed"
                    request.parts = self._parts(request)
        return 200, {"log_request": request.describe(self.counter_id)}, {}

    def _clean(self, call: Call) -> Answer:
        request = self._request(call)
        if not isinstance(request, LogRequest):
            return request
        if request.status not in ("processed", "processing_failed"):
            return error(400, "invalid_parameter",
                         f"Only processed requests can be cleaned (status {request.status})")  # fmt: skip
        request.status, request.parts = "cleaned_by_user", []
        return 200, {"log_request": request.describe(self.counter_id)}, {}

    def _cancel(self, call: Call) -> Answer:
        request = self._request(call)
        if not isinstance(request, LogRequest):
            return request
        if request.status not in ("created", "awaiting_retry"):
            return error(400, "invalid_parameter",
                         f"Only requests not processed can be canceled (status {request.status})")  # fmt: skip
        request.status = "canceled"
        return 200, {"log_request": request.describe(self.counter_id)}, {}

    def _download(self, call: Call) -> Answer:
        request = self._request(call)
        if not isinstance(request, LogRequest):
            return request
        part = int(call.query.get("part", "-1"))
        if request.status != "processed" or not 0 <= part < len(request.parts):
            return error(
                400, "invalid_parameter", f"No part {part} of request {request.request_id}"
            )
        return (
            200,
            request.parts[part],
            {"Content-Type": "text/tab-separated-values; charset=utf-8"},
        )

    def _parts(self, request: LogRequest) -> list[bytes]:
        d1, d2 = date.fromisoformat(request.date1), date.fromisoformat(request.date2)
        chosen = [v for v in self.visits if d1 <= v.day <= d2]
        prefix = MODELS[request.attribution]
        size = max(1, self.rows_per_part)
        groups = [chosen[i : i + size] for i in range(0, len(chosen), size)] or [[]]
        return [visits_tsv(request.fields, group, prefix) for group in groups]


def _known(name: str) -> bool:
    if name in PLAIN_FIELDS:
        return True
    if not name.startswith("ym:s:"):
        return False
    rest = name[5:]
    for prefix in ("<attribution>", *MODELS.values()):
        if rest.startswith(prefix) and rest[len(prefix) :] in ATTRIBUTED:
            return True
    return False


def days_ago(state: LogsState, days: int, at: str = "12:00:00") -> datetime:
    """A naive counter-time moment ``days`` before the fake's today."""
    day = state.today() - timedelta(days=days)
    return datetime.fromisoformat(f"{day.isoformat()} {at}")
