"""The health and metrics endpoint of ``convsync run`` (and ``convsync health``, which
the Docker HEALTHCHECK calls)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `convsync health` (the HEALTHCHECK) loads this module: no ledger code
    from prometheus_client import CollectorRegistry


class HealthServer:
    """``GET /healthz`` → JSON health (``service_health.assess``: 200 while healthy, 503
    when failed, stopping, or degraded with ``health.fail_on_degraded``);
    ``GET /metrics`` → the Prometheus text of ``metrics`` (``convsync.metrics``; 404
    without a registry)."""

    def __init__(
        self,
        host: str,
        port: int,
        status: Callable[[], dict[str, Any]],
        metrics: CollectorRegistry | None = None,
    ) -> None:
        provider = status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body: bytes
                if self.path.startswith("/healthz"):
                    data = provider()
                    code = 200 if data.get("healthy") else 503
                    body = json.dumps(data).encode()
                    ctype = "application/json"
                elif self.path.startswith("/metrics") and metrics is not None:
                    from convsync.metrics import render  # loaded already by whoever built it

                    code = 200
                    body, ctype = render(metrics, self.headers.get("Accept", ""))
                else:
                    code, body, ctype = 404, b"not found\n", "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # probes every 30 s would drown the sync log

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def probe(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """Ask a running ``convsync run`` on this machine whether it is healthy."""
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, response.read().decode()
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode() or str(exc)
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no health endpoint at {url}: {exc}"
