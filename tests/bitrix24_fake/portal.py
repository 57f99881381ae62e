"""The data and rules of a fake Bitrix24 portal: deals, contacts, the deal stage history,
pipelines, the leaky bucket, injected faults and a log of every request.

Answers have the documented shapes: ``{"result": …, "time": {…}}``; list methods give
at most 50 rows (``start=-1``: no ``total``/``next``); ``crm.stagehistory.list`` gives
``{"items": […]}``; ``batch`` gives ``{"result": {"result": {…}, "result_error": [],
"result_total": …, "result_next": …, "result_time": …}}``; errors are
``{"error": CODE, "error_description": text}`` with the documented HTTP status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

PAGE = 50
Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class Fault:
    """An error answered instead of the next matching request(s)."""

    status: int
    error: str
    description: str = ""
    method: str | None = None  # None: any method
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hit:
    at: float  # time.monotonic() when the request arrived
    method: str
    params: dict[str, Any]
    status: int


def php_parse(query: str) -> dict[str, Any]:
    """``filter[@ID][0]=1&select[0]=ID`` → nested dicts, lists where keys are 0..n."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in ("[" + rest).split("[")[1:]] if rest else [])
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        items = {k: _listify(v) for k, v in value.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items
    return value


def _matches(row: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    for key, want in flt.items():
        if key.startswith(">="):
            name = key[2:]
            if name == "CREATED_TIME":
                try:
                    moment = datetime.fromisoformat(str(row[name]))
                except ValueError:
                    return False  # a broken time matches no time filter
                if moment < datetime.fromisoformat(str(want)):
                    return False
            elif float(row[name]) < float(want):
                return False
        elif key.startswith(">"):
            if int(row[key[1:]]) <= int(want):
                return False
        elif key.startswith("@"):
            if str(row.get(key[1:])) not in {str(w) for w in want}:
                return False
        elif isinstance(want, list):
            if str(row.get(key)) not in {str(w) for w in want}:
                return False
        elif str(row.get(key)) != str(want):
            return False
    return True


class FakePortal:
    def __init__(self, code: str = "s3cr3tw3bh00kc0de", *, per_second: float = 0, burst: int = 50):
        self.code = code
        self.deals: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.categories = [{"id": 0, "name": "General"}, {"id": 1, "name": "Online shop"}]
        self.faults: list[Fault] = []
        self.hits: list[Hit] = []
        #: a bucket like the portal's (0: no limit); exceeding it answers QUERY_LIMIT_EXCEEDED
        self.per_second = per_second
        self.burst = burst
        self._level = 0.0
        self._at = time.monotonic()
        self._lock = threading.Lock()

    # --- data -----------------------------------------------------------------------

    def add_win(
        self,
        deal_id: int,
        created: str,
        *,
        category: int = 0,
        stage: str = "WON",
        deal: Mapping[str, Any] | None = None,
        contact: Mapping[str, Any] | None = None,
        semantic: str = "S",
    ) -> dict[str, Any]:
        """A deal moved into a stage (won by default), its history row and contact."""
        row = {
            "ID": str(len(self.history) + 1),
            "TYPE_ID": "2",
            "OWNER_ID": str(deal_id),
            "CREATED_TIME": created,
            "CATEGORY_ID": str(category),
            "STAGE_SEMANTIC_ID": semantic,
            "STAGE_ID": stage,
        }
        self.history.append(row)
        record: dict[str, Any] = {
            "ID": str(deal_id),
            "TITLE": f"Deal #{deal_id}",
            "CATEGORY_ID": str(category),
            "STAGE_ID": stage,
            "OPPORTUNITY": "1500.00",
            "CURRENCY_ID": "RUB",
            "CONTACT_ID": None,
            "UTM_SOURCE": None,
        }
        if contact is not None:
            contact_id = str(contact.get("ID", 1000 + deal_id))
            self.contacts[contact_id] = {"ID": contact_id, **contact}
            record["CONTACT_ID"] = contact_id
        record.update(deal or {})
        self.deals.setdefault(str(deal_id), {}).update(record)
        return row

    # --- requests -------------------------------------------------------------------

    def handle(self, path: str, params: dict[str, Any]) -> Answer:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "rest" or not parts[3].endswith(".json"):
            return self._log(
                "?", params, (404, _error("ERROR_METHOD_NOT_FOUND", "Method not found!"), {})
            )
        method = parts[3][: -len(".json")]
        if parts[2] != self.code:
            answer = (401, _error("INVALID_CREDENTIALS", "Invalid request credentials"), {})
            return self._log(method, params, answer)
        if self._over_limit():
            answer = (503, _error("QUERY_LIMIT_EXCEEDED", "Too many requests"), {})
            return self._log(method, params, answer)
        for fault in self.faults:
            if fault.times > 0 and fault.method in (None, method):
                fault.times -= 1
                answer = (fault.status, _error(fault.error, fault.description), fault.headers)
                return self._log(method, params, answer)
        if method == "batch":
            answer = (200, {"result": self._batch(params), "time": _time()}, {})
        else:
            status, body = self._method(method, params)
            answer = (status, body if status != 200 else {**body, "time": _time()}, {})
        return self._log(method, params, answer)

    def _log(self, method: str, params: dict[str, Any], answer: Answer) -> Answer:
        self.hits.append(Hit(time.monotonic(), method, params, answer[0]))
        return answer

    def _over_limit(self) -> bool:
        if self.per_second <= 0:
            return False
        with self._lock:
            now = time.monotonic()
            self._level = max(0.0, self._level - (now - self._at) * self.per_second)
            self._at = now
            if self._level + 1 > self.burst + 1e-6:
                return True
            self._level += 1
            return False

    def _batch(self, params: Mapping[str, Any]) -> dict[str, Any]:
        cmd = params.get("cmd") or {}
        if len(cmd) > 50:
            return {"result": {}, "result_error": {"": _error("ERROR_BATCH_LENGTH_EXCEEDED", "")}}
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, line in cmd.items():
            method, _, query = str(line).partition("?")
            status, body = self._method(method, php_parse(query))
            if status == 200:
                results[name] = body["result"]
            else:
                errors[name] = body
        return {
            "result": results,
            "result_error": errors or [],
            "result_total": [],
            "result_next": [],
            "result_time": {name: _time() for name in results},
        }

    def _method(self, method: str, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "crm.stagehistory.list":
            if str(params.get("entityTypeId")) != "2":
                return 400, _error("ENTITY_TYPE_NOT_SUPPORTED", "entity type")
            flt = params.get("filter") or {}
            # rows are kept in ID order with ID = position + 1: a keyset page starts there
            # (as the portal's index does), and a start=-1 page stops at 50 rows
            after = max(0, int(flt.get(">ID", 0)))
            rows = []
            for row in self.history[after:]:
                if _matches(row, flt):
                    rows.append(row)
                    if int(params.get("start") or 0) == -1 and len(rows) == PAGE:
                        break
            return 200, self._page({"items": _select(rows, params)}, rows, params, "items")
        if method in ("crm.deal.list", "crm.contact.list"):
            table = self.deals if method == "crm.deal.list" else self.contacts
            flt = params.get("filter") or {}
            # by primary key when the filter lists ids (as the portal's index does)
            pool = (
                [table[str(i)] for i in flt["@ID"] if str(i) in table]
                if "@ID" in flt
                else table.values()
            )
            rows = sorted((r for r in pool if _matches(r, flt)), key=lambda r: int(r["ID"]))
            return 200, self._page(_select(rows, params), rows, params, None)
        if method == "crm.category.list":
            return 200, {"result": {"categories": self.categories}}
        return 404, _error("ERROR_METHOD_NOT_FOUND", "Method not found!")

    @staticmethod
    def _page(
        result: Any, rows: list[Any], params: Mapping[str, Any], key: str | None
    ) -> dict[str, Any]:
        start = int(params.get("start") or 0)
        if start == -1:
            page = result[key][:PAGE] if key else result[:PAGE]
            return {"result": {key: page} if key else page}
        page = result[key][start : start + PAGE] if key else result[start : start + PAGE]
        body: dict[str, Any] = {"result": {key: page} if key else page, "total": len(rows)}
        if start + PAGE < len(rows):
            body["next"] = start + PAGE
        return body

    def requests_for(self, method: str) -> list[Hit]:
        return [h for h in self.hits if h.method == method]


def _select(rows: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    select = params.get("select")
    if not select:
        return [dict(r) for r in rows]
    names = list(select)
    return [{n: r.get(n) for n in names if n in r or not n.startswith("UF_")} for r in rows]


def _error(code: str, text: str) -> dict[str, Any]:
    return {"error": code, "error_description": text}


def _time() -> dict[str, Any]:
    return {"start": time.time(), "finish": time.time(), "duration": 0.001, "processing": 0.0}
