"""``convsync.core.network``: each kind of network failure of a real ``requests`` session
(``convsync.core.http``'s) against 127.0.0.1 — refused, TLS, timeouts, a broken proxy, a name
that does not resolve — and gRPC's texts of the same, in one plain line."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from convsync.core import network
from convsync.core.http import new_session
from tests.google_ads_fake.tls import trusted_test_certificate
from tests.network.servers import (
    FORBIDDEN,
    assert_plain,
    closed_port,
    plain_http_server,
    silent_server,
)

KEY = "destinations.metrica.api_base_url"


def failed(url: str, timeout: float | tuple[float, float] = (2.0, 2.0)) -> BaseException:
    """What a GET of ``url`` through convsync's session raises."""
    session = new_session(timeout=timeout)
    try:
        session.get(url)
    except requests.RequestException as exc:
        return exc
    finally:
        session.close()
    raise AssertionError(f"GET {url} did not fail")


def said(url: str, exc: BaseException, timeout: network.Timeout = None) -> str:
    return network.describe(exc, network.Address("Metrica API", url, KEY, timeout))


def test_a_refused_connection() -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/x"
    text = said(url, failed(url))
    assert text == (
        f"Metrica API at 127.0.0.1:{port}: connection refused; check the network, DNS, "
        f"proxy or {KEY}"
    )
    assert_plain(text, host=f"127.0.0.1:{port}", key=KEY, cause="connection refused")


def test_a_name_that_does_not_resolve(unresolvable: Callable[[str], str]) -> None:
    host = unresolvable("api-metrika.yandex.net")
    url = f"https://{host}/management/v1/counter/1"
    text = said(url, failed(url))
    assert text == (
        f"Metrica API at {host}: host name not found (DNS); check the network, DNS, proxy or {KEY}"
    )


def test_a_server_that_does_not_speak_tls() -> None:
    with plain_http_server() as port:
        url = f"https://127.0.0.1:{port}/x"
        text = said(url, failed(url))
    assert_plain(text, host=f"127.0.0.1:{port}", key=KEY, cause="TLS handshake failed")


@pytest.fixture
def self_signed_server() -> Iterator[int]:
    """A TLS server with a certificate nobody trusts (the tests' self-signed one)."""
    material = trusted_test_certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert = material.roots_file.parent / "cert.pem"
    key = material.roots_file.parent / "key.pem"
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2.0)
                context.wrap_socket(conn, server_side=True).close()
            except OSError:  # the client gave up on the certificate
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    listener.close()


def test_a_certificate_that_is_not_trusted(self_signed_server: int) -> None:
    url = f"https://127.0.0.1:{self_signed_server}/x"
    text = said(url, failed(url))
    assert_plain(
        text,
        host=f"127.0.0.1:{self_signed_server}",
        key=KEY,
        cause="TLS certificate rejected (self-signed)",
    )


def test_a_server_that_never_answers() -> None:
    with silent_server() as port:
        url = f"http://127.0.0.1:{port}/x"
        text = said(url, failed(url, timeout=(2.0, 0.2)))
    assert_plain(text, host=f"127.0.0.1:{port}", key=KEY, cause="no answer within 0.2 s")


def test_a_tls_server_that_never_answers() -> None:
    with silent_server() as port:
        url = f"https://127.0.0.1:{port}/x"
        text = said(url, failed(url, timeout=(0.2, 0.2)))
    assert_plain(text, host=f"127.0.0.1:{port}", key=KEY, cause="within 0.2 s")


def test_a_connect_timeout() -> None:
    """No loopback address drops a connection attempt: urllib3's own exception, as
    requests raises it."""
    import urllib3.exceptions

    pool = urllib3.HTTPSConnectionPool("api-metrika.yandex.net", 443)
    inner = urllib3.exceptions.ConnectTimeoutError(
        pool, "Connection to api-metrika.yandex.net timed out. (connect timeout=10.0)"
    )
    error = requests.exceptions.ConnectTimeout(
        urllib3.exceptions.MaxRetryError(pool, "/x", inner),
        request=requests.Request("GET", "https://api-metrika.yandex.net/x").prepare(),
    )
    text = said("https://api-metrika.yandex.net", error)
    assert_plain(text, host="api-metrika.yandex.net", key=KEY, cause="no connection within 10 s")


def test_a_proxy_that_refuses(broken_proxy: str) -> None:
    url = "https://api-metrika.yandex.net/x"  # never resolved: the proxy is asked first
    text = said(url, failed(url))
    assert text == (
        f"Metrica API at api-metrika.yandex.net: proxy {broken_proxy} refused the connection; "
        f"check HTTPS_PROXY or {KEY}"
    )
    assert_plain(text, host="api-metrika.yandex.net", key=KEY, cause=f"proxy {broken_proxy}")


def test_a_proxy_of_plain_http(broken_proxy: str) -> None:
    url = "http://metrica.test:8080/x"
    text = said(url, failed(url))
    assert text.startswith(f"Metrica API at metrica.test:8080: proxy {broken_proxy} refused")
    assert "check HTTP_PROXY or" in text


def test_a_proxy_that_refuses_the_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    from tests.network.servers import _serving

    with _serving(answer) as port:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        url = "https://api-metrika.yandex.net/x"
        text = said(url, failed(url))
    assert_plain(
        text,
        host="api-metrika.yandex.net",
        key=KEY,
        cause=f"proxy 127.0.0.1:{port} answered 407 Proxy Authentication Required",
    )


def test_a_proxy_whose_name_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch, unresolvable: Callable[[str], str]
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://{unresolvable('proxy.corp.test')}:3128")
    url = "https://api-metrika.yandex.net/x"
    text = said(url, failed(url))
    assert_plain(
        text,
        host="api-metrika.yandex.net",
        key=KEY,
        cause="proxy proxy.corp.test:3128: host name not found (DNS)",
    )


def test_the_default_port_is_not_shown_and_another_is() -> None:
    assert network.shown_host("https://api-metrika.yandex.net/x") == "api-metrika.yandex.net"
    assert network.shown_host("https://api-metrika.yandex.net:8443/x") == (
        "api-metrika.yandex.net:8443"
    )
    assert network.shown_host("http://127.0.0.1:80/x") == "127.0.0.1"
    assert network.shown_host("datamanager.googleapis.com") == "datamanager.googleapis.com"
    assert network.shown_host("datamanager.googleapis.com:443") == "datamanager.googleapis.com"
    assert network.shown_host("127.0.0.1:5001") == "127.0.0.1:5001"
    assert network.shown_host("[::1]:5001") == "[::1]:5001"


# --- gRPC's words --------------------------------------------------------------------

DM = network.Address(
    "Data Manager API", "datamanager.googleapis.com", "destinations.google.endpoint", 120.0
)
GRPC_TEXTS = [
    (
        "UNAVAILABLE",
        "DNS resolution failed for datamanager.googleapis.com:443: C-ares status is not "
        "ARES_SUCCESS qtype=A name=datamanager.googleapis.com is_balancer=0: Domain name not found",
        "host name not found (DNS)",
    ),
    (
        "UNAVAILABLE",
        "errors resolving datamanager.googleapis.com:443: [field:hostname lookup error:address "
        "lookup failed for datamanager.googleapis.com:443: Domain name not found]",
        "host name not found (DNS)",
    ),
    (
        "UNAVAILABLE",
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to "
        "connect to remote host: Connection refused",
        "connection refused",
    ),
    (
        "UNAVAILABLE",
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:37883: Ssl "
        "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:100000f7:SSL routines:"
        "OPENSSL_internal:WRONG_VERSION_NUMBER: Invalid certificate verification context: OK",
        "TLS handshake failed",
    ),
    (
        "UNAVAILABLE",
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:1.2.3.4:443: Failed to "
        'connect to remote host: Connection timed out {created_time:"2026-11-21T09:00:00Z"}',
        "no connection within 120 s",
    ),
    ("DEADLINE_EXCEEDED", "Deadline Exceeded", "no answer within 120 s"),
    ("UNAVAILABLE", "Socket closed", "the connection was closed before the answer"),
]


@pytest.mark.parametrize(("status", "details", "cause"), GRPC_TEXTS)
def test_grpc_failures_in_plain_words(status: str, details: str, cause: str) -> None:
    text = network.describe_grpc(status, details, DM)
    assert text is not None
    assert text == (
        f"Data Manager API at datamanager.googleapis.com: {cause}; check the network, DNS, "
        "proxy or destinations.google.endpoint"
    )
    for phrase in FORBIDDEN:
        assert phrase not in text


def test_an_answer_of_the_service_itself_keeps_its_words() -> None:
    assert network.describe_grpc("UNAVAILABLE", "The service is currently unavailable.", DM) is None
    assert (
        network.describe_grpc("INVALID_ARGUMENT", "Request contains an invalid argument.", DM)
        is None
    )


def test_grpc_through_a_proxy_names_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    refused = GRPC_TEXTS[2][1]
    assert network.describe_grpc("UNAVAILABLE", refused, DM) == (
        "Data Manager API at datamanager.googleapis.com: proxy 127.0.0.1:3128 refused the "
        "connection; check https_proxy or destinations.google.endpoint"
    )
    monkeypatch.setenv("no_proxy", "localhost,.googleapis.com")
    assert "proxy" not in (network.describe_grpc("UNAVAILABLE", refused, DM) or "")[:60]


def test_a_token_refresh_that_failed_inside_a_call_is_read_from_its_text() -> None:
    token = network.Address(
        "Google OAuth", "https://oauth2.googleapis.com/token",
        "destinations.google.auth.token_uri",
    )  # fmt: skip
    text = network.describe_text(
        "Getting metadata from plugin failed with error: HTTPSConnectionPool(host="
        "'oauth2.googleapis.com', port=443): Max retries exceeded with url: /token (Caused by "
        'NameResolutionError("<urllib3.connection.HTTPSConnection object at 0x7f3a>: Failed '
        "to resolve 'oauth2.googleapis.com' ([Errno -2] Name or service not known)\"))",
        token,
    )
    assert text == (
        "Google OAuth at oauth2.googleapis.com: host name not found (DNS); check the "
        "network, DNS, proxy or destinations.google.auth.token_uri"
    )
    proxied = network.describe_text(
        "Getting metadata from plugin failed with error: HTTPSConnectionPool(host="
        "'oauth2.googleapis.com', port=443): Max retries exceeded with url: /token (Caused by "
        "ProxyError('Unable to connect to proxy', NewConnectionError(\"HTTPSConnection(host="
        "'127.0.0.1', port=3128): Failed to establish a new connection: [Errno 111] Connection "
        'refused")))',
        token,
    )
    assert proxied is not None
    assert_plain(
        proxied,
        host="oauth2.googleapis.com",
        key="destinations.google.auth.token_uri",
        cause="proxy 127.0.0.1:3128 refused the connection",
    )
    assert network.describe_text("('invalid_grant: Bad Request', {})", token) is None


def test_a_server_that_closes_without_answering() -> None:
    from tests.network.servers import _serving

    with _serving(b"") as port:
        url = f"http://127.0.0.1:{port}/x"
        text = said(url, failed(url))
    assert_plain(
        text,
        host=f"127.0.0.1:{port}",
        key=KEY,
        cause="the connection was closed before the answer",
    )
