"""Loopback places where a connection fails, for the network-error tests: a closed port
(refused), a server that accepts and never answers (timeouts), one that answers plain
HTTP to anything (a TLS client's handshake fails), and the words a message must never
hold (a library's text)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: pieces of library text that must never reach a message: urllib3's pool and object
#: reprs, Python's errno text, gRPC's debug strings
FORBIDDEN = (
    "HTTPSConnectionPool",
    "HTTPConnectionPool",
    "Max retries exceeded",
    "NewConnectionError",
    "NameResolutionError",
    "MaxRetryError",
    "ProxyError(",
    "SSLError(",
    "Caused by",
    "<urllib3",
    "object at 0x",
    "[Errno",
    "_ssl.c",
    "ipv4:",
    "ipv6:",
    "Failed to connect to remote host",
    "failed to connect to all addresses",
    "created_time",
    "debug_error_string",
    "SSL_ERROR",
    "TSI_",
    "Getting metadata from plugin",
    "Traceback",
    "with url:",
)

#: the most a message may have to stay readable in the run summary's note column
MAX_LENGTH = 160


def assert_plain(text: str, *, host: str, key: str, cause: str) -> None:
    """``text`` is one short line naming ``host``, ``key`` and ``cause``, and no library
    text."""
    assert "\n" not in text, text
    assert len(text) <= MAX_LENGTH, f"{len(text)} characters: {text}"
    assert host in text, text
    assert key in text, text
    assert cause in text, text
    for phrase in FORBIDDEN:
        assert phrase not in text, f"{phrase!r} in: {text}"


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (a connection is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(answer: bytes | None) -> Iterator[int]:
    """A listener on 127.0.0.1: each connection gets ``answer`` (then is closed), or,
    with None, is held open and never answered; yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # the accept's timeout: look at ``stop`` again
                continue
            if answer is None:
                held.append(conn)
                continue
            try:
                conn.settimeout(2.0)
                conn.recv(4096)
                conn.sendall(answer)
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, name="failing-server", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def silent_server() -> contextlib.AbstractContextManager[int]:
    """A server that accepts every connection and never answers (a read timeout)."""
    return _serving(None)


def plain_http_server() -> contextlib.AbstractContextManager[int]:
    """A server that answers anything with plain HTTP: a TLS client's handshake fails."""
    return _serving(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
