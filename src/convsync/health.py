"""The health and metrics endpoint of ``convsync run`` (and ``convsync health``, which
the Docker HEALTHCHECK calls)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HealthServer:
    """``GET /healthz`` → JSON status (200 while the scheduler runs, 503 otherwise);
    ``GET /metrics`` → Prometheus text of the same numbers."""

    def __init__(self, host: str, port: int, status: Callable[[], dict[str, Any]]) -> None:
        provider = status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body: bytes
                if self.path.startswith("/healthz"):
                    data = provider()
                    code = 200 if data.get("status") == "ok" else 503
                    body = json.dumps(data).encode()
                    ctype = "application/json"
                elif self.path.startswith("/metrics"):
                    code, body, ctype = 200, _metrics(provider()).encode(), "text/plain"
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


def _metrics(data: dict[str, Any]) -> str:
    up = 1 if data.get("status") == "ok" else 0
    last = data.get("last_run") or {}
    ok = 1 if last.get("status") == "ok" else 0
    return (
        "# HELP convsync_up 1 while the scheduler runs.\n"
        "# TYPE convsync_up gauge\n"
        f"convsync_up {up}\n"
        "# HELP convsync_runs_total Sync runs started by this process.\n"
        "# TYPE convsync_runs_total counter\n"
        f"convsync_runs_total {int(data.get('runs', 0))}\n"
        "# HELP convsync_last_run_ok 1 if the last run finished ok.\n"
        "# TYPE convsync_last_run_ok gauge\n"
        f"convsync_last_run_ok {ok}\n"
    ) + _webhook_metrics(data.get("webhooks"))


def _webhook_metrics(totals: dict[str, int] | None) -> str:
    if totals is None:
        return ""
    return (
        "# HELP convsync_webhook_requests_total Webhook requests recorded by this process.\n"
        "# TYPE convsync_webhook_requests_total counter\n"
        f"convsync_webhook_requests_total {int(totals['requests'])}\n"
        "# HELP convsync_webhook_transactions_total Ledger transactions that held them.\n"
        "# TYPE convsync_webhook_transactions_total counter\n"
        f"convsync_webhook_transactions_total {int(totals['transactions'])}\n"
    )


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
