"""``convsync/probe.py``, the image's HEALTHCHECK: asks /healthz over a real socket,
exits 0 on 200 only, and stays light (imports no part of convsync and no HTTP library)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from convsync.service import probe

PROBE = Path(probe.__file__)


class Healthz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b'{"status": "ok"}' if self.status == 200 else b'{"status": "failed"}'
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    Healthz.status = 200


def port_of(server: ThreadingHTTPServer) -> int:
    return server.server_address[1]


def test_healthy_on_200_with_the_answer(server: ThreadingHTTPServer) -> None:
    assert probe.probe("127.0.0.1", port_of(server)) == (True, '{"status": "ok"}')


def test_unhealthy_on_503_with_the_answer(server: ThreadingHTTPServer) -> None:
    Healthz.status = 503
    assert probe.probe("127.0.0.1", port_of(server)) == (False, '{"status": "failed"}')


def test_unhealthy_when_nothing_listens(server: ThreadingHTTPServer) -> None:
    port = port_of(server)
    server.shutdown()
    server.server_close()
    healthy, text = probe.probe("127.0.0.1", port)
    assert not healthy
    assert text.startswith(f"no health endpoint at http://127.0.0.1:{port}/healthz: ")


def test_the_port_as_settings_reads_it(tmp_path: Path) -> None:
    secret = tmp_path / "convsync_health_port"
    assert probe.target({}, str(secret)) == ("127.0.0.1", 8080)
    secret.write_text("9100\n")
    assert probe.target({}, str(secret)) == ("127.0.0.1", 9100)
    assert probe.target({"CONVSYNC_HEALTH_PORT": "9200"}, str(secret)) == ("127.0.0.1", 9200)
    assert probe.target({"CONVSYNC_HEALTH_HOST": "::"}, str(secret)) == ("::1", 9100)
    assert probe.target({"CONVSYNC_HEALTH_HOST": "10.1.2.3"}, str(secret))[0] == "10.1.2.3"
    with pytest.raises(probe.ProbeError, match="endpoint is off"):
        probe.target({"CONVSYNC_HEALTH_PORT": "0"})
    with pytest.raises(probe.ProbeError, match="not a port number: 'x'"):
        probe.target({"CONVSYNC_HEALTH_PORT": "x"})


def run_by_path(port: int, *options: str) -> subprocess.CompletedProcess[str]:
    """As the HEALTHCHECK runs it: ``python -I <file>``."""
    return subprocess.run(
        [sys.executable, "-I", *options, str(PROBE)],
        env={"CONVSYNC_HEALTH_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_exit_status_as_docker_reads_it(server: ThreadingHTTPServer) -> None:
    done = run_by_path(port_of(server))
    assert (done.returncode, done.stdout.strip()) == (0, '{"status": "ok"}')
    Healthz.status = 503
    assert run_by_path(port_of(server)).returncode == 1


def test_imports_no_part_of_convsync_and_no_http_library(server: ThreadingHTTPServer) -> None:
    done = run_by_path(port_of(server), "-X", "importtime")
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()[1:]}
    heavy = {"convsync", "urllib", "http", "email", "importlib.metadata", "typing", "re"}
    assert "socket" in imported
    assert not imported & heavy, imported & heavy
