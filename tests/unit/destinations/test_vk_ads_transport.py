"""vk_ads without a network: the tracker URL as sent, config validation, request pacing,
the tracker's retries of connections that failed, the API's rate-limit reading,
Retry-After and stored tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from pydantic import ValidationError
from urllib3.exceptions import NewConnectionError

from convsync.core.errors import DestinationUnavailable
from convsync.core.http import excerpt, retry_after
from convsync.core.model import Conversion, Identifiers, OutboundRow, OutcomeKind
from convsync.core.pacing import Pacer
from convsync.destinations.vk_ads.api import RateGovernor
from convsync.destinations.vk_ads.auth import ApiToken
from convsync.destinations.vk_ads.config import VkAdsConfig
from convsync.destinations.vk_ads.tracker import TrackerClient, event_url

TRACKER = "https://top-fwz1.mail.ru/tracker"


def payload(**changes: Any) -> dict[str, Any]:
    return {"pixel_id": 3456789, "goal": "purchase", "value": 0, "rb_clickid": "abc", **changes}


@pytest.mark.parametrize(
    ("changes", "query"),
    [
        ({}, "id=3456789;e=RG%3A0/purchase;rb_clickid=abc"),
        ({"value": 1500}, "id=3456789;e=RG%3A1500/purchase;rb_clickid=abc"),
        ({"value": 99.9}, "id=3456789;e=RG%3A99.9/purchase;rb_clickid=abc"),
        ({"value": 1234567.05}, "id=3456789;e=RG%3A1234567.05/purchase;rb_clickid=abc"),
        (
            {"value": 12345678901234567890},
            "id=3456789;e=RG%3A12345678901234567890/purchase;rb_clickid=abc",
        ),
        # a Cyrillic goal name goes out percent-encoded UTF-8, the separators stay literal
        (
            {"goal": "покупка"},
            "id=3456789;e=RG%3A0/%D0%BF%D0%BE%D0%BA%D1%83%D0%BF%D0%BA%D0%B0;rb_clickid=abc",
        ),
        ({"goal": "lead:form_1"}, "id=3456789;e=RG%3A0/lead:form_1;rb_clickid=abc"),
        ({"rb_clickid": 'a"b<c>'}, "id=3456789;e=RG%3A0/purchase;rb_clickid=a%22b%3Cc%3E"),
    ],
)
def test_tracker_url_is_built_by_hand_as_documented(changes: dict[str, Any], query: str) -> None:
    assert event_url(TRACKER, payload(**changes)) == f"{TRACKER}?{query}"


def test_userid_is_the_parameter_without_a_click_id() -> None:
    event = {"pixel_id": 1, "goal": "lead", "value": 0, "userid": "crm-42"}
    assert event_url(TRACKER, event) == f"{TRACKER}?id=1;e=RG%3A0/lead;userid=crm-42"


def test_a_prepared_request_would_have_changed_nothing_but_is_not_trusted_to() -> None:
    url = event_url(TRACKER, payload(goal="покупка"))
    # requests keeps an already-encoded URL as it is; the destination still sends its own
    prepared = requests.Request("GET", url).prepare()
    assert prepared.url == url
    encoded = requests.Request("GET", TRACKER, params={"id": "1;e=RG:0/x"}).prepare()
    assert encoded.url == f"{TRACKER}?id=1%3Be%3DRG%3A0%2Fx"  # what params= would send


@pytest.mark.parametrize("value", ["x", None, True])
def test_a_value_that_is_no_number_is_a_bug_not_a_url(value: Any) -> None:
    with pytest.raises(TypeError):
        event_url(TRACKER, payload(value=value))


# --- config ---


def config(**changes: Any) -> VkAdsConfig:
    return VkAdsConfig.model_validate({"type": "vk_ads", "pixel_id": 1, **changes})


def test_pool_and_rate_defaults_and_bounds() -> None:
    default = config()
    assert (default.concurrency, default.max_events_per_second) == (8, 20.0)
    assert config(concurrency=1, max_events_per_second=0.5).max_events_per_second == 0.5
    for bad in ({"concurrency": 0}, {"concurrency": 65}, {"concurrency": "many"}):
        with pytest.raises(ValidationError, match="concurrency"):
            config(**bad)
    for bad_rate in (
        {"max_events_per_second": 0},
        {"max_events_per_second": -1},
        {"max_events_per_second": 5000},
    ):
        with pytest.raises(ValidationError, match="max_events_per_second"):
            config(**bad_rate)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("top-fwz1.mail.ru/tracker", "http(s) URL"),
        ("ftp://top-fwz1.mail.ru/tracker", "http(s) URL"),
        ("https://top-fwz1.mail.ru/tracker?id=1", "query"),
        ("https://top-fwz1.mail.ru/tracker#x", "query"),
        ("https://top-fwz1.mail.ru/tr acker", "spaces"),
    ],
)
def test_tracker_url_must_take_the_query_convsync_appends(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match="tracker_url") as caught:
        config(tracker_url=url)
    assert problem in str(caught.value)


def test_api_base_url_loses_a_trailing_slash() -> None:
    assert config(api_base_url="https://ads.vk.com/").api_base_url == "https://ads.vk.com"


def test_client_id_and_secret_go_together() -> None:
    with pytest.raises(ValidationError, match="go together"):
        config(client_id="abc")
    with pytest.raises(ValidationError, match="go together"):
        config(client_secret="s3cret-value")
    assert config(client_id=" abc ", client_secret="s3cret-value").client_id == "abc"


# --- pacing ---


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_pacer_spaces_starts_evenly_without_a_burst_after_a_pause() -> None:
    t = FakeTime()
    pacer = Pacer(4, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(5):
        pacer.wait()
        starts.append(t.now)
    assert starts == [100.0, 100.25, 100.5, 100.75, 101.0]
    t.now += 10  # idle: the next start is at once, the one after still waits its turn
    pacer.wait()
    pacer.wait()
    assert t.slept[-1] == 0.25


def test_a_pacer_wait_given_up_ends_early_without_starting() -> None:
    t = FakeTime()
    pacer = Pacer(1, clock=t.clock, sleep=t.sleep)
    pacer.wait()
    called_off = False

    def give_up() -> bool:
        return called_off

    pacer.wait(give_up)  # nothing calls it off: sits out its whole slot
    assert t.now == 101.0
    t.slept.clear()
    called_off = True
    pacer.wait(give_up)  # called off: returns at once, no sleep
    assert t.slept == []
    assert t.now == 101.0


def test_pacer_refuses_a_rate_of_zero() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


# --- connections that failed ---


class RefusingSession:
    """The tracker's session, stood in for: connections to the URLs in ``refuse`` are
    refused (that many times each); every other request is answered 200."""

    def __init__(self, refuse: dict[str, int]) -> None:
        self.refuse = refuse
        self.calls: list[tuple[str, str]] = []

    def get_exact(self, url: str) -> requests.Response:
        if self.refuse.get(url, 0) > 0:
            self.refuse[url] -= 1
            self.calls.append((url, "refused"))
            error = NewConnectionError(None, "Failed to establish a new connection: refused")  # type: ignore[arg-type]
            raise requests.ConnectionError(error)
        self.calls.append((url, "200"))
        response = requests.Response()
        response.status_code = 200
        response._content, response._content_consumed = b"", True
        return response

    def close(self) -> None:
        pass


def tracker_rows(n: int) -> list[OutboundRow]:
    made = Conversion(
        key="k",
        source="shop",
        record_id="1",
        goal="purchase",
        order_id="A-1",
        occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
        value=None,
        currency=None,
        ids=Identifiers(vk_click_id="x"),
    )
    return [OutboundRow(i, made, payload(rb_clickid=f"c{i}")) for i in range(n)]


def refusing_tracker(refuse: dict[int, int]) -> tuple[TrackerClient, RefusingSession]:
    tracker = TrackerClient("vk", TRACKER, concurrency=1, per_second=1000, first_wait=0.001)
    tracker._session.close()
    urls = {event_url(TRACKER, payload(rb_clickid=f"c{i}")): n for i, n in refuse.items()}
    session = RefusingSession(urls)
    tracker._session = session  # type: ignore[assignment]
    return tracker, session


def test_a_refused_connection_is_retried_once_the_tracker_has_answered() -> None:
    tracker, session = refusing_tracker({1: 2})
    try:
        outcomes = tracker.send(tracker_rows(3))
    finally:
        tracker.close()
    assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * 3
    second = event_url(TRACKER, payload(rb_clickid="c1"))
    assert [result for url, result in session.calls if url == second] == [
        "refused",
        "refused",
        "200",
    ]
    assert session.calls[0][1] == "200" and len(session.calls) == 5


def test_a_tracker_never_reached_in_the_run_stops_the_batch_at_the_first_refusal() -> None:
    tracker, session = refusing_tracker({0: 1})
    try:
        with pytest.raises(
            DestinationUnavailable, match=r"VK pixel tracker at .*: connection refused"
        ):
            tracker.send(tracker_rows(3))
        # the same rows again (the worker claimed them again): still nothing sent
        with pytest.raises(DestinationUnavailable):
            tracker.send(tracker_rows(3))
    finally:
        tracker.close()
    assert session.calls == [(event_url(TRACKER, payload(rb_clickid="c0")), "refused")]


# --- the API's rate-limit headers ---


def headers(
    rps: int = 9, hourly: tuple[int, int] = (2000, 1999), daily: int = 19999
) -> dict[str, str]:
    return {
        "X-RateLimit-RPS-Limit": "10",
        "X-RateLimit-RPS-Remaining": str(rps),
        "X-RateLimit-Hourly-Limit": str(hourly[0]),
        "X-RateLimit-Hourly-Remaining": str(hourly[1]),
        "X-RateLimit-Daily-Limit": "20000",
        "X-RateLimit-Daily-Remaining": str(daily),
    }


def test_governor_waits_for_the_next_second_when_its_allowance_is_used() -> None:
    t = FakeTime()
    governor = RateGovernor("vk", clock=t.clock, sleep=t.sleep)
    governor.observe(headers())
    governor.before()
    assert t.slept == []
    governor.observe(headers(rps=1))
    governor.before()
    assert t.slept == [1.0]


def test_governor_spreads_the_last_tenth_of_the_hour() -> None:
    t = FakeTime()
    governor = RateGovernor("vk", clock=t.clock, sleep=t.sleep)
    governor.observe(headers(hourly=(100, 9)))
    governor.before()
    assert t.slept == [36.0]  # 3600 s / 100 requests


@pytest.mark.parametrize(
    ("limits", "code"),
    [({"hourly": (100, 0)}, "api_hourly_limit"), ({"daily": 0}, "api_daily_limit")],
)
def test_governor_stops_when_an_allowance_is_gone(limits: dict[str, Any], code: str) -> None:
    governor = RateGovernor("vk", sleep=lambda s: None)
    governor.observe(headers(**limits))
    with pytest.raises(DestinationUnavailable) as caught:
        governor.before()
    assert caught.value.code == code
    assert "stay pending" in caught.value.message


def test_governor_ignores_missing_or_garbled_headers() -> None:
    t = FakeTime()
    governor = RateGovernor("vk", clock=t.clock, sleep=t.sleep)
    governor.observe({"X-RateLimit-RPS-Remaining": "lots"})
    governor.observe({})
    governor.before()
    assert t.slept == []


# --- Retry-After, body excerpts, stored tokens ---


def response(status: int = 429, body: bytes = b"", **header: str) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = body
    made.headers.update({k.replace("_", "-"): v for k, v in header.items()})
    return made


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert retry_after(response(Retry_After="7").headers.get("Retry-After"), now) == 7.0
    assert (
        retry_after(
            response(Retry_After="Sat, 21 Nov 2026 12:00:30 GMT").headers.get("Retry-After"), now
        )
        == 30.0
    )
    assert (
        retry_after(
            response(Retry_After="Sat, 21 Nov 2026 11:00:00 GMT").headers.get("Retry-After"), now
        )
        == 0.0
    )
    assert retry_after(response(Retry_After="soon").headers.get("Retry-After"), now) is None
    assert retry_after(response().headers.get("Retry-After"), now) is None


def test_excerpt_is_one_short_line_and_empty_for_a_gif() -> None:
    text = response(400, b"bad\n  request " + b"x" * 500, Content_Type="text/plain")
    shown = excerpt(text)
    assert shown.startswith("bad request x") and len(shown) == 200 and shown.endswith("…")
    assert excerpt(response(400, b"GIF89a\x01\x00", Content_Type="image/gif")) == ""


def test_a_stored_token_reads_back_and_garbage_is_no_token() -> None:
    token = ApiToken("acc", "ref", datetime(2026, 11, 22, tzinfo=UTC) + timedelta(hours=1))
    assert ApiToken.from_dict(token.as_dict()) == token
    assert ApiToken.from_dict({"access_token": "acc"}) is None
    assert ApiToken.from_dict({"access_token": "acc", "expires_at": "tomorrow"}) is None
    naive = {"access_token": "acc", "expires_at": "2026-11-22T00:00:00"}
    assert ApiToken.from_dict(naive) is None
