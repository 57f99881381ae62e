"""Fixtures of the network-error tests: no proxy from the environment unless a test sets
one, host names that do not resolve (``socket.getaddrinfo`` patched: no real DNS), and a
proxy that refuses every connection."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.network.servers import closed_port

PROXY_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy", "no_grpc_proxy",
)  # fmt: skip


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def unresolvable(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """``unresolvable(name)``: from now on ``name`` does not resolve (as a DNS server
    answering NXDOMAIN would have it); every other name resolves as before."""
    names: set[str] = set()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in names:
            raise socket.gaierror(-2, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def add(name: str) -> str:
        names.add(name)
        return name

    return add


@pytest.fixture
def broken_proxy(monkeypatch: pytest.MonkeyPatch) -> str:
    """HTTPS_PROXY and HTTP_PROXY name a closed port of 127.0.0.1; the proxy's
    ``host:port``."""
    proxy = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HTTPS_PROXY", f"http://{proxy}")
    monkeypatch.setenv("HTTP_PROXY", f"http://{proxy}")
    return proxy
