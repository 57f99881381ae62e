"""The health port of ``convsync run``, served by waitress with Werkzeug as the webhooks
are:

* ``GET /healthz`` → the health document as JSON (``healthz.assess`` and the
  schedule): 200 while healthy, 503 when failed, stopping, or degraded with
  ``health.fail_on_degraded``;
* ``GET /metrics`` → the Prometheus text of the registry (``convsync.service.metrics``);
* ``GET /`` → the status page (``?lang=en|ru``), behind ``ui.auth`` (see ``access``).

Probes every 30 s would drown the sync log: requests are not logged, only a page that
could not be built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog
from werkzeug.wrappers import Request, Response

from convsync.config.ui import Language
from convsync.core.logging import scrub_text
from convsync.service.statuspage.access import PageAccess
from convsync.service.statuspage.words import LANGUAGES
from convsync.service.wsgi import WsgiThread

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = structlog.get_logger("convsync.statuspage")

#: health document → the page's HTML in a language
PageRenderer = Callable[[Mapping[str, Any], Language], str]

#: the page's own headers: nothing is loaded from anywhere, not even from convsync
#: (styles and charts are inline), and the page is never cached or framed
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: how long a stopping endpoint lets a request in hand finish
STOP_WAIT_S = 5.0


class HealthApp:
    """The WSGI application of the health port."""

    def __init__(
        self,
        status: Callable[[], dict[str, Any]],
        *,
        metrics: CollectorRegistry | None = None,
        page: PageRenderer | None = None,
        access: PageAccess | None = None,
        language: Language = "en",
    ) -> None:
        self.status = status
        self.metrics = metrics
        self.page = page
        self.access = access
        self.language = language

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._route(request)
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        path = request.path
        if request.method not in ("GET", "HEAD"):
            response = Response("read-only: GET\n", status=405, mimetype="text/plain")
            response.headers["Allow"] = "GET, HEAD"
            return response
        if path == "/healthz":
            data = self._health()
            return Response(
                json.dumps(data),
                status=200 if data.get("healthy") else 503,
                mimetype="application/json",
            )
        if path == "/metrics" and self.metrics is not None:
            from convsync.service.metrics import render  # loaded already by whoever built it

            body, content_type = render(self.metrics, request.headers.get("Accept", ""))
            return Response(body, status=200, content_type=content_type)
        if path == "/" and self.page is not None:
            return self._page(request)
        return Response("not found\n", status=404, mimetype="text/plain")

    def _health(self) -> dict[str, Any]:
        """The health document; when it cannot be read (the ledger unreachable), failed
        with the reason."""
        try:
            return self.status()
        # the request's top-level handler: any failure to judge is an unhealthy answer
        except Exception as exc:
            error = scrub_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
            log.error("health unknown", error=error, exc_info=True)
            return {"status": "failed", "healthy": False, "last_error": error}

    def _page(self, request: Request) -> Response:
        assert self.page is not None
        refused = self.access.check(request) if self.access is not None else None
        if refused is not None:
            return refused
        asked = request.args.get("lang")
        lang = next((known for known in LANGUAGES if known == asked), self.language)
        started = time.perf_counter()
        try:
            html = self.page(self.status(), lang)
        # the request's top-level handler: the page says it failed, the process goes on
        except Exception as exc:
            log.error("status page failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            return Response(
                "The status page could not be built (see the log: status page failed).\n",
                status=503,
                mimetype="text/plain",
            )
        response = Response(html, status=200, mimetype="text/html")
        response.headers.update(PAGE_HEADERS)
        response.headers["Server-Timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.0f}"
        return response


class HealthEndpoint:
    """``HealthApp`` on the health port, from a thread."""

    def __init__(self, app: HealthApp, host: str, port: int) -> None:
        self.app = app
        self.serving = WsgiThread(
            app,
            host,
            port,
            threads=4,
            purpose="serve the health endpoint",
            where="CONVSYNC_HEALTH_HOST / CONVSYNC_HEALTH_PORT",
            name="health",
            channel_timeout=30,
        )

    @property
    def port(self) -> int:
        return self.serving.port

    def start(self) -> None:
        self.serving.start()

    def stop(self) -> None:
        self.serving.stop(STOP_WAIT_S)
