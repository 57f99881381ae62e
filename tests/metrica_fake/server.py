"""A fake Yandex.Metrica offline-conversions API on 127.0.0.1 (pytest-httpserver, threaded).

It serves, for the counters in ``counters``:

- ``POST /management/v1/counter/{id}/offline_conversions/upload?comment=…[&type=CALLS]``:
  multipart field ``file`` holding a CSV, parsed and checked (``state.parse_file``);
- ``GET …/offline_conversions/uploading/{id}`` and ``GET …/offline_conversions/uploadings``;

checks ``Authorization: OAuth <token>`` (missing: 401 ``unauthorized``; wrong: 403
``invalid_token``), records every request (``calls``), plays scripted faults (``script``;
``error("timeout", store=True)`` stores the upload, then answers 504), answers every
request of an endpoint with one fault until told otherwise (``fail_every`` / ``mend``:
e.g. a list of uploads that answers 503 all day) and can hold the answer to an upload it
has stored, or to a look-up in the list (``hold_next``). Usable without pytest:

    with fake_metrica() as fake:
        config = fake.destination_config()      # api_base_url, counter_id, token
        ...
        fake.process()                          # UPLOADED → PROCESSED / LINKAGE_FAILURE
        fake.uploads[1].lines, fake.calls_of("upload")[0].query["comment"]
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.hold import Hold

from .faults import Fault, error_body
from .state import FileRefused, Upload, link, parse_file, utc_now

COUNTER_ID = 24681357
_PATH = re.compile(
    r"/management/v1/counter/(?P<counter>[0-9]+)/offline_conversions/"
    r"(?P<endpoint>upload|uploading/(?P<id>[0-9]+)|uploadings)"
)
_COMMENT = re.compile(r"[0-9A-Za-zА-Яа-яЁё]{0,255}")


class _QuickServer(HTTPServer):
    """Stops in a few milliseconds instead of pytest-httpserver's half second."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


@dataclass
class Call:
    """One request as the server received it, and the status it answered."""

    method: str
    endpoint: str  # upload | uploading | uploadings | other
    query: dict[str, str]
    authorization: str | None
    status: int = 0
    file_name: str | None = None
    file_type: str | None = None
    file: bytes | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)


class FakeMetrica:
    def __init__(self) -> None:
        self.token = f"y0_fake-metrica-{secrets.token_hex(12)}"
        self.counters = {COUNTER_ID}
        #: goal identifiers of JavaScript-event goals (None: every identifier exists)
        self.goals: set[str] | None = None
        #: identifier values of known visitors (None: every visitor is known)
        self.visitors: set[str] | None = None
        self.clock: Callable[[], datetime] = utc_now
        self.uploads: dict[int, Upload] = {}
        self.calls: list[Call] = []
        self._next_id = 1000
        self._faults: deque[Fault] = deque()
        #: endpoint → the fault every request of it gets (``fail_every``), and whether
        #: the one-line access check of the list is spared
        self._standing: dict[str, tuple[Fault, bool]] = {}
        self._holds: dict[str, deque[Hold]] = {}
        self._all_holds: list[Hold] = []
        self._lock = threading.Lock()
        self.server = _QuickServer(host="127.0.0.1", port=0, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    # --- control ---

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        for hold in self._all_holds:
            hold.release()
        if self.server.is_running():
            self.server.stop()

    def destination_config(self, **overrides: Any) -> dict[str, Any]:
        config = {
            "type": "yandex_metrica",
            "counter_id": COUNTER_ID,
            "token": self.token,
            "api_base_url": self.url,
        }
        return config | overrides

    def script(self, *faults: Fault) -> None:
        """Answer the next matching requests with these faults, in order."""
        with self._lock:
            self._faults.extend(faults)

    def fail_every(self, fault: Fault, *, spare_access_check: bool = False) -> None:
        """Answer every request of ``fault.endpoint`` with ``fault`` (scripted faults go
        first) until ``mend``. ``spare_access_check``: a list request of one line
        (``limit=1``, convsync's token check when a run starts) is answered normally —
        as when a heavy list times out but a small one gets through."""
        with self._lock:
            self._standing[fault.endpoint] = (fault, spare_access_check)

    def mend(self, endpoint: str = "uploadings") -> None:
        """Stop ``fail_every`` of ``endpoint``."""
        with self._lock:
            self._standing.pop(endpoint, None)

    def hold_next(self, endpoint: str = "upload") -> Hold:
        """Hold the answer to the next request of ``endpoint``: an upload once it is
        stored; a read of the list of uploads (not the one-line access check) before it
        is answered."""
        hold = Hold()
        with self._lock:
            self._holds.setdefault(endpoint, deque()).append(hold)
            self._all_holds.append(hold)
        return hold

    def calls_of(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    def process(
        self,
        upload_id: int | None = None,
        *,
        status: str | None = None,
        **counts: int,
    ) -> None:
        """Process one upload (default: every one not processed yet). Without counts
        the lines are linked by ``goals`` and ``visitors``: no line of a known visitor is
        ``LINKAGE_FAILURE``; explicit counts (``linked_quantity=…``) are taken as given."""
        with self._lock:
            chosen = [self.uploads[upload_id]] if upload_id is not None else [
                u for u in self.uploads.values() if u.status not in ("PROCESSED", "LINKAGE_FAILURE")
            ]  # fmt: skip
            for upload in chosen:
                found = counts or link(upload, self.goals, self.visitors)
                none_linked = found.get("linked_quantity", 0) == 0
                no_visitor = none_linked and found.get("goal_not_found_quantity", 0) == 0
                upload.status = status or ("LINKAGE_FAILURE" if no_visitor else "PROCESSED")
                upload.counts = dict(found)

    def advance(self, upload_id: int, status: str) -> None:
        """Move an upload to an intermediate status (``EXPORTED``, ``MATCHED``)."""
        with self._lock:
            self.uploads[upload_id].status = status

    # --- serving ---

    def _handle(self, request: Request) -> Response:
        match = _PATH.fullmatch(request.path)
        endpoint = "other" if match is None else match["endpoint"].partition("/")[0]
        call = Call(
            request.method, endpoint, dict(request.args), request.headers.get("Authorization")
        )
        with self._lock:
            self.calls.append(call)
        response = self._serve(request, call, match)
        call.status = response.status_code
        return response

    def _serve(self, request: Request, call: Call, match: re.Match[str] | None) -> Response:
        if match is None:
            return _error(404, "not_found", f"No such method: {request.path}")
        if call.authorization is None:
            return _error(401, "unauthorized", "Unauthorized")
        if call.authorization != f"OAuth {self.token}":
            return _error(403, "invalid_token", "Invalid oauth_token")
        if int(match["counter"]) not in self.counters:
            return _error(403, "access_denied", "Access is denied")
        access_check = call.endpoint == "uploadings" and request.args.get("limit") == "1"
        if call.endpoint != "upload" and not access_check:
            self._wait_if_held(call.endpoint)
        fault = self._take_fault(call.endpoint) or self._standing_fault(call.endpoint, access_check)
        if fault is not None and not fault.store:
            return Response(fault.body(), fault.status, headers=fault.headers())
        if call.endpoint == "upload" and request.method == "POST":
            answer = self._upload(request, call)
            if fault is not None:
                return Response(fault.body(), fault.status, headers=fault.headers())
            return answer
        if call.endpoint == "uploading" and request.method == "GET":
            upload = self.uploads.get(int(match["id"]))
            if upload is None:
                return _error(404, "not_found", "Entity not found")
            return _json({"uploading": upload.as_json()})
        if call.endpoint == "uploadings" and request.method == "GET":
            limit = int(request.args.get("limit", "10000"))
            offset = int(request.args.get("offset", "0"))
            newest = sorted(self.uploads.values(), key=lambda u: u.id, reverse=True)
            return _json({"uploadings": [u.as_json() for u in newest[offset : offset + limit]]})
        return _error(405, "invalid_parameter", f"{request.method} is not allowed here")

    def _upload(self, request: Request, call: Call) -> Response:
        comment = request.args.get("comment")
        kind = request.args.get("type", "BASIC")
        if comment is not None and not _COMMENT.fullmatch(comment):
            return _error(400, "invalid_parameter", "comment: only digits and letters")
        if kind not in ("BASIC", "CALLS", "CHATS"):
            return _error(400, "invalid_parameter", f"type: unknown value {kind}")
        part = request.files.get("file")
        if part is None:
            return _error(400, "missing_parameter", "Required file 'file' is missing")
        data = part.read()
        call.file, call.file_name, call.file_type = data, part.filename, part.mimetype
        try:
            columns, lines, valid = parse_file(data, kind, self.clock())
        except FileRefused as exc:
            return _error(400, "invalid_uploading", str(exc))
        call.columns, call.rows = columns, lines
        with self._lock:
            self._next_id += 1
            upload = Upload(self._next_id, kind, comment, columns, lines, valid, self.clock())
            self.uploads[upload.id] = upload
        self._wait_if_held("upload")
        return _json({"uploading": upload.as_json()})

    def _wait_if_held(self, endpoint: str) -> None:
        with self._lock:
            holds = self._holds.get(endpoint)
            hold = holds.popleft() if holds else None
        if hold is not None:
            hold.accepted.set()
            hold.released.wait(timeout=60)

    def _standing_fault(self, endpoint: str, access_check: bool) -> Fault | None:
        with self._lock:
            standing = self._standing.get(endpoint) or self._standing.get("any")
        if standing is None:
            return None
        fault, spare_access_check = standing
        return None if access_check and spare_access_check else fault

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.endpoint in (endpoint, "any"):
                    if fault.after:
                        self._faults[i] = dataclasses.replace(fault, after=fault.after - 1)
                        return None
                    del self._faults[i]
                    return fault
        return None


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status, content_type="application/json; charset=utf-8"
    )


def _error(status: int, error_type: str, message: str) -> Response:
    return _json(error_body(status, error_type, message), status)


@contextmanager
def fake_metrica() -> Iterator[FakeMetrica]:
    fake = FakeMetrica()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
