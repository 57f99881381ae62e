"""The Metrica destination out of reach: ``connect`` stops it for the run with one plain
line — the host, what happened, ``destinations.<name>.api_base_url`` — whatever the
network did (refused, TLS, no answer, a broken proxy, a name that does not resolve)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from convsync.core.errors import DestinationUnavailable, TransientError
from convsync.core.http import new_session
from convsync.destinations.yandex_metrica import MetricaDestination
from convsync.destinations.yandex_metrica.classify import UploadMaybeStored
from convsync.destinations.yandex_metrica.client import MetricaClient
from convsync.destinations.yandex_metrica.config import MetricaConfig
from tests.network.servers import assert_plain, closed_port, plain_http_server, silent_server

KEY = "destinations.metrica.api_base_url"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def stopped(api_base_url: str | None = None, timeout: tuple[float, float] = (2.0, 2.0)) -> str:
    """The run summary's note of a Metrica destination at ``api_base_url`` that cannot
    connect (``code: message``, as the worker records it)."""
    config = {"type": "yandex_metrica", "counter_id": 12345678, "token": "y0_test-token"}
    if api_base_url is not None:
        config["api_base_url"] = api_base_url
    metrica = MetricaDestination("metrica", MetricaConfig.model_validate(config))
    metrica.request_timeout = timeout
    try:
        with pytest.raises(DestinationUnavailable) as caught:
            metrica.connect()
    finally:
        metrica.close()
    assert caught.value.code == "metrica_unreachable"
    assert "y0_test-token" not in str(caught.value)
    return f"{caught.value.code}: {caught.value.message}"


def test_refused() -> None:
    port = closed_port()
    note = stopped(f"http://127.0.0.1:{port}")
    assert note == (
        f"metrica_unreachable: Metrica API at 127.0.0.1:{port}: connection refused; check "
        f"the network, DNS, proxy or {KEY}"
    )


def test_a_name_that_does_not_resolve(unresolvable: Callable[[str], str]) -> None:
    unresolvable("api-metrika.yandex.net")
    note = stopped()  # the default address
    assert note == (
        "metrica_unreachable: Metrica API at api-metrika.yandex.net: host name not found "
        f"(DNS); check the network, DNS, proxy or {KEY}"
    )
    assert_plain(note, host="api-metrika.yandex.net", key=KEY, cause="host name not found")


def test_tls_to_a_server_that_does_not_speak_it() -> None:
    with plain_http_server() as port:
        note = stopped(f"https://127.0.0.1:{port}")
    assert_plain(note, host=f"127.0.0.1:{port}", key=KEY, cause="TLS handshake failed")


def test_no_answer_in_time() -> None:
    with silent_server() as port:
        note = stopped(f"http://127.0.0.1:{port}", timeout=(2.0, 0.3))
    assert_plain(note, host=f"127.0.0.1:{port}", key=KEY, cause="no answer within 0.3 s")


def test_a_proxy_that_refuses(broken_proxy: str) -> None:
    note = stopped()
    assert note == (
        f"metrica_unreachable: Metrica API at api-metrika.yandex.net: proxy {broken_proxy} "
        f"refused the connection; check HTTPS_PROXY or {KEY}"
    )


# --- a call of the run (after connect): transient, or of unclear fate for an upload -----


def client_at(api_base_url: str, timeout: tuple[float, float] = (2.0, 2.0)) -> MetricaClient:
    config = MetricaConfig.model_validate(
        {
            "type": "yandex_metrica",
            "counter_id": 12345678,
            "token": "y0_test-token",
            "api_base_url": api_base_url,
        }
    )
    return MetricaClient("metrica", config, new_session(timeout=timeout), lambda: NOW)


def test_an_upload_refused_is_transient_with_the_plain_line() -> None:
    """Refused: the file never left, so it is simply transient (not of unclear fate)."""
    port = closed_port()
    client = client_at(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(TransientError) as caught:
            client.upload(b"ClientId,Target,DateTime\n", comment="b1", calls=False)
    finally:
        client.close()
    assert type(caught.value) is TransientError and caught.value.code == "connection_error"
    assert str(caught.value) == (
        f"Metrica API at 127.0.0.1:{port}: connection refused; check the network, DNS, proxy "
        f"or {KEY}"
    )


def test_an_upload_without_an_answer_is_of_unclear_fate_with_the_plain_line() -> None:
    with silent_server() as port:
        client = client_at(f"http://127.0.0.1:{port}", timeout=(2.0, 0.3))
        try:
            with pytest.raises(UploadMaybeStored) as caught:
                client.upload(b"ClientId,Target,DateTime\n", comment="b1", calls=False)
        finally:
            client.close()
    assert_plain(
        str(caught.value), host=f"127.0.0.1:{port}", key=KEY, cause="no answer within 0.3 s"
    )
