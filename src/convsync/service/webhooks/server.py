"""The webhook endpoint of ``convsync run``: ``POST /webhooks/<source>``.

Served by waitress (a production WSGI server: a socket loop plus a thread pool, the
body read in full before the app sees it); requests are read with Werkzeug. Each
request is answered after its records are committed (see ``recorder``), refused with
a 4xx and a reason when it cannot be taken, or 503 when the ledger cannot take it now.
One log line per request says who, what and how it ended — never the body, the query
string (it may hold the token) or the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from convsync.config.models import LoadedConfig
from convsync.config.webhooks import WebhookServerConfig
from convsync.service.webhooks.recorder import RecorderStopped, RecordFate, WebhookRecorder
from convsync.service.wsgi import WsgiThread
from convsync.sources.webhook.config import WebhookSourceConfig
from convsync.sources.webhook.payload import (
    RecordReader,
    Refusal,
    is_tilda_test,
    lookup,
    nest_form,
    parse_json,
)

log = structlog.get_logger("convsync.webhooks")

PREFIX = "/webhooks/"
TOKEN_HEADER = "X-Convsync-Token"  # noqa: S105 (a header name, not a secret)
#: how long a request waits for its transaction before it is answered 503
COMMIT_WAIT_S = 30.0
#: a body this much over ``max_body`` is refused by waitress itself, unread by convsync
HARD_LIMIT_SLACK = 1 << 20
#: the GIL switch interval while webhooks are served (Python's default is 5 ms). A task
#: thread writes its answer while waitress's socket loop polls that socket as writable
#: and finds it locked, again and again: the two hand the GIL back and forth, and each
#: time the task thread may wait a whole interval. Measured on the webhook bench: about
#: 170 loop turns and 6 ms of CPU per request at 5 ms, 2 turns and 1.1 ms at 0.1 ms.
GIL_SWITCH_INTERVAL_S = 0.0001


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def _json(status: int, body: Mapping[str, Any]) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False) + "\n", status=status, mimetype="application/json"
    )


class WebhookApp:
    """The WSGI application: routes, checks, parses and records one request."""

    def __init__(
        self,
        loaded: LoadedConfig,
        recorder: WebhookRecorder,
        max_body: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.recorder = recorder
        self.max_body = max_body
        self.clock = clock
        #: source name → its record reader (with its config) and its token's digest
        self.sources: dict[str, tuple[RecordReader, bytes]] = {}
        for name in loaded.app.webhook_sources:
            cfg = loaded.app.sources[name]
            assert isinstance(cfg, WebhookSourceConfig)
            tz = ZoneInfo(cfg.timezone or loaded.app.timezone)
            token_digest = _digest(cfg.token.get_secret_value().encode())
            self.sources[name] = (RecordReader(name, cfg, tz), token_digest)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started = time.perf_counter()
        request = Request(environ)
        request.max_content_length = self.max_body
        request.max_form_memory_size = self.max_body
        name = request.path[len(PREFIX) :].strip("/") if request.path.startswith(PREFIX) else None
        # the name is the sender's text: bounded in the log line
        line: dict[str, Any] = {
            "source": name[:100] if name else name,
            "remote": request.remote_addr,
        }
        try:
            response = self._handle(request, name, line)
        except Refusal as refusal:
            response = _json(
                refusal.status,
                {"status": "refused", "error": refusal.code, "reason": refusal.reason},
            )
            if refusal.status == 405:
                response.headers["Allow"] = "POST"
            if refusal.status == 503:
                response.headers["Retry-After"] = "30"
            line.update(error=refusal.code, reason=refusal.reason)
        line.update(
            status=response.status_code,
            bytes=request.content_length,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if response.status_code < 300:
            log.info("webhook received", **line)
        else:
            log.warning("webhook refused", **line)
        return response(environ, start_response)

    def _handle(self, request: Request, name: str | None, line: dict[str, Any]) -> Response:
        if name is None or name not in self.sources:
            raise Refusal(404, "not_found", "no webhook source here by that name")
        if request.method != "POST":
            raise Refusal(405, "method", "webhooks are sent with POST")
        if request.content_length is not None and request.content_length > self.max_body:
            raise Refusal(
                413, "too_large", f"the body is over {self.max_body} bytes (webhooks.max_body)"
            )
        reader, token_digest = self.sources[name]
        cfg = reader.config
        presented = self._presented_token(request)
        if presented is not None:
            self._check_token(presented, token_digest)
        payload = self._payload(request)
        if presented is None:
            from_body = lookup(payload, cfg.preset.token_field) if cfg.preset.token_field else None
            if not isinstance(from_body, str):
                raise Refusal(
                    401, "no_token", f"send the token in the {TOKEN_HEADER} header or ?token="
                )
            self._check_token(from_body, token_digest)
        if cfg.sender == "tilda" and is_tilda_test(payload):
            line["outcome"] = "test"
            return _json(200, {"status": "ok", "test": True})
        fates = self._record(name, reader.records(payload, self.clock()))
        return self._answer(fates, line)

    @staticmethod
    def _presented_token(request: Request) -> str | None:
        header = request.headers.get(TOKEN_HEADER)
        if header:
            return header.strip()
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        query = request.args.get("token")
        return query if query else None

    @staticmethod
    def _check_token(presented: str, expected: bytes) -> None:
        # digests of equal length, so not even the token's length shows in the timing
        if not hmac.compare_digest(_digest(presented.encode()), expected):
            raise Refusal(403, "wrong_token", "the token does not match this source's")

    @staticmethod
    def _payload(request: Request) -> Any:
        mimetype = request.mimetype
        try:
            if mimetype == "application/json" or mimetype.endswith("+json"):
                return parse_json(request.get_data(cache=True))
            if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                return nest_form(request.form.items(multi=True))
        except HTTPException as exc:  # Werkzeug's own limits (a chunked body's size, form parts)
            code = "too_large" if exc.code == 413 else "malformed"
            raise Refusal(exc.code or 400, code, exc.description or "malformed body") from None
        raise Refusal(
            415,
            "content_type",
            "send application/json or application/x-www-form-urlencoded "
            f"(got {mimetype or 'no Content-Type'})",
        )

    def _record(self, name: str, records: list[Any]) -> list[RecordFate]:
        try:
            future = self.recorder.submit(name, records)
            return future.result(timeout=COMMIT_WAIT_S)
        except RecorderStopped:
            raise Refusal(503, "stopping", "convsync is shutting down; send again later") from None
        except FutureTimeout:
            raise Refusal(
                503, "busy", "the ledger did not take the records in time; send again later"
            ) from None
        except Exception:  # noqa: BLE001 (the writer's failure, already logged with its traceback)
            raise Refusal(
                503, "ledger", "the ledger cannot take records now; send again later"
            ) from None

    @staticmethod
    def _answer(fates: list[RecordFate], line: dict[str, Any]) -> Response:
        counts = {
            s: sum(1 for f in fates if f.status == s)
            for s in ("new", "duplicate", "rejected", "no_goal")
        }
        line.update(records=len(fates), **{k: v for k, v in counts.items() if v})
        body: dict[str, Any] = {"status": "accepted", **counts}
        problems = [
            {
                "id": f.record_id,
                "goal": p.goal,
                "field": p.column,
                "error": p.code,
                "reason": p.reason,
            }
            for f in fates
            for p in f.problems
        ]
        if problems:
            body["problems"] = problems
        if fates and counts["rejected"] == len(fates):
            # nothing was taken: the records are on the `failures` list, not in delivery
            body["status"] = "rejected"
            return _json(422, body)
        return _json(200, body)


class WebhookServer:
    """waitress serving a ``WebhookApp`` from a thread, with a graceful stop."""

    def __init__(self, app: WebhookApp, config: WebhookServerConfig) -> None:
        self.app = app
        self.serving = WsgiThread(
            app,
            config.host,
            config.port,
            threads=config.threads,
            purpose="receive webhooks",
            where="webhooks.host / webhooks.port in the config",
            name="webhooks",
            max_request_body_size=int(config.max_body) + HARD_LIMIT_SLACK,
            # idle keep-alive connections are closed after 30 s; many senders at once
            # are served while up to 1,000 connections are open
            channel_timeout=30,
            connection_limit=1000,
        )
        self._switch_interval = sys.getswitchinterval()

    @property
    def port(self) -> int:
        return self.serving.port

    def start(self) -> None:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.serving.start()

    def stop(self, timeout: float = COMMIT_WAIT_S) -> None:
        """Stop taking connections, let the requests in hand finish and their answers
        go out (they wait for the writer, which still runs), then close what is left."""
        self.serving.stop(timeout)
        sys.setswitchinterval(self._switch_interval)
