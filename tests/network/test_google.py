"""Google out of reach, through the real clients: the OAuth token refresh (google-auth over
``requests``) stops the destination in ``connect``; a gRPC call of the Data Manager API or
the Google Ads API that fails in the network comes back transient — each in one plain
line naming the host, what happened and ``endpoint`` or ``auth.token_uri``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable, TransientError
from convsync.core.model import OutboundRow, OutcomeKind
from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget
from convsync.destinations.google_ads.datamanager.destination import DataManagerDestination
from tests.datamanager_fake import FakeDataManager, destination_for
from tests.google_ads_fake import FakeGoogleAds
from tests.integration.google_ads.rows import NOW, conversion
from tests.integration.google_ads.rows import rows_for as ads_rows
from tests.network.servers import assert_plain, closed_port, plain_http_server, silent_server

ENDPOINT_KEY = "destinations.google.endpoint"
TOKEN_KEY = "destinations.google.auth.token_uri"
DM_TARGET = GoogleAdsTarget.model_validate(
    {"conversion_action": 987654321}, context={"api": "data_manager"}
)


@pytest.fixture
def dm(datamanager_fake: FakeDataManager) -> Iterator[Callable[..., DataManagerDestination]]:
    """``dm(timeout, **config)``: a Data Manager destination on the fake, config changed."""
    made: list[DataManagerDestination] = []

    def make(timeout: float = 5.0, **overrides: Any) -> DataManagerDestination:
        destination = destination_for(datamanager_fake, **overrides)
        destination.clock = lambda: NOW
        destination.request_timeout = timeout
        made.append(destination)
        return destination

    yield make
    for destination in made:
        destination.close()


def rows(destination: DataManagerDestination) -> list[OutboundRow]:
    made = conversion(0, attributes=None)
    return [OutboundRow(1, made, destination.build(made, DM_TARGET, NOW), batch_id="b1")]


def with_token_uri(fake: FakeDataManager, token_uri: str | None) -> dict[str, Any]:
    auth = dict(fake.oauth.oauth_client())
    if token_uri is None:
        del auth["token_uri"]  # Google's own
    else:
        auth["token_uri"] = token_uri
    return auth


def connect_stop(destination: DataManagerDestination | GoogleAdsDestination) -> str:
    with pytest.raises(DestinationUnavailable) as caught:
        destination.connect()
    return f"{caught.value.code}: {caught.value.message}"


def sent_transient(destination: DataManagerDestination) -> str:
    destination.connect()
    [outcome] = destination.send(rows(destination))
    assert outcome.kind is OutcomeKind.TRANSIENT
    assert outcome.message is not None
    return outcome.message


# --- the token endpoint -------------------------------------------------------------


def test_a_token_endpoint_that_refuses(
    datamanager_fake: FakeDataManager, dm: Callable[..., DataManagerDestination]
) -> None:
    port = closed_port()
    auth = with_token_uri(datamanager_fake, f"http://127.0.0.1:{port}/token")
    note = connect_stop(dm(auth=auth))
    assert note == (
        f"auth_unreachable: Google OAuth at 127.0.0.1:{port}: connection refused; "
        f"check the network, DNS, proxy or {TOKEN_KEY}"
    )


def test_googles_token_endpoint_that_does_not_resolve(
    datamanager_fake: FakeDataManager,
    dm: Callable[..., DataManagerDestination],
    unresolvable: Callable[[str], str],
) -> None:
    unresolvable("oauth2.googleapis.com")
    note = connect_stop(dm(auth=with_token_uri(datamanager_fake, None)))
    assert note == (
        "auth_unreachable: Google OAuth at oauth2.googleapis.com: host name not "
        f"found (DNS); check the network, DNS, proxy or {TOKEN_KEY}"
    )


def test_a_token_endpoint_that_does_not_speak_tls(
    datamanager_fake: FakeDataManager, dm: Callable[..., DataManagerDestination]
) -> None:
    with plain_http_server() as port:
        auth = with_token_uri(datamanager_fake, f"https://127.0.0.1:{port}/token")
        note = connect_stop(dm(auth=auth))
    assert_plain(note, host=f"127.0.0.1:{port}", key=TOKEN_KEY, cause="TLS handshake failed")


def test_a_token_endpoint_that_never_answers(
    datamanager_fake: FakeDataManager, dm: Callable[..., DataManagerDestination]
) -> None:
    with silent_server() as port:
        auth = with_token_uri(datamanager_fake, f"http://127.0.0.1:{port}/token")
        note = connect_stop(dm(timeout=0.3, auth=auth))
    assert_plain(note, host=f"127.0.0.1:{port}", key=TOKEN_KEY, cause="no answer within 0.3 s")


def test_a_token_endpoint_behind_a_broken_proxy(
    datamanager_fake: FakeDataManager, dm: Callable[..., DataManagerDestination], broken_proxy: str
) -> None:
    note = connect_stop(dm(auth=with_token_uri(datamanager_fake, None)))
    assert note == (
        f"auth_unreachable: Google OAuth at oauth2.googleapis.com: proxy {broken_proxy} "
        f"refused the connection; check HTTPS_PROXY or {TOKEN_KEY}"
    )


def test_the_token_refresh_that_fails_in_the_middle_of_a_run(
    datamanager_fake: FakeDataManager, dm: Callable[..., DataManagerDestination]
) -> None:
    """The access token runs out during the run and gRPC cannot renew it: gRPC reports
    the token endpoint's failure in its own debug text; the message is plain."""
    datamanager_fake.oauth.expires_in = 60  # google-auth renews it before every call
    google = dm()
    google.connect()
    token_host = datamanager_fake.oauth.base_url.removeprefix("http://")
    datamanager_fake.oauth.stop()
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows(google))
    assert caught.value.code == "auth_unavailable"
    note = f"{caught.value.code}: {caught.value.message}"
    assert note == (
        f"auth_unavailable: Google OAuth at {token_host}: connection refused; check "
        f"the network, DNS, proxy or {TOKEN_KEY}"
    )


# --- the Data Manager API (gRPC) --------------------------------------------------------


def test_an_endpoint_that_refuses(dm: Callable[..., DataManagerDestination]) -> None:
    port = closed_port()
    message = sent_transient(dm(endpoint=f"127.0.0.1:{port}"))
    assert message == (
        f"Data Manager API at 127.0.0.1:{port}: connection refused; check the network, DNS, "
        f"proxy or {ENDPOINT_KEY}"
    )


def test_an_endpoint_that_does_not_speak_tls(dm: Callable[..., DataManagerDestination]) -> None:
    with plain_http_server() as port:
        message = sent_transient(dm(endpoint=f"127.0.0.1:{port}"))
    assert_plain(message, host=f"127.0.0.1:{port}", key=ENDPOINT_KEY, cause="TLS handshake failed")


def test_an_endpoint_that_never_answers(dm: Callable[..., DataManagerDestination]) -> None:
    with silent_server() as port:
        message = sent_transient(dm(timeout=0.5, endpoint=f"127.0.0.1:{port}"))
    assert_plain(
        message, host=f"127.0.0.1:{port}", key=ENDPOINT_KEY, cause="no answer within 0.5 s"
    )


def test_an_endpoint_behind_a_broken_proxy(
    dm: Callable[..., DataManagerDestination], monkeypatch: pytest.MonkeyPatch
) -> None:
    """gRPC goes through https_proxy (its lower-case name; the token refresh, to an
    http:// fake, does not)."""
    proxy = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("https_proxy", f"http://{proxy}")
    google = dm(endpoint="datamanager.googleapis.com")  # never resolved: the proxy is asked
    message = sent_transient(google)
    assert message == (
        f"Data Manager API at datamanager.googleapis.com: proxy {proxy} refused the "
        f"connection; check https_proxy or {ENDPOINT_KEY}"
    )


# --- the Google Ads API (gRPC) ------------------------------------------------------------


def ads(fake: FakeGoogleAds, **overrides: Any) -> GoogleAdsDestination:
    config = GoogleAdsConfig.model_validate(fake.destination_config(**overrides))
    destination = GoogleAdsDestination("google", config)
    destination.clock = lambda: NOW
    return destination


def test_the_google_ads_api_endpoint_that_refuses(google_ads_fake: FakeGoogleAds) -> None:
    port = closed_port()
    google = ads(google_ads_fake, endpoint=f"127.0.0.1:{port}")
    google.connect()
    try:
        with pytest.raises(TransientError) as caught:
            google.send(ads_rows(google, [conversion(0)]))
    finally:
        google.close()
    assert caught.value.code == "unavailable"
    assert str(caught.value) == (
        f"Google Ads API at 127.0.0.1:{port}: connection refused; check the network, DNS, "
        f"proxy or {ENDPOINT_KEY}"
    )


def test_the_google_ads_api_endpoint_that_never_answers(google_ads_fake: FakeGoogleAds) -> None:
    with silent_server() as port:
        google = ads(google_ads_fake, endpoint=f"127.0.0.1:{port}")
        google.request_timeout = 0.5
        google.connect()
        try:
            with pytest.raises(TransientError) as caught:
                google.send(ads_rows(google, [conversion(0)]))
        finally:
            google.close()
    assert caught.value.code == "deadline_exceeded"
    assert_plain(
        str(caught.value),
        host=f"127.0.0.1:{port}",
        key=ENDPOINT_KEY,
        cause="no answer within 0.5 s",
    )


def test_the_google_ads_api_token_endpoint_that_refuses(google_ads_fake: FakeGoogleAds) -> None:
    port = closed_port()
    auth = {**google_ads_fake.oauth.oauth_client(), "token_uri": f"http://127.0.0.1:{port}/t"}
    google = ads(google_ads_fake, auth=auth)
    try:
        note = connect_stop(google)
    finally:
        google.close()
    assert_plain(note, host=f"127.0.0.1:{port}", key=TOKEN_KEY, cause="connection refused")
