"""What the fake BigQuery knows and how it answers, without HTTP.

It holds GA4-export-shaped event rows per table (``events_YYYYMMDD``,
``events_intraday_YYYYMMDD``) of one dataset and answers the REST calls the
``google-cloud-bigquery`` client makes for this source: ``tables.list``,
``jobs.insert`` (dry run or not), ``jobs.get`` and ``jobs.getQueryResults`` (paged). It
does not parse SQL: it checks that the query text reads the expected tables and columns
and uses every parameter it declares, then answers from the named parameters
(``@events``, ``@first_suffix``/``@last_suffix``, ``@intraday_suffixes``, the parameter
and user-property keys). Rows go out in the REST ``f``/``v`` encoding with a schema.
Shapes: https://cloud.google.com/bigquery/docs/reference/rest/v2 (Job, QueryResponse,
TableList, ErrorProto).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Answer = tuple[int, dict[str, Any]]

PROJECT = "convsync-test"
DATASET = "analytics_123456789"

SCHEMA = [
    {"name": "table_suffix", "type": "STRING", "mode": "NULLABLE"},
    {"name": "intraday", "type": "BOOLEAN", "mode": "NULLABLE"},
    {"name": "event_timestamp", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "event_name", "type": "STRING", "mode": "NULLABLE"},
    {"name": "stream_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "user_pseudo_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "user_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "transaction_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "purchase_revenue", "type": "FLOAT", "mode": "NULLABLE"},
    {"name": "collected_gclid", "type": "STRING", "mode": "NULLABLE"},
    *(
        {"name": name, "type": "RECORD", "mode": "REPEATED",
         "fields": [{"name": "key", "type": "STRING", "mode": "NULLABLE"},
                    {"name": "value", "type": "STRING", "mode": "NULLABLE"}]}
        for name in ("params", "user_props")
    ),
]  # fmt: skip

#: what the query text must contain, per part
DAILY_SQL = ("events_*`", "_TABLE_SUFFIX BETWEEN @first_suffix AND @last_suffix")
INTRADAY_SQL = ("events_intraday_*`", "_TABLE_SUFFIX IN UNNEST(@intraday_suffixes)")
COMMON_SQL = (
    "event_name IN UNNEST(@events)", "event_timestamp", "user_pseudo_id", "stream_id",
    "ecommerce.transaction_id", "ecommerce.purchase_revenue",
    "collected_traffic_source.gclid", "UNNEST(event_params)", "@param_keys",
    "UNNEST(user_properties)", "@property_keys", "ORDER BY",
)  # fmt: skip


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    status: int = 0


@dataclass
class Fault:
    """An error answered instead, ``times`` times, on requests of ``route``."""

    route: str  # tables | dry_run | insert | get_job | results
    status: int
    reason: str
    message: str = "fault injected by the test"
    times: int = 1


def error(status: int, reason: str, message: str) -> Answer:
    states = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
              404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip
    body = {"error": {"code": status, "message": message, "status": states.get(status, ""),
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}  # fmt: skip
    return status, body


@dataclass
class BigQueryState:
    project: str = PROJECT
    dataset: str = DATASET
    location: str = "US"
    #: table name → its GA4 export rows
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: who may call: an access token → True; set by the server from the token endpoint
    token_valid: Callable[[str], bool] = lambda token: False
    bytes_per_row: int = 2_000
    #: the dry run's answer, if it should differ from what the job then bills
    dry_run_bytes: int | None = None
    access_denied: bool = False
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- test control --------------------------------------------------------------------

    def add_event(self, table: str, **event: Any) -> dict[str, Any]:
        self.tables.setdefault(table, []).append(event)
        return event

    def fail(self, route: str, status: int, reason: str, times: int = 1, **kw: Any) -> None:
        self.faults.append(Fault(route, status, reason, times=times, **kw))

    def requests_to(self, route: str) -> list[Seen]:
        return [s for s in self.seen if _route(s.method, s.path, s.body) == route]

    def queries(self) -> list[dict[str, Any]]:
        """The ``configuration`` of every jobs.insert, in order (dry runs included)."""
        return [s.body["configuration"] for s in self.seen if _route(s.method, s.path, s.body)
                in ("insert", "dry_run")]  # fmt: skip

    # --- answering -----------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: Any) -> Answer:  # fmt: skip
        auth = headers.get("Authorization") or headers.get("authorization")
        seen = Seen(method, path, query, body, auth)
        with self.lock:
            self.seen.append(seen)
            result = self._answer(method, path, query, auth, body)
        seen.status = result[0]
        return result

    def _answer(self, method: str, path: str, query: dict[str, str], auth: str | None,
                body: Any) -> Answer:  # fmt: skip
        token = (auth or "").removeprefix("Bearer ")
        if not auth or not auth.startswith("Bearer ") or not self.token_valid(token):
            return error(401, "unauthorized", "Request had invalid authentication credentials.")
        route = _route(method, path, body)
        for fault in self.faults:
            if fault.route == route and fault.times > 0:
                fault.times -= 1
                return error(fault.status, fault.reason, fault.message)
        parts = path.removeprefix("/bigquery/v2/projects/").split("/")
        if route == "tables":
            return self._tables(parts[0], parts[2], query)
        if route in ("insert", "dry_run"):
            return self._insert(parts[0], body)
        if route == "get_job":
            return self._get_job(parts[0], parts[2])
        if route == "results":
            return self._results(parts[0], parts[2], query)
        return error(404, "notFound", f"no route {method} {path}")

    def _tables(self, project: str, dataset: str, query: Mapping[str, str]) -> Answer:
        if (project, dataset) != (self.project, self.dataset):
            return error(404, "notFound", f"Not found: Dataset {project}:{dataset}")
        names = sorted(self.tables)
        size = int(query.get("maxResults") or 50)
        start = int(query.get("pageToken") or 0)
        page = names[start : start + size]
        answer: dict[str, Any] = {
            "kind": "bigquery#tableList", "etag": "x", "totalItems": len(names),
            "tables": [
                {"kind": "bigquery#table", "id": f"{project}:{dataset}.{name}", "type": "TABLE",
                 "tableReference": {"projectId": project, "datasetId": dataset, "tableId": name},
                 "creationTime": "1700000000000"}
                for name in page
            ],
        }  # fmt: skip
        if start + size < len(names):
            answer["nextPageToken"] = str(start + size)
        return 200, answer

    def _insert(self, project: str, body: dict[str, Any]) -> Answer:
        if self.access_denied:
            return error(403, "accessDenied", f"Access Denied: Project {project}: User does "
                         f"not have bigquery.jobs.create permission in project {project}.")  # fmt: skip
        config = body["configuration"]
        q = config["query"]
        sql = str(q["query"])
        params = {p["name"]: p for p in q.get("queryParameters", [])}
        problem = self._check_sql(sql, params, q)
        if problem:
            return error(400, "invalidQuery", problem)
        rows, scanned = self._select(sql, params)
        billed = scanned * self.bytes_per_row
        reference = dict(body["jobReference"])
        reference.setdefault("location", self.location)
        stats: dict[str, Any] = {"creationTime": "1700000000000"}
        if config.get("dryRun"):
            estimate = billed if self.dry_run_bytes is None else self.dry_run_bytes
            stats |= {"totalBytesProcessed": str(estimate),
                      "query": {"totalBytesProcessed": str(estimate), "statementType": "SELECT"}}  # fmt: skip
            return 200, {"kind": "bigquery#job", "jobReference": reference,
                         "configuration": config, "status": {"state": "DONE"}, "statistics": stats}  # fmt: skip
        job = {"kind": "bigquery#job", "id": f"{project}:{reference['jobId']}",
               "jobReference": reference, "configuration": config,
               "status": {"state": "RUNNING"}, "statistics": stats}  # fmt: skip
        limit = q.get("maximumBytesBilled")
        if limit is not None and billed > int(limit):
            job["status"] = {"state": "DONE", "errorResult": {
                "reason": "bytesBilledLimitExceeded", "location": "",
                "message": f"Query exceeded limit for bytes billed: {limit}. {billed} or higher "
                           "required."}}  # fmt: skip
        self.jobs[reference["jobId"]] = {"job": job, "rows": rows, "bytes": billed}
        return 200, job

    def _get_job(self, project: str, job_id: str) -> Answer:
        held = self.jobs.get(job_id)
        if held is None:
            return error(404, "notFound", f"Not found: Job {project}:{job_id}")
        job = held["job"]
        if job["status"]["state"] == "RUNNING":  # done by the time anyone asks again
            job["status"] = {"state": "DONE"}
            job["statistics"] |= {"totalBytesProcessed": str(held["bytes"]),
                                  "query": {"totalBytesProcessed": str(held["bytes"]),
                                            "totalBytesBilled": str(held["bytes"])}}  # fmt: skip
        return 200, job

    def _results(self, project: str, job_id: str, query: Mapping[str, str]) -> Answer:
        held = self.jobs.get(job_id)
        if held is None or query.get("location", self.location) != self.location:
            return error(404, "notFound", f"Not found: Job {project}:{job_id}")
        if held["job"]["status"]["state"] != "DONE":
            return 200, {"kind": "bigquery#getQueryResultsResponse", "jobComplete": False,
                         "jobReference": held["job"]["jobReference"]}  # fmt: skip
        rows = held["rows"]
        size = int(query.get("maxResults") or 100_000)
        start = int(query.get("pageToken") or query.get("startIndex") or 0)
        page = rows[start : start + size]
        answer: dict[str, Any] = {
            "kind": "bigquery#getQueryResultsResponse", "jobComplete": True,
            "jobReference": held["job"]["jobReference"], "schema": {"fields": SCHEMA},
            "totalRows": str(len(rows)), "totalBytesProcessed": str(held["bytes"]),
            "cacheHit": False,
        }  # fmt: skip
        if size > 0:
            answer["rows"] = [encode_row(r) for r in page]
        if size > 0 and start + size < len(rows):
            answer["pageToken"] = str(start + size)
        return 200, answer

    # --- the query, read from its parameters ---------------------------------------------

    def _check_sql(self, sql: str, params: Mapping[str, Any], q: Mapping[str, Any]) -> str:
        if q.get("useLegacySql", True) or q.get("parameterMode") != "NAMED":
            return "expected GoogleSQL with named parameters"
        for name in re.findall(r"@(\w+)", sql):
            if name not in params:
                return f"Query parameter '{name}' not found"
        expected = list(COMMON_SQL)
        prefix = f"`{self.project}.{self.dataset}."
        if "first_suffix" in params:
            expected += [prefix + DAILY_SQL[0], DAILY_SQL[1]]
        if "intraday_suffixes" in params:
            expected += [prefix + INTRADAY_SQL[0], INTRADAY_SQL[1]]
        missing = [text for text in expected if text not in sql]
        return f"the fake expected {missing} in the query" if missing else ""

    def _select(self, sql: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        events = set(_array(params["events"]))
        param_keys = set(_array(params["param_keys"]))
        property_keys = set(_array(params["property_keys"]))
        chosen: list[tuple[str, bool, list[dict[str, Any]]]] = []
        if "first_suffix" in params:
            first, last = _scalar(params["first_suffix"]), _scalar(params["last_suffix"])
            for name, rows in self.tables.items():
                sfx = name.removeprefix("events_")
                if re.fullmatch(r"\d{8}", sfx) and first <= sfx <= last:
                    chosen.append((sfx, False, rows))
        if "intraday_suffixes" in params:
            wanted = set(_array(params["intraday_suffixes"]))
            for name, rows in self.tables.items():
                sfx = name.removeprefix("events_intraday_")
                if name.startswith("events_intraday_") and sfx in wanted:
                    chosen.append((sfx, True, rows))
        out = []
        for sfx, intraday, rows in chosen:
            for event in rows:
                if event.get("event_name") in events:
                    out.append(_project(event, sfx, intraday, param_keys, property_keys))
        out.sort(key=lambda r: (r["table_suffix"], r["intraday"], r["event_timestamp"] or 0,
                                r["event_name"] or "", r["user_pseudo_id"] or ""))  # fmt: skip
        return out, sum(len(rows) for _, _, rows in chosen)


def _route(method: str, path: str, body: Any) -> str:
    parts = path.removeprefix("/bigquery/v2/projects/").split("/")
    if method == "GET" and len(parts) == 4 and parts[1] == "datasets" and parts[3] == "tables":
        return "tables"
    if method == "POST" and len(parts) == 2 and parts[1] == "jobs":
        dry = isinstance(body, dict) and (body.get("configuration") or {}).get("dryRun")
        return "dry_run" if dry else "insert"
    if method == "GET" and len(parts) == 3 and parts[1] == "jobs":
        return "get_job"
    if method == "GET" and len(parts) == 3 and parts[1] == "queries":
        return "results"
    return "unknown"


def _array(param: Mapping[str, Any]) -> list[str]:
    return [str(v["value"]) for v in param["parameterValue"].get("arrayValues", [])]


def _scalar(param: Mapping[str, Any]) -> str:
    return str(param["parameterValue"]["value"])


def _text(value: Mapping[str, Any] | None) -> str | None:
    """COALESCE(string_value, CAST(int_value …), CAST(double_value …), …)."""
    value = value or {}
    for key in ("string_value", "int_value", "double_value", "float_value"):
        if value.get(key) is not None:
            return str(value[key])
    return None


def _project(event: Mapping[str, Any], sfx: str, intraday: bool, param_keys: set[str],
             property_keys: set[str]) -> dict[str, Any]:  # fmt: skip
    ecommerce = event.get("ecommerce") or {}
    traffic = event.get("collected_traffic_source") or {}
    return {
        "table_suffix": sfx, "intraday": intraday,
        "event_timestamp": event.get("event_timestamp"), "event_name": event.get("event_name"),
        "stream_id": event.get("stream_id"), "user_pseudo_id": event.get("user_pseudo_id"),
        "user_id": event.get("user_id"), "transaction_id": ecommerce.get("transaction_id"),
        "purchase_revenue": ecommerce.get("purchase_revenue"),
        "collected_gclid": traffic.get("gclid"),
        "params": [(p["key"], _text(p.get("value"))) for p in event.get("event_params") or []
                   if p["key"] in param_keys],
        "user_props": [(p["key"], _text(p.get("value"))) for p in
                       event.get("user_properties") or [] if p["key"] in property_keys],
    }  # fmt: skip


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A result row in the REST encoding: ``{"f": [{"v": …}]}``, a REPEATED RECORD as a
    list of ``{"v": {"f": […]}}``."""
    cells = []
    for column in SCHEMA:
        value = row[column["name"]]
        if column["mode"] == "REPEATED":
            cells.append({"v": [{"v": {"f": [{"v": k}, {"v": v}]}} for k, v in value]})
        else:
            cells.append({"v": _cell(value)})
    return {"f": cells}
