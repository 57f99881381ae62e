"""The destination against the fake tracker over real HTTP: the exact request lines, the
pool and the rate, and what each kind of answer (or silence) becomes."""

from __future__ import annotations

import dataclasses
import socket
import time
from decimal import Decimal

import pytest

from convsync.destinations.vk_ads import VkAdsDestination
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
from convsync.errors import DestinationUnavailable
from convsync.model import OutboundRow, OutcomeKind
from tests.vk_fake import FakeVk, Reply

from .conftest import NOW, TARGET, ConnectVk, conversion, rows


def test_each_event_goes_out_exactly_as_documented(fake: FakeVk, connect_vk: ConnectVk) -> None:
    vk = connect_vk()
    click = conversion(1, vk_click_id="Zx9-Ab_7.c")
    user = conversion(2, vk_user_id="crm-42")
    cyrillic = VkAdsTarget(goal="покупка")
    batch = [
        OutboundRow(1, click, vk.build(click, TARGET, NOW)),
        OutboundRow(2, user, vk.build(user, TARGET, NOW)),
        OutboundRow(3, click, vk.build(click, cyrillic, NOW)),
    ]
    assert [o.kind for o in vk.send(batch)] == [OutcomeKind.DELIVERED] * 3
    assert sorted(fake.tracker.request_lines) == sorted(
        [
            "GET /tracker?id=3456789;e=RG%3A0/purchase;rb_clickid=Zx9-Ab_7.c HTTP/1.1",
            "GET /tracker?id=3456789;e=RG%3A0/purchase;userid=crm-42 HTTP/1.1",
            "GET /tracker?id=3456789;e=RG%3A0/%D0%BF%D0%BE%D0%BA%D1%83%D0%BF%D0%BA%D0%B0;"
            "rb_clickid=Zx9-Ab_7.c HTTP/1.1",
        ]
    )
    events = sorted(h.event for h in fake.tracker.hits)
    assert events == [("0", "purchase"), ("0", "purchase"), ("0", "покупка")]


def test_value_is_sent_and_no_visitor_cookie_goes_back(fake: FakeVk, connect_vk: ConnectVk) -> None:
    vk = connect_vk(concurrency=1)
    made = conversion(1)
    paid = [
        dataclasses.replace(made, value=Decimal(value), currency="RUB")
        for value in ("1500", "99.90", "0")
    ]
    vk.send([OutboundRow(n, c, vk.build(c, TARGET, NOW)) for n, c in enumerate(paid, start=1)])
    assert [h.event[0] for h in fake.tracker.hits] == ["1500", "99.9", "0"]
    # every answer set the tracker's visitor cookie; none was sent back
    assert all("Cookie" not in h.headers for h in fake.tracker.hits)


def test_never_more_requests_in_flight_than_the_pool(fake: FakeVk, connect_vk: ConnectVk) -> None:
    vk = connect_vk(concurrency=4, max_events_per_second=1000)
    fake.tracker.latency = 0.05
    outcomes = vk.send(rows(vk, 24))
    assert all(o.kind is OutcomeKind.DELIVERED for o in outcomes)
    assert len(fake.tracker.hits) == 24
    # the pool is used (more than one at a time) and never exceeded
    assert 2 <= fake.tracker.max_in_flight <= 4


def test_never_more_requests_started_per_second_than_the_rate(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    rate = 20.0
    vk = connect_vk(concurrency=8, max_events_per_second=rate)
    vk.send(rows(vk, 25))
    starts = fake.tracker.starts()
    assert len(starts) == 25
    # 25 starts at 20/s span 1.2 s at least; with the pool alone they would take ~0.05 s
    assert starts[-1] - starts[0] >= 24 / rate * 0.95
    # no half second holds more than its share (+1 for the window's edges, +1 for jitter)
    for i, first in enumerate(starts):
        within = sum(1 for s in starts[i:] if s - first < 0.5)
        assert within <= rate * 0.5 + 2


@pytest.mark.parametrize(
    ("reply", "kind", "code", "retry_after"),
    [
        (Reply(429, {"Retry-After": "7"}), OutcomeKind.TRANSIENT, "http_429", 7.0),
        (Reply(503), OutcomeKind.TRANSIENT, "http_503", None),
        (
            Reply(500, {"Retry-After": "Sat, 21 Nov 2026 09:00:30 GMT"}),
            OutcomeKind.TRANSIENT,
            "http_500",
            30.0,
        ),
        (
            Reply(400, {"Content-Type": "text/plain"}, b"Bad request: unknown counter"),
            OutcomeKind.REJECTED,
            "http_400",
            None,
        ),
    ],
)
def test_each_answer_becomes_an_outcome(
    fake: FakeVk,
    connect_vk: ConnectVk,
    reply: Reply,
    kind: OutcomeKind,
    code: str,
    retry_after: float | None,
) -> None:
    vk = connect_vk()
    fake.tracker.script(reply)
    [outcome] = vk.send(rows(vk, 1))
    assert (outcome.kind, outcome.code, outcome.retry_after) == (kind, code, retry_after)
    assert outcome.message is not None
    assert str(reply.status) in outcome.message
    if kind is OutcomeKind.REJECTED:
        assert "Bad request: unknown counter" in outcome.message


def test_a_request_without_an_answer_is_uncertain_not_retried(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    vk = VkAdsDestination("vk", VkAdsConfig.model_validate(fake.destination_config()))
    vk.request_timeout = (2.0, 0.3)
    vk.connect()
    try:
        fake.tracker.script(Reply(200, delay=1.0))
        [lost, fine] = vk.send(rows(vk, 2))
    finally:
        vk.close()
    assert lost.kind is OutcomeKind.UNCERTAIN and lost.code == "no_answer"
    assert lost.message is not None and "not re-sent automatically" in lost.message
    assert fine.kind is OutcomeKind.DELIVERED
    assert len(fake.tracker.hits) == 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_tracker_stops_the_destination_and_sends_nothing(
    connect_vk: ConnectVk,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/tracker"
    vk = connect_vk(tracker_url=url, max_events_per_second=1000)
    started = time.monotonic()
    with pytest.raises(DestinationUnavailable) as caught:
        vk.send(rows(vk, 50))
    assert time.monotonic() - started < 5  # the batch stopped at the first refusal
    assert caught.value.code == "tracker_unreachable"
    assert url in caught.value.message and "connection refused" in caught.value.message
    assert "stay pending" in caught.value.message
    with pytest.raises(DestinationUnavailable):  # the next batch: no attempt at all
        vk.send(rows(vk, 1, start=100))


def test_a_tracker_that_refuses_every_event_stops_the_destination(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    vk = connect_vk(concurrency=2)
    fake.tracker.reply_when(lambda hit: True, Reply(404, {"Content-Type": "text/plain"}, b"no"))
    with pytest.raises(DestinationUnavailable) as caught:
        vk.send(rows(vk, 20))
    assert caught.value.code == "tracker_refused"
    assert "destinations.vk.tracker_url" in caught.value.message
    assert len(fake.tracker.hits) <= 2  # the requests already in flight, no more
    seen = len(fake.tracker.hits)
    with pytest.raises(DestinationUnavailable):
        vk.send(rows(vk, 5, start=100))
    assert len(fake.tracker.hits) == seen


def test_a_refusal_after_deliveries_is_given_row_by_row(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    vk = connect_vk(concurrency=1)
    fake.tracker.script(Reply(200), Reply(403, {"Content-Type": "text/plain"}, b"banned"))
    outcomes = vk.send(rows(vk, 4))
    assert [(o.kind, o.code) for o in outcomes] == [
        (OutcomeKind.DELIVERED, None),
        (OutcomeKind.REJECTED, "http_403"),
        (OutcomeKind.TRANSIENT, "not_sent"),
        (OutcomeKind.TRANSIENT, "not_sent"),
    ]
    assert len(fake.tracker.hits) == 2
