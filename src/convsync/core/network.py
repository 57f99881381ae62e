"""Network failures in plain words: one line that names the host (and the port when it
is not the scheme's default), what happened, and the config key that sets the address —
never a library's text (urllib3's ``HTTPSConnectionPool(…): Max retries exceeded``, object
reprs, gRPC's ``ipv4:…: Failed to connect…`` debug strings).

    Metrica API at api-metrika.yandex.net: host name not found (DNS); check the network,
    DNS, proxy or destinations.metrica.api_base_url

(no full stop: a caller puts the line in a sentence of its own, or shows it as it is).

Every transport words its network failures here, from what it has:

* ``describe`` — an exception of ``requests`` (or one wrapping it: google-auth's
  ``TransportError`` of a token refresh); ``cause`` gives the words alone, for a
  transport that builds its own sentence;
* ``describe_grpc`` — a gRPC status and its details (``UNAVAILABLE``: ``DNS resolution
  failed for …``, ``failed to connect to all addresses; last error: … Connection
  refused``, ``Ssl handshake failed …``; ``DEADLINE_EXCEEDED``);
* ``describe_text`` — such text where only the text is left (a token refresh that failed
  inside a gRPC call comes back as ``Getting metadata from plugin failed with error: …``).

Classification — transient, destination unavailable, may have arrived — stays where it
is, in each transport's one classifying function (see ``convsync.core.errors``): this module
only says what happened.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

Timeout = float | tuple[float, float] | None

DNS = "dns"
REFUSED = "refused"
TLS = "tls"
CERTIFICATE = "certificate"
CONNECT_TIMEOUT = "connect_timeout"
READ_TIMEOUT = "read_timeout"
PROXY = "proxy"
CLOSED = "closed"
UNREACHABLE = "unreachable"
TUNNEL = "tunnel"  # a proxy answered CONNECT with an error status
OTHER = "other"

#: kinds in which no connection to the host was made (a proxy's failure decides itself)
NOT_CONNECTED = frozenset({DNS, REFUSED, CONNECT_TIMEOUT, UNREACHABLE})

_DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 443}
#: http.client's and urllib3's text of a proxy's error answer to CONNECT
_TUNNEL = re.compile(r"Tunnel connection failed: (\d{3}[^'\")]*)")
#: urllib3's ``HTTPSConnectionPool(host='…', port=443)``
_HOST_IN_TEXT = re.compile(r"host='([^']+)', port=(\d+)")
#: urllib3's ``(read timeout=0.3)``
_SECONDS_IN_TEXT = re.compile(r"(connect|read) timeout=([0-9.]+)")


@dataclass(frozen=True, slots=True)
class Address:
    """Where a transport connects, as its messages name it.

    ``service`` says what it is ("Metrica API"), ``url`` the configured address (an
    ``http(s)://`` URL, or a gRPC endpoint ``host[:port]``), ``key`` the config key that
    sets it (``destinations.metrica.api_base_url``), ``timeout`` the seconds waited (a
    ``(connect, read)`` pair as ``requests`` takes it), for a timeout's words.
    """

    service: str
    url: str
    key: str
    timeout: Timeout = None


@dataclass(frozen=True, slots=True)
class Failure:
    """What happened, in words: ``kind`` (``DNS``, ``REFUSED`` …), ``cause`` ("connection
    refused"), ``host`` the failure names (``host[:port]``; None: the address's) and, for a
    proxy's failure, the environment variable that set the proxy."""

    kind: str
    cause: str
    host: str | None = None
    proxy_variable: str | None = None


# --- the line ---


def describe(exc: BaseException, address: Address) -> str:
    """One line for a failed request of ``requests`` (or an error wrapping one)."""
    return line(failure_of(exc, address.timeout), address)


def cause(exc: BaseException, timeout: Timeout = None) -> str:
    """Just the words of what happened ("connection refused"), for a sentence of one's own."""
    return failure_of(exc, timeout).cause


def line(failure: Failure, address: Address) -> str:
    """``<service> at <host>: <cause>; check <what> or <key>`` — a proxy's failure points
    at the variable that set the proxy, any other at the network, DNS and proxy."""
    host = failure.host or shown_host(address.url)
    if failure.kind == PROXY:
        where = failure.proxy_variable or "the proxy settings"
        hint = f"check {where} or {address.key}"
    else:
        hint = f"check the network, DNS, proxy or {address.key}"
    return f"{address.service} at {host}: {failure.cause}; {hint}"


def describe_grpc(status: str, details: str, address: Address) -> str | None:
    """One line for a gRPC call that failed in the network (``UNAVAILABLE`` with a
    connection's trouble in its details, ``DEADLINE_EXCEEDED``); None for any other
    failure (``UNAVAILABLE`` that the service itself answered, say), which keeps the
    service's own words."""
    if status == "DEADLINE_EXCEEDED":
        return line(
            Failure(READ_TIMEOUT, _no_answer(_seconds(address.timeout, read=True))), address
        )
    if status != "UNAVAILABLE":
        return None
    failure = failure_of_text(details, address.timeout)
    if failure is None:
        return None
    if failure.kind in NOT_CONNECTED:
        proxy = _grpc_proxy(shown_host(address.url))
        if proxy is not None:
            failure = _through_proxy(failure, *proxy)
    return line(Failure(failure.kind, failure.cause, None, failure.proxy_variable), address)


def describe_text(text: str, address: Address) -> str | None:
    """One line for a library's text of a network failure (``HTTPSConnectionPool(host=…)
    … NameResolutionError …``); None if the text names none."""
    failure = failure_of_text(text, address.timeout)
    return None if failure is None else line(failure, address)


def shown_host(address: str) -> str:
    """``host`` or ``host:port`` (the port when not the scheme's default) of a URL or a
    gRPC endpoint (``host[:port]``, TLS by default)."""
    text = address.strip()
    parts = urlsplit(text if "://" in text else f"grpc://{text}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return parts.netloc or text
    if not host:
        return parts.netloc or text
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        shown += f":{port}"
    return shown


# --- reading an exception ---


def failure_of(exc: BaseException, timeout: Timeout = None) -> Failure:
    """What a failed request of ``requests`` (or an error wrapping one) met."""
    chain = _chain(exc)
    url = _request_url(chain)
    host = shown_host(url) if url else _pool_host(chain)
    found = _failure_in(chain, timeout)
    if any(
        isinstance(e, requests.exceptions.ProxyError | urllib3.exceptions.ProxyError) for e in chain
    ):
        proxy, variable = _requests_proxy(url, chain)
        found = _through_proxy(found, proxy, variable)
    return Failure(found.kind, found.cause, host, found.proxy_variable)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception under it: its ``args``, urllib3's ``reason``, the
    ``__cause__`` and ``__context__`` (breadth first, each once)."""
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    found: list[BaseException] = []
    while queue and len(found) < 40:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        for under in (*current.args, getattr(current, "reason", None), current.__cause__,
                      current.__context__):  # fmt: skip
            if isinstance(under, BaseException):
                queue.append(under)
    return found


def _failure_in(chain: list[BaseException], timeout: Timeout) -> Failure:
    def first(*kinds: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kinds)), None)

    gai = first(socket.gaierror)
    if gai is not None or first(urllib3.exceptions.NameResolutionError):
        return Failure(DNS, _dns_words(getattr(gai, "errno", None)))
    if first(ConnectionRefusedError):
        return Failure(REFUSED, "connection refused")
    certificate = first(ssl.SSLCertVerificationError)
    if certificate is not None:
        return Failure(CERTIFICATE, _certificate_words(certificate))
    tunnel = _tunnel_refusal(chain)
    if tunnel is not None:
        return tunnel
    connect_timeout = next(
        (
            e
            for e in chain
            if isinstance(e, requests.exceptions.ConnectTimeout)
            or (
                isinstance(e, urllib3.exceptions.ConnectTimeoutError)
                and not isinstance(e, urllib3.exceptions.NewConnectionError)
            )
        ),
        None,
    )
    if connect_timeout is not None:
        seconds = _said_seconds(chain, "connect") or _seconds(timeout, read=False)
        return Failure(CONNECT_TIMEOUT, _no_connection(seconds))
    if first(ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError):
        return Failure(TLS, "TLS handshake failed")
    if first(requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError,
             TimeoutError, socket.timeout):  # fmt: skip
        seconds = _said_seconds(chain, "read") or _seconds(timeout, read=True)
        if any("handshake" in str(e).lower() for e in chain if isinstance(e, TimeoutError)):
            return Failure(READ_TIMEOUT, f"no TLS handshake within {seconds}" if seconds else
                           "the TLS handshake timed out")  # fmt: skip
        return Failure(READ_TIMEOUT, _no_answer(seconds))
    unreachable = next(
        (
            e
            for e in chain
            if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        ),
        None,
    )
    if unreachable is not None:
        return Failure(UNREACHABLE, _unreachable_words(unreachable.errno))
    if first(ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
             http.client.RemoteDisconnected, http.client.IncompleteRead,
             urllib3.exceptions.ProtocolError):  # fmt: skip
        return Failure(CLOSED, "the connection was closed before the answer")
    if first(requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
        return Failure(CLOSED, "the answer broke off")
    by_text = failure_of_text(" ".join(str(e) for e in chain), timeout, proxies=False)
    if by_text is not None:
        return by_text
    if first(requests.ConnectionError, ConnectionError):
        return Failure(OTHER, "no connection")
    return Failure(OTHER, "the request failed")


def _request_url(chain: Iterable[BaseException]) -> str | None:
    for e in chain:
        request = getattr(e, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and url:
            return url
    return None


def _pool_host(chain: Iterable[BaseException]) -> str | None:
    for e in chain:
        pool = getattr(e, "pool", None) if isinstance(e, urllib3.exceptions.PoolError) else None
        host, port = getattr(pool, "host", None), getattr(pool, "port", None)
        if isinstance(host, str) and host:
            scheme = str(getattr(pool, "scheme", "") or "https")
            return shown_host(f"{scheme}://{host}" + (f":{port}" if port else ""))
    return None


def _tunnel_refusal(chain: Iterable[BaseException]) -> Failure | None:
    return next((f for f in (_tunnel_refusal_text(str(e)) for e in chain) if f), None)


def _tunnel_refusal_text(text: str) -> Failure | None:
    """A proxy's error answer to CONNECT ("407 Proxy Authentication Required"), if the
    text tells of one."""
    found = _TUNNEL.search(text)
    return Failure(TUNNEL, found.group(1).strip()) if found else None


def _requests_proxy(
    url: str | None, chain: Iterable[BaseException]
) -> tuple[str | None, str | None]:
    """The proxy ``requests`` went through for ``url`` (from the environment) and the
    variable that set it; else the host of the connection that failed."""
    if url:
        try:
            proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        except (ValueError, OSError):  # an unparseable proxy setting
            proxy = None
        if proxy:
            scheme = urlsplit(url).scheme
            return _proxy_host(proxy), _variable_of(proxy, (f"{scheme}_proxy", "all_proxy"))
    for e in chain:
        if isinstance(e, urllib3.exceptions.NewConnectionError):
            host = getattr(e.conn, "host", None)
            port = getattr(e.conn, "port", None)
            if isinstance(host, str) and host:
                return f"{host}:{port}" if port else host, None
    return None, None


def _proxy_host(proxy: str) -> str:
    return shown_host(proxy if "://" in proxy else f"http://{proxy}")


def _variable_of(value: str, names: Iterable[str]) -> str | None:
    for name in names:
        for variable in (name, name.upper()):
            if os.environ.get(variable) == value:
                return variable
    return None


def _grpc_proxy(endpoint: str) -> tuple[str, str] | None:
    """The HTTP proxy gRPC goes through to ``endpoint`` — ``grpc_proxy``, else
    ``https_proxy``, else ``http_proxy``, unless ``no_grpc_proxy`` (else ``no_proxy``)
    exempts the host; gRPC reads these lower-case names only — and its variable."""
    names = ("grpc_proxy", "https_proxy", "http_proxy")
    variable = next((name for name in names if os.environ.get(name)), None)
    if variable is None:
        return None
    host = (urlsplit(f"grpc://{endpoint}").hostname or "").lower()
    exempt = os.environ.get("no_grpc_proxy") or os.environ.get("no_proxy") or ""  # noqa: SIM112 - gRPC's own lower-case names
    for entry in exempt.split(","):
        suffix = entry.strip().lower().rsplit(":", 1)[0].lstrip(".")
        if suffix == "*" or (suffix and (host == suffix or host.endswith("." + suffix))):
            return None
    return _proxy_host(os.environ[variable]), variable


def _through_proxy(found: Failure, proxy: str | None, variable: str | None) -> Failure:
    at = f"proxy {proxy}" if proxy else "the proxy"
    if found.kind == DNS:
        words = f"{at}: host name not found (DNS)"
    elif found.kind == REFUSED:
        words = f"{at} refused the connection"
    elif found.kind == CONNECT_TIMEOUT:
        words = f"{at} did not take the connection in time"
    elif found.kind == TUNNEL:
        words = f"{at} answered {found.cause}"
    else:
        words = f"{at} failed ({found.cause})"
    return Failure(PROXY, words, found.host, variable)


# --- reading a text ---

#: (kind, words, patterns) in the order they are tried; proxy first (its text quotes
#: the proxy's own refusal), certificates before other TLS trouble
_TEXT_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (PROXY, "", ("proxyerror", "unable to connect to proxy", "tunnel connection failed")),
    (CERTIFICATE, "TLS certificate rejected",
     ("certificate_verify_failed", "certificate verify failed", "hostname mismatch",
      "certificate has expired", "self-signed certificate", "self signed certificate",
      "unable to get local issuer")),
    (TLS, "TLS handshake failed",
     ("sslerror", "ssl_error", "ssl handshake", "handshake failed", "tsi_", "[ssl",
      "wrong_version_number", "tls handshake")),
    (DNS, "host name not found (DNS)",
     ("nameresolutionerror", "failed to resolve", "name or service not known",
      "nodename nor servname", "temporary failure in name resolution",
      "dns resolution failed", "errors resolving", "domain name not found",
      "could not resolve", "getaddrinfo", "no address associated")),
    (REFUSED, "connection refused", ("connection refused", "econnrefused", ": refused")),
    (CONNECT_TIMEOUT, "", ("connecttimeouterror", "connect timeout=", "connection timed out",
                           "connect timed out", "timeout occurred")),
    (READ_TIMEOUT, "", ("read timed out", "readtimeouterror", "deadline exceeded",
                        "timed out")),
    (UNREACHABLE, "network unreachable", ("network is unreachable", "no route to host")),
    (CLOSED, "the connection was closed before the answer",
     ("connection reset", "connection aborted", "remotedisconnected", "remote end closed",
      "socket closed", "broken pipe", "end of tcp stream", "connection closed")),
    (OTHER, "no connection", ("failed to connect to all addresses", "failed to connect",
                              "failed to establish a new connection",
                              "connectionpool(host=")),
)  # fmt: skip


def failure_of_text(text: str, timeout: Timeout = None, *, proxies: bool = True) -> Failure | None:
    """What a library's text of a failure says happened; None if it names nothing of a
    network's trouble. ``proxies=False`` reads a proxy's failure as its plain cause."""
    lowered = text.lower()
    found = _HOST_IN_TEXT.search(text)
    host = None
    if found:
        scheme = "https" if found.group(2) == "443" else "http"
        host = shown_host(f"{scheme}://{found.group(1)}:{found.group(2)}")
    for kind, words, patterns in _TEXT_KINDS:
        if not any(p in lowered for p in patterns):
            continue
        if kind == PROXY:
            if not proxies:
                continue
            inner = (
                _tunnel_refusal_text(text)
                or failure_of_text(text, timeout, proxies=False)
                or Failure(OTHER, "no connection")
            )
            return replace(_through_proxy(inner, _proxy_in_text(text), None), host=host)
        if kind == CONNECT_TIMEOUT:
            seconds = _said_seconds_text(text, "connect") or _seconds(timeout, read=False)
            words = _no_connection(seconds)
        elif kind == READ_TIMEOUT:
            words = _no_answer(_said_seconds_text(text, "read") or _seconds(timeout, read=True))
        return Failure(kind, words, host)
    return None


def _proxy_in_text(text: str) -> str | None:
    hosts = _HOST_IN_TEXT.findall(text)
    if len(hosts) >= 2:  # the pool's host, then the proxy's connection
        host, port = hosts[-1]
        return f"{host}:{port}"
    return None


# --- words ---


def _dns_words(code: int | None) -> str:
    if code == socket.EAI_AGAIN:
        return "DNS lookup failed (no answer from the DNS server)"
    return "host name not found (DNS)"


#: OpenSSL's verify messages, shortened (the first that starts the message)
_CERTIFICATE_PROBLEMS = (
    ("self-signed", "self-signed"),
    ("self signed", "self-signed"),
    ("unable to get local issuer", "unknown issuer"),
    ("unable to get issuer", "unknown issuer"),
    ("certificate has expired", "expired"),
    ("certificate is not yet valid", "not yet valid"),
    ("hostname mismatch", "issued for another host"),
    ("ip address mismatch", "issued for another host"),
)


def _certificate_words(exc: BaseException) -> str:
    said = str(getattr(exc, "verify_message", "") or "").strip().lower()
    short = next((words for start, words in _CERTIFICATE_PROBLEMS if said.startswith(start)), "")
    if not short and said and len(said) <= 40:
        short = said
    return f"TLS certificate rejected ({short})" if short else "TLS certificate rejected"


def _unreachable_words(code: int | None) -> str:
    return "no route to the host" if code == errno.EHOSTUNREACH else "network unreachable"


def _no_answer(seconds: str | None) -> str:
    return f"no answer within {seconds}" if seconds else "no answer in time"


def _no_connection(seconds: str | None) -> str:
    return f"no connection within {seconds}" if seconds else "no connection in time"


def _seconds(timeout: Timeout, *, read: bool) -> str | None:
    if timeout is None:
        return None
    value = timeout if isinstance(timeout, int | float) else timeout[1 if read else 0]
    return f"{value:g} s"


def _said_seconds(chain: Iterable[BaseException], which: str) -> str | None:
    for e in chain:
        found = _said_seconds_text(str(e), which)
        if found:
            return found
    return None


def _said_seconds_text(text: str, which: str) -> str | None:
    for kind, value in _SECONDS_IN_TEXT.findall(text):
        if kind == which:
            try:
                return f"{float(value):g} s"
            except ValueError:
                return None
    return None
