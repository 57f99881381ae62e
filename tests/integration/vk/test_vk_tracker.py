"""The destination against the fake tracker over real HTTP: the exact request lines, the
pool and the rate, what each kind of answer (or silence) becomes, and the retries in the
batch of the events the tracker certainly did not count."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from decimal import Decimal

import pytest

from convsync.core.errors import DestinationUnavailable
from convsync.core.model import OutboundRow, OutcomeKind
from convsync.destinations.vk_ads import VkAdsDestination
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
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
    vk.event_retries = 0  # what the answer itself becomes (no retry in the batch)
    vk.connect()
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
    host = url.removeprefix("http://").removesuffix("/tracker")
    assert caught.value.message == (
        f"VK pixel tracker at {host}: connection refused; check the network, DNS, proxy or "
        "destinations.vk.tracker_url"
    )
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


# --- retries in the batch ----------------------------------------------------------------


def test_events_failing_transiently_are_retried_in_the_batch_at_the_rate_and_pool_limits(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    rate = 100.0
    vk = connect_vk(concurrency=4, max_events_per_second=rate)
    fake.tracker.latency = 0.02
    fake.tracker.inject_faults(0.3, seed=3)
    outcomes = vk.send(rows(vk, 60))
    assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * 60
    counted = fake.tracker.counted()
    assert len(counted) == 60 and set(counted.values()) == {1}  # each event once
    assert fake.tracker.faults >= 10 and len(fake.tracker.hits) == 60 + fake.tracker.faults
    # the retries went through the same pool and the same pacing
    assert fake.tracker.max_in_flight <= 4
    starts = fake.tracker.starts()
    assert starts[-1] - starts[0] >= (len(starts) - 1) / rate * 0.95
    for i, first in enumerate(starts):
        assert sum(1 for s in starts[i:] if s - first < 0.5) <= rate * 0.5 + 2


def test_a_retry_waits_its_own_backoff_while_the_pool_sends_the_others(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    vk = connect_vk(concurrency=1, max_events_per_second=1000)
    vk.first_retry_wait = 0.3
    vk.connect()
    fake.tracker.script(Reply(503))  # click1's first try
    outcomes = vk.send(rows(vk, 5))
    assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * 5
    hits = fake.tracker.hits
    assert (hits[0].params["rb_clickid"], hits[0].status) == ("click1", 503)
    [retry] = [h for h in hits[1:] if h.params["rb_clickid"] == "click1"]
    assert retry.status == 200
    assert hits[0].finished is not None and retry.started - hits[0].finished >= 0.3
    assert hits[1].params["rb_clickid"] == "click2"  # the pool went on meanwhile
    assert len(hits) == 6


def test_an_event_still_failing_after_its_retries_comes_back_transient(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    vk = connect_vk(max_events_per_second=1000)
    vk.first_retry_wait = 0.01
    vk.connect()
    fake.tracker.reply_when(lambda hit: "click1;" in hit.query + ";", Reply(502))
    failing, fine = vk.send(rows(vk, 2))
    assert (failing.kind, failing.code) == (OutcomeKind.TRANSIENT, "http_502")
    assert fine.kind is OutcomeKind.DELIVERED
    assert sum(1 for h in fake.tracker.hits if h.params["rb_clickid"] == "click1") == 6


def test_a_429_holds_every_start_back_for_its_retry_after(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    vk = connect_vk(concurrency=1, max_events_per_second=1000)
    fake.tracker.script(Reply(429, {"Retry-After": "1"}))
    outcomes = vk.send(rows(vk, 3))
    assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * 3
    first, *rest = fake.tracker.hits
    assert first.status == 429 and first.finished is not None
    assert len(rest) == 3 and all(h.started - first.finished >= 0.95 for h in rest)


def test_the_retry_budget_keeps_an_outage_from_multiplying_the_requests(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    vk = connect_vk(max_events_per_second=1000)
    vk.first_retry_wait = 0.001
    vk.connect()
    fake.tracker.reply_when(lambda hit: True, Reply(503))
    outcomes = vk.send(rows(vk, 100))
    assert {(o.kind, o.code) for o in outcomes} == {(OutcomeKind.TRANSIENT, "http_503")}
    # 100 first tries, a reserve of 40 retries and half a retry per event: not 600
    assert len(fake.tracker.hits) <= 100 + 40 + 50


def test_a_request_that_may_have_arrived_is_never_retried_among_retries(
    fake: FakeVk, connect_vk: ConnectVk
) -> None:
    """At most once: no answer (a read timeout) or a connection dropped after the request
    went out stays uncertain, while the events around it are retried."""
    vk = VkAdsDestination("vk", VkAdsConfig.model_validate(fake.destination_config()))
    vk.request_timeout = (2.0, 0.3)
    vk.first_retry_wait = 0.01
    vk.connect()
    fake.tracker.reply_when(lambda hit: "click1;" in hit.query + ";", Reply(200, delay=1.0))
    fake.tracker.reply_when(lambda hit: "click2;" in hit.query + ";", Reply(drop=True))
    fake.tracker.inject_faults(0.3, seed=11)
    try:
        timed_out, dropped, *others = vk.send(rows(vk, 12))
    finally:
        vk.close()
    assert (timed_out.kind, timed_out.code) == (OutcomeKind.UNCERTAIN, "no_answer")
    assert (dropped.kind, dropped.code) == (OutcomeKind.UNCERTAIN, "no_answer")
    assert {o.kind for o in others} == {OutcomeKind.DELIVERED}
    sent = [h.params["rb_clickid"] for h in fake.tracker.hits]
    assert sent.count("click1") == sent.count("click2") == 1
    assert fake.tracker.faults > 0


def test_a_stop_ends_the_wait_for_a_retry(fake: FakeVk, connect_vk: ConnectVk) -> None:
    vk = connect_vk(max_events_per_second=1000)
    vk.first_retry_wait = 1.0
    vk.stop = threading.Event()
    vk.connect()
    fake.tracker.reply_when(lambda hit: "click1;" in hit.query + ";", Reply(503))
    timer = threading.Timer(0.3, vk.stop.set)
    timer.start()
    started = time.monotonic()
    failing, fine = vk.send(rows(vk, 2))
    timer.join()
    assert time.monotonic() - started < 1.0  # not 1 + 2 + 2 + … seconds of backoff
    assert (failing.kind, failing.code) == (OutcomeKind.TRANSIENT, "http_503")
    assert fine.kind is OutcomeKind.DELIVERED
