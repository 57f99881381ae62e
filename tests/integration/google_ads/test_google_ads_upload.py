"""google_ads: ``GoogleAdsDestination`` with the real google-ads client (v26) against the
fake Google Ads API over gRPC and TLS: click conversions, partial and whole-request
failures. Each test asserts the requests the server received and the outcomes the
worker gets back."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.model import (
    Identifiers,
    OutboundRow,
    OutcomeKind,
    RowOutcome,
)
from convsync.destinations.google_ads import GoogleAdsDestination
from tests.google_ads_fake import (
    CLICKS,
    CUSTOMER_ID,
    Err,
    FakeGoogleAds,
    RowFaults,
    destination_for,
    internal,
    invalid_argument,
    quota_exhausted,
    unavailable,
)
from tests.integration.google_ads.rows import (
    ACTION,
    EC4L,
    EMAIL_SHA256,
    NOW,
    PHONE_SHA256,
    QUOTA_RESET,
    conversion,
    kinds,
    retraction,
    rows_for,
)

# --- all accepted ---------------------------------------------------------------------------


def test_every_row_is_sent_as_the_api_expects_and_delivered(fake: FakeGoogleAds) -> None:
    manager = "9876543210"
    fake.customers[CUSTOMER_ID] = manager  # reached through a manager account
    google = destination_for(fake, login_customer_id="987-654-3210")
    google.clock = lambda: NOW
    try:
        google.connect()
        clicks = [
            conversion(0),
            conversion(1, ids=Identifiers(gbraid="0AAAAADR1ZxyyZ2DI5Gw6p3HNnUcl6rqO8")),
            conversion(2, value=None, consent=None, attributes=None),
        ]
        leads = [
            conversion(3, ids=Identifiers(email_sha256=EMAIL_SHA256, phone_sha256=PHONE_SHA256))
        ]
        rows = rows_for(google, clicks) + rows_for(google, leads, EC4L)
        rows = [OutboundRow(i, r.conversion, r.payload) for i, r in enumerate(rows)]
        assert google.send(rows) == [RowOutcome.delivered()] * 4
    finally:
        google.close()

    [call] = fake.calls
    assert call.method == CLICKS
    request = call.request
    assert request.customer_id == CUSTOMER_ID
    assert request.partial_failure is True
    assert request.validate_only is False
    assert "job_id" not in request
    assert [c.order_id for c in request.conversions] == ["A-1000", "A-1001", "A-1002", "A-1003"]
    first, braid, bare, lead = request.conversions
    assert first.gclid == "Cj0KCQiA2-2eBhClARIsAGLQ2Rl000000"
    assert first.conversion_action == ACTION
    assert first.conversion_date_time == "2026-11-20 14:03:00+03:00"
    assert (first.conversion_value, first.currency_code) == (1500.0, "RUB")
    assert first.consent.ad_user_data.name == "GRANTED"
    assert [(v.conversion_custom_variable, v.value) for v in first.custom_variables] == [
        (f"customers/{CUSTOMER_ID}/conversionCustomVariables/7", "gold")
    ]
    assert not first.user_identifiers
    assert braid.gbraid == "0AAAAADR1ZxyyZ2DI5Gw6p3HNnUcl6rqO8"
    assert "gclid" not in braid
    assert "conversion_value" not in bare
    assert "consent" not in bare
    assert not bare.custom_variables
    assert "gclid" not in lead
    assert [
        (i.user_identifier_source.name, i.hashed_email, i.hashed_phone_number)
        for i in lead.user_identifiers
    ] == [("FIRST_PARTY", EMAIL_SHA256, ""), ("FIRST_PARTY", "", PHONE_SHA256)]

    headers = call.metadata
    assert headers["login-customer-id"] == manager
    assert headers["developer-token"] == google.config.developer_token.get_secret_value()  # type: ignore[union-attr]
    assert headers["x-goog-request-params"] == f"customer_id={CUSTOMER_ID}"
    assert headers["authorization"].startswith("Bearer ya29.fake-")
    assert fake.oauth.is_valid(headers["authorization"].removeprefix("Bearer "))
    # one refresh, in connect, before the request
    assert [g["grant_type"] for g in fake.oauth.grants] == ["refresh_token"]
    assert set(fake.state.conversions) == {(ACTION, f"A-{1000 + i}") for i in range(4)}


def test_an_empty_batch_makes_no_request(fake: FakeGoogleAds, google: GoogleAdsDestination) -> None:
    assert google.send([]) == []
    assert fake.calls == []


def test_sending_before_connect_is_a_bug(google_ads_destination: GoogleAdsDestination) -> None:
    row = OutboundRow(1, conversion(0), {"order_id": "A"})
    with pytest.raises(RuntimeError, match="connect"):
        google_ads_destination.send([row])


def test_conversions_and_adjustments_never_share_a_request(google: GoogleAdsDestination) -> None:
    [row] = rows_for(google, [conversion(0)])
    adjusting = OutboundRow(2, row.conversion, {}, adjustment=retraction())
    with pytest.raises(ValueError, match="all conversions or all adjustments"):
        google.send([row, adjusting])


# --- partial failures -----------------------------------------------------------------------


@pytest.mark.parametrize("split_details", [False, True])
def test_partial_failure_on_the_first_and_last_rows(
    fake: FakeGoogleAds, google: GoogleAdsDestination, split_details: bool
) -> None:
    fake.script(
        RowFaults(
            {
                0: [
                    Err("conversion_upload_error", "UNPARSEABLE_GCLID", field_path=("gclid",)),
                    Err("conversion_upload_error", "TOO_RECENT_EVENT"),
                ],
                -1: [Err("conversion_upload_error", "TOO_RECENT_EVENT")],
            },
            split_details=split_details,
        )
    )
    rows = rows_for(google, [conversion(i) for i in range(5)])
    outcomes = google.send(rows)

    assert kinds(outcomes) == [
        (OutcomeKind.REJECTED, "unparseable_gclid"),
        (OutcomeKind.DELIVERED, None),
        (OutcomeKind.DELIVERED, None),
        (OutcomeKind.DELIVERED, None),
        (OutcomeKind.DEFERRED, "too_recent_event"),
    ]
    # every error of row 0 is in its message
    assert outcomes[0].message is not None
    assert outcomes[0].message.startswith("UNPARSEABLE_GCLID: The imported gclid could not")
    assert "| TOO_RECENT_EVENT: The click associated" in outcomes[0].message
    assert outcomes[4].retry_at == NOW + timedelta(hours=6)
    # rows 1-3 were recorded by Google, rows 0 and 4 were not
    assert set(fake.state.conversions) == {(ACTION, f"A-{1000 + i}") for i in (1, 2, 3)}


def test_a_single_error_at_index_zero_fails_row_zero_only(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(RowFaults({0: [Err("conversion_upload_error", "EXPIRED_EVENT")]}))
    outcomes = google.send(rows_for(google, [conversion(0), conversion(1)]))
    assert kinds(outcomes) == [
        (OutcomeKind.REJECTED, "expired_event"),
        (OutcomeKind.DELIVERED, None),
    ]


def test_an_error_without_a_row_applies_to_the_whole_batch(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(RowFaults(unattributed=[Err("internal_error", "TRANSIENT_ERROR")]))
    outcomes = google.send(rows_for(google, [conversion(0), conversion(1)]))
    assert kinds(outcomes) == [(OutcomeKind.TRANSIENT, "transient_error")] * 2


def test_a_replay_is_a_delivered_duplicate(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    rows = rows_for(google, [conversion(0), conversion(1)])
    assert kinds(google.send(rows)) == [(OutcomeKind.DELIVERED, None)] * 2
    again = google.send(rows)
    assert kinds(again) == [(OutcomeKind.DELIVERED, "duplicate")] * 2
    assert "ORDER_ID_ALREADY_IN_USE" in (again[0].message or "")
    assert [e.name for e in fake.calls[1].errors] == [
        "ORDER_ID_ALREADY_IN_USE",
        "CLICK_CONVERSION_ALREADY_EXISTS",
    ] * 2
    assert len(fake.state.conversions) == 2


def test_a_lead_google_cannot_match_is_delivered_as_click_not_found(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.state.unmatched_identifiers = {EMAIL_SHA256}
    lead = conversion(0, ids=Identifiers(email_sha256=EMAIL_SHA256))
    [outcome] = google.send(rows_for(google, [lead], EC4L))
    assert (outcome.kind, outcome.code) == (OutcomeKind.DELIVERED, "click_not_found")


def test_too_recent_event_is_deferred_six_hours(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(RowFaults({0: [Err("conversion_upload_error", "TOO_RECENT_EVENT")]}))
    [outcome] = google.send(rows_for(google, [conversion(0)]))
    assert outcome.kind is OutcomeKind.DEFERRED
    assert outcome.retry_at == NOW + timedelta(hours=6)


def test_an_unknown_conversion_action_is_rejected_with_a_hint(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.state.conversion_actions = {f"customers/{CUSTOMER_ID}/conversionActions/1"}
    [outcome] = google.send(rows_for(google, [conversion(0)]))
    assert (outcome.kind, outcome.code) == (OutcomeKind.REJECTED, "no_conversion_action_found")
    assert "goals.purchase.send.google" in (outcome.message or "")


# --- whole-request failures -------------------------------------------------------------------


def test_whole_request_invalid_argument_rejects_the_batch(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(invalid_argument(Err("request_error", "INVALID_CUSTOMER_ID")))
    with pytest.raises(PermanentError) as caught:
        google.send(rows_for(google, [conversion(0)]))
    assert caught.value.code == "invalid_customer_id"
    assert "INVALID_CUSTOMER_ID" in caught.value.message
    assert "Google Ads request id" in caught.value.message
    assert fake.state.conversions == {}


def test_a_whole_request_error_on_one_row_rejects_it_and_resends_the_rest(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(invalid_argument(Err("request_error", "REQUIRED_FIELD_MISSING", index=1)))
    rows = rows_for(google, [conversion(i) for i in range(3)])
    assert kinds(google.send(rows)) == [
        (OutcomeKind.TRANSIENT, "not_processed"),
        (OutcomeKind.REJECTED, "required_field_missing"),
        (OutcomeKind.TRANSIENT, "not_processed"),
    ]
    # the worker sends the transient rows again, alone
    assert kinds(google.send([rows[0], rows[2]])) == [(OutcomeKind.DELIVERED, None)] * 2


def test_temporary_quota_is_transient_with_googles_retry_delay(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(quota_exhausted(daily=False, retry_delay=30))
    with pytest.raises(TransientError) as caught:
        google.send(rows_for(google, [conversion(0)]))
    assert caught.value.retry_after == 30.0
    assert caught.value.code == "resource_temporarily_exhausted"


def test_resource_exhausted_asking_a_short_wait_is_a_rate_limit(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(quota_exhausted(daily=True, retry_delay=60))
    with pytest.raises(TransientError) as caught:
        google.send(rows_for(google, [conversion(0)]))
    assert caught.value.retry_after == 60.0


def test_daily_quota_stops_the_destination_until_midnight_pacific(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(quota_exhausted(daily=True))
    rows = rows_for(google, [conversion(0)])
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows)
    assert caught.value.code == "daily_quota_exhausted"
    assert caught.value.retry_at == QUOTA_RESET
    # later batches of the run stop at once, without a request
    with pytest.raises(DestinationUnavailable):
        google.send(rows)
    assert len(fake.calls) == 1
    google.connect()  # a new run tries again
    assert kinds(google.send(rows)) == [(OutcomeKind.DELIVERED, None)]


def test_daily_quota_on_a_row_defers_it_and_stops_later_batches(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(RowFaults({1: [Err("quota_error", "RESOURCE_EXHAUSTED")]}))
    rows = rows_for(google, [conversion(0), conversion(1)])
    outcomes = google.send(rows)
    assert kinds(outcomes) == [
        (OutcomeKind.DELIVERED, None),
        (OutcomeKind.DEFERRED, "daily_quota_exhausted"),
    ]
    assert outcomes[1].retry_at == QUOTA_RESET
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows[1:])
    assert caught.value.retry_at == QUOTA_RESET
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (internal(), "internal_error"),
        (internal(with_failure=False), "internal"),
        (unavailable(), "unavailable"),
    ],
)
def test_internal_and_unavailable_are_transient(
    fake: FakeGoogleAds, google: GoogleAdsDestination, fault: Any, code: str
) -> None:
    fake.script(fault)
    with pytest.raises(TransientError) as caught:
        google.send(rows_for(google, [conversion(0)]))
    assert caught.value.code == code


def test_a_timeout_is_transient_and_the_resend_is_a_duplicate(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    google.request_timeout = 0.3
    rows = rows_for(google, [conversion(0)])
    hold = fake.hold_next()  # Google records the row but answers too late
    try:
        with pytest.raises(TransientError) as caught:
            google.send(rows)
        assert caught.value.code == "deadline_exceeded"
        assert hold.accepted.is_set()
    finally:
        hold.release()
    assert kinds(google.send(rows)) == [(OutcomeKind.DELIVERED, "duplicate")]


def test_latency_is_waited_out(fake: FakeGoogleAds, google: GoogleAdsDestination) -> None:
    fake.latency = 0.2
    assert kinds(google.send(rows_for(google, [conversion(0)]))) == [(OutcomeKind.DELIVERED, None)]


def test_rows_accepted_before_a_crash_are_recovered_by_resending(
    fake: FakeGoogleAds, google: GoogleAdsDestination, google_ads_config: Any
) -> None:
    """The server records the batch, the worker dies before writing its ledger; the next
    run's ``recover`` re-sends (None) and Google answers "already there"."""
    rows = rows_for(google, [conversion(0), conversion(1)])
    hold = fake.hold_next()
    first: list[list[RowOutcome]] = []
    sender = threading.Thread(target=lambda: first.append(google.send(rows)))
    sender.start()
    try:
        assert hold.accepted.wait(10)
        assert len(fake.state.conversions) == 2  # accepted, not yet answered

        next_run = GoogleAdsDestination("google", google_ads_config)
        next_run.clock = lambda: NOW
        try:
            next_run.connect()
            assert next_run.recover(rows) == [None, None]
            assert kinds(next_run.send(rows)) == [(OutcomeKind.DELIVERED, "duplicate")] * 2
        finally:
            next_run.close()
    finally:
        hold.release()
        sender.join(10)
    assert kinds(first[0]) == [(OutcomeKind.DELIVERED, None)] * 2
