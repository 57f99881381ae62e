"""The image's health probe: ``python -I /opt/venv/bin/convsync-probe``.

It asks ``/healthz`` of the ``convsync run`` in the same container, as ``convsync health``
does, and exits 0 when the answer is 200 (healthy), 1 otherwise, printing the answer
(Docker keeps it: ``docker inspect --format '{{json .State.Health}}'``).

Docker runs it every 30 s, and every 2 s while the container starts, so it imports
nothing but ``socket``: ``convsync health`` loads the CLI (Typer, pydantic, SQLAlchemy),
about 1 s of CPU a call; this takes about as long as Python's own start. For the same
reason it is run by path, not ``-m convsync.service.probe``: that would import the ``convsync``
package, whose ``__init__`` reads the installed version through ``importlib.metadata``
(tripling the time). ``-I`` keeps this file's folder off ``sys.path``: it holds modules
named like the standard library's (``http``, ``logging``).

The port is the health endpoint's (``CONVSYNC_HEALTH_PORT``, else the Docker secret
``convsync_health_port``, else 8080), asked on loopback unless ``CONVSYNC_HEALTH_HOST``
names one address to listen on.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping

DEFAULT_PORT = 8080
PORT_FILE = "/run/secrets/convsync_health_port"
TIMEOUT_S = 3.0
#: more than any /healthz answer; a probe must not read an endless stream
MAX_ANSWER_BYTES = 1 << 20
#: what Docker shows of the answer
SHOWN_CHARS = 2000


class ProbeError(Exception):
    """A setting the probe cannot use."""


def target(environ: Mapping[str, str], secret: str = PORT_FILE) -> tuple[str, int]:
    """Host and port of the health endpoint, read as ``convsync.config.settings`` reads them."""
    raw = environ.get("CONVSYNC_HEALTH_PORT")
    if raw is None and os.path.isfile(secret):
        with open(secret, encoding="utf-8") as file:
            raw = file.read()
    try:
        port = DEFAULT_PORT if raw is None else int(raw.strip())
    except ValueError:
        raise ProbeError(f"CONVSYNC_HEALTH_PORT is not a port number: {raw!r}") from None
    if port == 0:
        raise ProbeError("the health endpoint is off (CONVSYNC_HEALTH_PORT=0): nothing to ask")
    if not 0 < port < 65536:
        raise ProbeError(f"CONVSYNC_HEALTH_PORT is not a port number: {port}")
    host = environ.get("CONVSYNC_HEALTH_HOST", "").strip()
    if host in ("", "0.0.0.0"):  # noqa: S104 (compared, not bound: all addresses → loopback)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


def probe(host: str, port: int, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """(healthy, what to show): one HTTP/1.0 GET of ``/healthz``, read to the end."""
    url = f"http://{host}:{port}/healthz"
    request = f"GET /healthz HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        # an ASCII host as bytes: a str is encoded with the idna codec, which imports re
        name = host.encode("ascii") if host.isascii() else host
        family, kind, proto, _, address = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as conn:
            conn.settimeout(timeout)
            conn.connect(address)
            conn.sendall(request.encode("ascii"))
            while size < MAX_ANSWER_BYTES:
                conn.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except OSError as exc:
        return False, f"no health endpoint at {url}: {exc or type(exc).__name__}"
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    words = status_line.split(" ", 2)
    healthy = len(words) >= 2 and words[0].startswith("HTTP/") and words[1] == "200"
    text = body.decode("utf-8", "replace").strip() or f"{url}: {status_line or 'no answer'}"
    return healthy, text[:SHOWN_CHARS]


def main(environ: Mapping[str, str] = os.environ) -> int:
    try:
        host, port = target(environ)
    except ProbeError as exc:
        print(exc)
        return 1
    healthy, text = probe(host, port)
    print(text)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
