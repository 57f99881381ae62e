"""The VK Ads API token against the fake token endpoint: one token for many runs (kept
in a real ledger), refreshed before it expires and after VK dropped it, a new one only
when the refresh token is gone, ``token_limit_exceeded`` explained, the rate-limit
headers obeyed — and no credential in any message or log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import requests
import structlog

from convsync.core.errors import DestinationUnavailable
from convsync.core.logging import NOISY_LOGGERS, configure_logging
from convsync.destinations.vk_ads import VkAdsDestination
from convsync.destinations.vk_ads.api import RateGovernor, VkAdsApi
from convsync.destinations.vk_ads.auth import VkAdsAuth
from convsync.destinations.vk_ads.config import VkAdsConfig
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import LedgerTokens
from tests.clock import Clock
from tests.vk_fake import FakeVk

from .conftest import NOW

USER = "/api/v2/user.json"


def destination(fake: FakeVk, client: tuple[str, str], clock: Clock) -> VkAdsDestination:
    client_id, secret = client
    config = fake.destination_config(client_id=client_id, client_secret=secret)
    made = VkAdsDestination("vk", VkAdsConfig.model_validate(config))
    made.clock = clock
    return made


def run(fake: FakeVk, client: tuple[str, str], clock: Clock, ledger: Ledger) -> object:
    """One run's use of the API, as the pipeline sets a destination up."""
    vk = destination(fake, client, clock)
    vk.tokens = LedgerTokens(ledger, clock)
    vk.connect()
    try:
        return vk.api().request("GET", USER)
    finally:
        vk.close()


def test_one_token_serves_many_runs_and_is_refreshed_before_it_expires(
    fake: FakeVk, ledger: Ledger
) -> None:
    client = fake.api.new_client()
    clock = Clock(NOW)
    for _ in range(5):
        assert run(fake, client, clock, ledger) == {
            "id": 42,
            "username": "convsync-test",
            "types": ["ads"],
        }
        clock.now += timedelta(hours=2)
    assert fake.api.grant_types() == ["client_credentials"]
    first = ledger.load_token(f"vk_ads:vk:{client[0]}")
    assert first is not None and set(first) == {"access_token", "refresh_token", "expires_at"}

    clock.now = datetime.fromisoformat(first["expires_at"]) - timedelta(minutes=5)
    run(fake, client, clock, ledger)
    assert fake.api.grant_types() == ["client_credentials", "refresh_token"]
    refreshed = ledger.load_token(f"vk_ads:vk:{client[0]}")
    assert refreshed is not None
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert fake.api.live(client[0]) == [refreshed["access_token"]]  # still one live token
    run(fake, client, clock, ledger)
    assert len(fake.api.grants) == 2
    assert [authorization for _, authorization in fake.api.calls][-1] == (
        f"Bearer {refreshed['access_token']}"
    )


def test_a_token_vk_dropped_early_is_refreshed_once_and_the_call_repeated(
    fake: FakeVk, ledger: Ledger
) -> None:
    client = fake.api.new_client()
    clock = Clock(NOW)
    run(fake, client, clock, ledger)
    fake.api.expire_all()
    assert run(fake, client, clock, ledger) is not None
    assert fake.api.grant_types() == ["client_credentials", "refresh_token"]
    assert len(fake.api.calls) == 3  # ok, 401, ok


def test_a_refresh_token_that_no_longer_works_gets_a_new_token(
    fake: FakeVk, ledger: Ledger
) -> None:
    client = fake.api.new_client()
    clock = Clock(NOW)
    run(fake, client, clock, ledger)
    requests.post(  # someone deleted the client's tokens
        fake.api_base_url + "/api/v2/oauth2/token/delete.json",
        data={"client_id": client[0], "client_secret": client[1]},
        timeout=5,
    ).close()
    clock.now += timedelta(days=2)
    run(fake, client, clock, ledger)
    assert fake.api.grant_types() == ["client_credentials", "refresh_token", "client_credentials"]
    assert len(fake.api.live(client[0])) == 1


def test_token_limit_exceeded_stops_with_how_to_delete_old_tokens(fake: FakeVk) -> None:
    client = fake.api.new_client()
    fake.api.max_live = 0
    vk = destination(fake, client, Clock(NOW))
    vk.connect()
    try:
        with pytest.raises(DestinationUnavailable) as caught:
            vk.api().request("GET", USER)
    finally:
        vk.close()
    error = caught.value
    assert error.code == "token_limit_exceeded"
    assert f"{fake.api_base_url}/api/v2/oauth2/token/delete.json" in error.message
    assert (
        f"client_id={client[0]}" in error.message and "client_secret=<the secret>" in error.message
    )
    assert "cabinet" in error.message and "Deliveries stay pending" in error.message
    assert client[1] not in error.message
    assert fake.api.calls == []


def test_a_wrong_secret_stops_with_a_message_without_it(fake: FakeVk) -> None:
    client_id, _ = fake.api.new_client()
    wrong = "vks-this-is-not-the-secret-0123456789"
    vk = destination(fake, (client_id, wrong), Clock(NOW))
    vk.connect()
    try:
        with pytest.raises(DestinationUnavailable) as caught:
            vk.api().request("GET", USER)
    finally:
        vk.close()
    assert caught.value.code == "auth_failed"
    assert "invalid_client" in caught.value.message
    assert wrong not in caught.value.message


def test_rate_limit_headers_slow_the_calls_down_and_stop_them_at_zero(fake: FakeVk) -> None:
    client_id, secret = fake.api.new_client()
    config = VkAdsConfig.model_validate(
        fake.destination_config(client_id=client_id, client_secret=secret)
    )
    sleeps: list[float] = []
    clock = Clock(NOW)
    with requests.Session() as session:
        auth = VkAdsAuth("vk", config, session, _Tokens(), clock)
        api = VkAdsApi(fake.api_base_url, auth, session, RateGovernor("vk", sleep=sleeps.append))
        api.request("GET", USER)
        assert sleeps == []
        fake.api.limits["RPS"] = (10, 1)
        api.request("GET", USER)  # this answer says: one left this second
        api.request("GET", USER)
        assert len(sleeps) == 1 and 0.5 < sleeps[0] <= 1.0
        fake.api.limits["RPS"] = (10, 9)
        fake.api.limits["Hourly"] = (2000, 0)
        api.request("GET", USER)
        with pytest.raises(DestinationUnavailable) as caught:
            api.request("GET", USER)
    assert caught.value.code == "api_hourly_limit"
    assert len(fake.api.calls) == 4


class _Tokens:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, object]] = {}

    def load(self, name: str) -> dict[str, object] | None:
        return self.data.get(name)

    def save(self, name: str, data: object) -> None:
        self.data[name] = dict(data)  # type: ignore[call-overload]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    buf = io.StringIO()
    configure_logging("json", "DEBUG", stream=buf)
    yield buf
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lib_level in noisy.items():
        logging.getLogger(name).setLevel(lib_level)
    structlog.reset_defaults()


def test_no_secret_or_token_in_log_lines(
    fake: FakeVk, ledger: Ledger, log_lines: io.StringIO
) -> None:
    client = fake.api.new_client()
    clock = Clock(NOW)
    run(fake, client, clock, ledger)
    clock.now += timedelta(days=1)
    run(fake, client, clock, ledger)  # refreshed
    stored = ledger.load_token(f"vk_ads:vk:{client[0]}")
    assert stored is not None
    logging.getLogger("convsync.test").info(
        "a careless line %s %s %s", client[1], stored["access_token"], stored["refresh_token"]
    )
    text = log_lines.getvalue()
    assert "VK Ads API token issued" in text and "VK Ads API token refreshed" in text
    for secret in (client[1], stored["access_token"], stored["refresh_token"]):
        assert secret not in text
