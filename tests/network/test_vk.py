"""VK Ads out of reach: the pixel tracker (the destination stops before anything is
counted, or an event that may have gone out is uncertain) and the Ads API's token
endpoint, each in one plain line naming the host and the key to check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable
from convsync.core.model import Conversion, Identifiers, OutboundRow, OutcomeKind, RowOutcome
from convsync.destinations.vk_ads import VkAdsDestination
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
from tests.network.servers import assert_plain, closed_port, plain_http_server, silent_server

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
TRACKER_KEY = "destinations.vk.tracker_url"
API_KEY = "destinations.vk.api_base_url"


def vk(**config: Any) -> VkAdsDestination:
    made = VkAdsDestination(
        "vk", VkAdsConfig.model_validate({"type": "vk_ads", "pixel_id": 3456789, **config})
    )
    made.clock = lambda: NOW
    return made


def rows(destination: VkAdsDestination, count: int = 3) -> list[OutboundRow]:
    out = []
    for n in range(1, count + 1):
        made = Conversion(
            key=f"c-{n}",
            source="shop",
            record_id=str(n),
            goal="purchase",
            order_id=f"A-{n}",
            occurred_at=NOW - timedelta(hours=5),
            value=None,
            currency=None,
            ids=Identifiers(vk_click_id=f"click{n}"),
        )
        payload = destination.build(made, VkAdsTarget(goal="purchase"), NOW)
        out.append(OutboundRow(n, made, payload))
    return out


def tracker_stop(tracker_url: str | None = None) -> str:
    """The note of a tracker that could not be reached: the destination stopped."""
    destination = vk(**({"tracker_url": tracker_url} if tracker_url else {}))
    destination.connect()
    try:
        with pytest.raises(DestinationUnavailable) as caught:
            destination.send(rows(destination))
    finally:
        destination.close()
    assert caught.value.code == "tracker_unreachable"
    return f"{caught.value.code}: {caught.value.message}"


def tracker_outcomes(tracker_url: str | None = None, **changes: Any) -> list[RowOutcome]:
    destination = vk(**({"tracker_url": tracker_url} if tracker_url else {}))
    for name, value in changes.items():
        setattr(destination, name, value)
    destination.connect()
    try:
        return destination.send(rows(destination, 1))
    finally:
        destination.close()


def test_a_refused_tracker() -> None:
    port = closed_port()
    note = tracker_stop(f"http://127.0.0.1:{port}/tracker")
    assert note == (
        f"tracker_unreachable: VK pixel tracker at 127.0.0.1:{port}: connection refused; check "
        f"the network, DNS, proxy or {TRACKER_KEY}"
    )


def test_a_tracker_name_that_does_not_resolve(unresolvable: Callable[[str], str]) -> None:
    unresolvable("top-fwz1.mail.ru")
    note = tracker_stop()  # the default tracker
    assert_plain(note, host="top-fwz1.mail.ru", key=TRACKER_KEY, cause="host name not found")


def test_a_tracker_that_does_not_speak_tls() -> None:
    with plain_http_server() as port:
        note = tracker_stop(f"https://127.0.0.1:{port}/tracker")
    assert_plain(note, host=f"127.0.0.1:{port}", key=TRACKER_KEY, cause="TLS handshake failed")


def test_a_tracker_that_never_answers_leaves_the_event_uncertain_in_plain_words() -> None:
    with silent_server() as port:
        [outcome] = tracker_outcomes(f"http://127.0.0.1:{port}/tracker", request_timeout=(2.0, 0.3))
    assert outcome.kind is OutcomeKind.UNCERTAIN and outcome.code == "no_answer"
    assert outcome.message is not None and "(no answer within 0.3 s)" in outcome.message
    assert "ReadTimeout" not in outcome.message and "Pool" not in outcome.message


def test_a_tracker_behind_a_broken_proxy(broken_proxy: str) -> None:
    """The proxy's failure is named (the classification of a request through a proxy is
    the tracker's own: it is not known to have stayed unsent)."""
    [outcome] = tracker_outcomes()
    assert outcome.message is not None
    assert f"(proxy {broken_proxy} refused the connection)" in outcome.message
    assert "ProxyError" not in outcome.message and "Pool" not in outcome.message


def test_the_api_token_endpoint_out_of_reach() -> None:
    port = closed_port()
    destination = vk(
        api_base_url=f"http://127.0.0.1:{port}", client_id="123", client_secret="s3cret"
    )
    try:
        with pytest.raises(DestinationUnavailable) as caught:
            destination.api().request("GET", "/api/v2/user.json")
    finally:
        destination.close()
    assert caught.value.code == "auth_unreachable"
    note = f"{caught.value.code}: {caught.value.message}"
    assert note == (
        f"auth_unreachable: VK Ads token endpoint at 127.0.0.1:{port}: connection refused; "
        f"check the network, DNS, proxy or {API_KEY}"
    )
    assert "s3cret" not in note
