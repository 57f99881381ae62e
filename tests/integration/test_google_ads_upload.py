"""google_ads: ``GoogleAdsDestination`` with the real google-ads client (v26) against the
fake Google Ads API over gRPC and TLS, with the fake OAuth token endpoint.

Every test drives connect → send / validate as the worker does and asserts the requests
the server received (fields, headers) and the outcomes the worker gets back.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.destinations.google_ads.config import GoogleAdsTarget
from convsync.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.logging import configure_logging
from convsync.model import (
    Adjustment,
    AdjustmentKind,
    Conversion,
    Identifiers,
    OutboundRow,
    OutcomeKind,
    RowOutcome,
)
from tests.google_ads_fake import (
    ADJUSTMENTS,
    CLICKS,
    CUSTOMER_ID,
    Err,
    FakeGoogleAds,
    RowFaults,
    destination_for,
    internal,
    invalid_argument,
    permission_denied,
    quota_exhausted,
    unauthenticated,
    unavailable,
)

pytest_plugins = ["tests.google_ads_fake.fixtures"]

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
MSK = timezone(timedelta(hours=3))
OCCURRED = datetime(2026, 11, 20, 14, 3, tzinfo=MSK)
ACTION = f"customers/{CUSTOMER_ID}/conversionActions/987654321"
EMAIL_SHA256 = "a" * 64
PHONE_SHA256 = "b" * 64
#: midnight in Los Angeles after NOW (01:00 PST on Nov 21)
QUOTA_RESET = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

PLAIN = GoogleAdsTarget(conversion_action=987654321, custom_variables={7: "plan"})
EC4L = GoogleAdsTarget(conversion_action=987654321, enhanced_for_leads=True)


def conversion(i: int, **changes: Any) -> Conversion:
    fields: dict[str, Any] = {
        "key": f"c-{i}",
        "source": "shop",
        "record_id": str(1000 + i),
        "goal": "purchase",
        "order_id": f"A-{1000 + i}",
        "occurred_at": OCCURRED,
        "value": Decimal("1500.00"),
        "currency": "RUB",
        "ids": Identifiers(gclid=f"Cj0KCQiA2-2eBhClARIsAGLQ2Rl{i:06d}"),
        "consent": "GRANTED",
        "attributes": {"plan": "gold"},
    }
    fields.update(changes)
    return Conversion(**fields)


def rows_for(
    destination: GoogleAdsDestination,
    conversions: list[Conversion],
    target: GoogleAdsTarget = PLAIN,
) -> list[OutboundRow]:
    return [
        OutboundRow(i + 1, c, destination.build(c, target, NOW)) for i, c in enumerate(conversions)
    ]


def adjustment_rows(
    destination: GoogleAdsDestination, pairs: list[tuple[Conversion, Adjustment]]
) -> list[OutboundRow]:
    return [
        OutboundRow(100 + i, c, destination.build_adjustment(c, a, PLAIN, LATER), adjustment=a)
        for i, (c, a) in enumerate(pairs)
    ]


@pytest.fixture
def fake(google_ads_fake: FakeGoogleAds) -> FakeGoogleAds:
    return google_ads_fake


@pytest.fixture
def google(google_ads_destination: GoogleAdsDestination) -> GoogleAdsDestination:
    google_ads_destination.clock = lambda: NOW
    google_ads_destination.connect()
    return google_ads_destination


def kinds(outcomes: list[RowOutcome]) -> list[tuple[OutcomeKind, str | None]]:
    return [(o.kind, o.code) for o in outcomes]


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


# --- adjustments ----------------------------------------------------------------------------

LATER = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def retraction(at: datetime = datetime(2026, 11, 22, 10, 0, tzinfo=MSK)) -> Adjustment:
    return Adjustment(AdjustmentKind.RETRACTION, at)


def restatement(value: str, at: datetime = datetime(2026, 11, 22, 10, 0, tzinfo=MSK)) -> Adjustment:
    return Adjustment(AdjustmentKind.RESTATEMENT, at, Decimal(value), "USD")


@pytest.fixture
def sent(google: GoogleAdsDestination) -> list[Conversion]:
    """Three conversions Google already has."""
    conversions = [conversion(i) for i in range(3)]
    assert kinds(google.send(rows_for(google, conversions))) == [(OutcomeKind.DELIVERED, None)] * 3
    return conversions


def test_retraction_and_restatement_are_sent_exactly(
    fake: FakeGoogleAds, google: GoogleAdsDestination, sent: list[Conversion]
) -> None:
    rows = adjustment_rows(google, [(sent[0], retraction()), (sent[1], restatement("900.5"))])
    assert google.send(rows) == [RowOutcome.delivered()] * 2

    call = fake.calls[-1]
    assert call.method == ADJUSTMENTS
    request = call.request
    assert request.customer_id == CUSTOMER_ID
    assert request.partial_failure is True
    assert request.validate_only is False
    retract, restate = request.conversion_adjustments
    assert retract.adjustment_type.name == "RETRACTION"
    assert retract.conversion_action == ACTION
    assert retract.order_id == "A-1000"
    assert retract.adjustment_date_time == "2026-11-22 10:00:00+03:00"
    assert "restatement_value" not in retract
    assert "gclid_date_time_pair" not in retract
    assert restate.adjustment_type.name == "RESTATEMENT"
    assert restate.order_id == "A-1001"
    assert restate.restatement_value.adjusted_value == 900.5
    assert restate.restatement_value.currency_code == "USD"
    assert call.metadata["authorization"].startswith("Bearer ")

    assert fake.state.conversions[(ACTION, "A-1000")].retracted is True
    assert fake.state.conversions[(ACTION, "A-1001")].value == 900.5


def test_adjustment_replays_and_older_restatements_are_delivered(
    google: GoogleAdsDestination, sent: list[Conversion]
) -> None:
    rows = adjustment_rows(google, [(sent[0], retraction()), (sent[1], restatement("900"))])
    google.send(rows)
    assert kinds(google.send(rows)) == [(OutcomeKind.DELIVERED, "duplicate")] * 2
    older = restatement("800", datetime(2026, 11, 22, 9, 0, tzinfo=MSK))
    assert kinds(google.send(adjustment_rows(google, [(sent[1], older)]))) == [
        (OutcomeKind.DELIVERED, "superseded")
    ]
    newer = restatement("700", datetime(2026, 11, 22, 11, 0, tzinfo=MSK))
    assert kinds(google.send(adjustment_rows(google, [(sent[1], newer)]))) == [
        (OutcomeKind.DELIVERED, None)
    ]


def test_adjustment_of_a_conversion_google_does_not_have_yet_waits(
    google: GoogleAdsDestination,
) -> None:
    [outcome] = google.send(adjustment_rows(google, [(conversion(9), retraction())]))
    assert (outcome.kind, outcome.code) == (OutcomeKind.DEFERRED, "conversion_not_found")
    assert outcome.retry_at == NOW + timedelta(hours=6)


def test_too_recent_conversion_waits_until_24_hours_after_it(
    fake: FakeGoogleAds, google: GoogleAdsDestination, sent: list[Conversion]
) -> None:
    fake.script(
        RowFaults({0: [Err("conversion_adjustment_upload_error", "TOO_RECENT_CONVERSION")]})
    )
    [outcome] = google.send(adjustment_rows(google, [(sent[0], retraction())]))
    assert (outcome.kind, outcome.code) == (OutcomeKind.DEFERRED, "too_recent_conversion")
    assert outcome.retry_at == OCCURRED + timedelta(hours=24, minutes=5)


def test_an_adjustment_error_google_does_not_explain_is_rejected(
    fake: FakeGoogleAds, google: GoogleAdsDestination, sent: list[Conversion]
) -> None:
    fake.script(
        RowFaults(
            {
                -1: [
                    Err(
                        "conversion_adjustment_upload_error",
                        "CANNOT_RESTATE_CONVERSION_ACTION_THAT_ALWAYS_USES_DEFAULT_CONVERSION_VALUE",
                    )
                ]
            }
        )
    )
    rows = adjustment_rows(google, [(sent[0], retraction()), (sent[1], restatement("5"))])
    outcomes = google.send(rows)
    assert kinds(outcomes) == [
        (OutcomeKind.DELIVERED, None),
        (
            OutcomeKind.REJECTED,
            "cannot_restate_conversion_action_that_always_uses_default_conversion_value",
        ),
    ]


# --- validate-only --------------------------------------------------------------------------


def test_validate_sends_validate_only_and_google_records_nothing(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.script(RowFaults({1: [Err("conversion_upload_error", "UNPARSEABLE_GCLID")]}))
    rows = rows_for(google, [conversion(0), conversion(1)])
    outcomes = google.validate(rows)
    assert kinds(outcomes) == [
        (OutcomeKind.DELIVERED, "valid"),
        (OutcomeKind.REJECTED, "unparseable_gclid"),
    ]
    assert fake.calls[-1].request.validate_only is True
    assert fake.calls[-1].request.partial_failure is True
    assert fake.state.conversions == {}
    # validating twice finds no duplicate: nothing was recorded
    assert kinds(google.validate(rows)) == [(OutcomeKind.DELIVERED, "valid")] * 2
    assert kinds(google.send(rows)) == [(OutcomeKind.DELIVERED, None)] * 2


def test_validate_adjustments(
    fake: FakeGoogleAds, google: GoogleAdsDestination, sent: list[Conversion]
) -> None:
    rows = adjustment_rows(google, [(sent[0], retraction()), (conversion(9), retraction())])
    assert kinds(google.validate(rows)) == [
        (OutcomeKind.DELIVERED, "valid"),
        (OutcomeKind.DEFERRED, "conversion_not_found"),
    ]
    assert fake.calls[-1].request.validate_only is True
    assert fake.state.conversions[(ACTION, "A-1000")].retracted is False


# --- credentials and access -------------------------------------------------------------------


def test_a_revoked_refresh_token_stops_the_destination_in_connect(
    fake: FakeGoogleAds, google_ads_destination: GoogleAdsDestination
) -> None:
    auth = google_ads_destination.config.auth
    fake.oauth.revoke(auth.refresh_token.get_secret_value())  # type: ignore[union-attr]
    with pytest.raises(DestinationUnavailable) as caught:
        google_ads_destination.connect()
    assert caught.value.code == "auth_failed"
    assert "invalid_grant" in caught.value.message
    assert "refresh token" in caught.value.message
    assert caught.value.__cause__ is None
    assert fake.calls == []


def test_a_wrong_client_secret_stops_the_destination(fake: FakeGoogleAds) -> None:
    auth = fake.oauth.oauth_client() | {"client_secret": "GOCSPX-not-the-right-one"}
    google = destination_for(fake, auth=auth)
    with pytest.raises(DestinationUnavailable) as caught:
        google.connect()
    assert caught.value.code == "auth_failed"
    assert "invalid_client" in caught.value.message
    assert "GOCSPX-not-the-right-one" not in caught.value.message


def test_a_token_revoked_during_the_run_stops_the_destination(
    fake: FakeGoogleAds, google_ads_destination: GoogleAdsDestination
) -> None:
    fake.oauth.expires_in = 60  # google-auth renews it before every call
    google = google_ads_destination
    google.connect()
    rows = rows_for(google, [conversion(0)])
    assert kinds(google.send(rows)) == [(OutcomeKind.DELIVERED, None)]
    fake.oauth.revoke(google.config.auth.refresh_token.get_secret_value())  # type: ignore[union-attr]
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows)
    assert caught.value.code == "auth_failed"
    assert "invalid_grant" in caught.value.message


def test_permission_denied_without_login_customer_id_explains_the_manager(
    fake: FakeGoogleAds, google: GoogleAdsDestination
) -> None:
    fake.customers[CUSTOMER_ID] = "9876543210"  # only reachable through this manager
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows_for(google, [conversion(0)]))
    assert caught.value.code == "permission_denied"
    assert "USER_PERMISSION_DENIED" in caught.value.message
    assert "login_customer_id of destinations.google" in caught.value.message
    assert "login-customer-id" not in fake.calls[-1].metadata


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (unauthenticated(), "auth_failed"),
        (permission_denied("CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION"), "project_not_approved"),
        (permission_denied("CUSTOMER_NOT_ENABLED"), "customer_not_enabled"),
    ],
)
def test_auth_and_access_errors_stop_the_destination(
    fake: FakeGoogleAds, google: GoogleAdsDestination, fault: Any, code: str
) -> None:
    fake.script(fault)
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows_for(google, [conversion(0)]))
    assert caught.value.code == code
    assert caught.value.retry_at is None


def test_service_account_credentials(fake: FakeGoogleAds, tmp_path: Path) -> None:
    key_file = fake.oauth.service_account_key(tmp_path)
    google = destination_for(fake, auth={"key_file": str(key_file)})
    google.clock = lambda: NOW
    try:
        google.connect()
        assert kinds(google.send(rows_for(google, [conversion(0)]))) == [
            (OutcomeKind.DELIVERED, None)
        ]
    finally:
        google.close()
    assert [g["grant_type"] for g in fake.oauth.grants] == [
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ]
    assert fake.calls[0].metadata["authorization"].startswith("Bearer ya29.fake-")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read (No such file or directory)"),
        ("{not json", "is not JSON"),
        ('{"type": "service_account"}', "is not a usable service account key"),
    ],
)
def test_a_bad_service_account_key_file_is_named(
    fake: FakeGoogleAds, tmp_path: Path, content: str | None, problem: str
) -> None:
    key_file = tmp_path / "key.json"
    if content is not None:
        key_file.write_text(content, encoding="utf-8")
    google = destination_for(fake, auth={"key_file": str(key_file)})
    with pytest.raises(DestinationUnavailable) as caught:
        google.connect()
    assert caught.value.code == "auth_key_file"
    assert f"{str(key_file)!r} of destinations.google.auth {problem}" in caught.value.message
    assert caught.value.__cause__ is None


def test_application_default_credentials(
    fake: FakeGoogleAds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    google = destination_for(fake, auth={"application_default": True})
    with pytest.raises(DestinationUnavailable) as caught:
        google.connect()
    assert caught.value.code == "auth_not_found"
    assert "gcloud auth application-default login" in caught.value.message

    # ADC from a service account key (an authorized_user file always uses Google's endpoint)
    key_file = fake.oauth.service_account_key(tmp_path)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    google.clock = lambda: NOW
    try:
        google.connect()
        assert kinds(google.send(rows_for(google, [conversion(0)]))) == [
            (OutcomeKind.DELIVERED, None)
        ]
    finally:
        google.close()


# --- secrets ----------------------------------------------------------------------------------


@pytest.fixture
def failures(fake: FakeGoogleAds, google_ads_destination: GoogleAdsDestination) -> list[str]:
    """The text of every error and outcome of a run through many failures."""
    google = google_ads_destination
    google.clock = lambda: NOW
    texts: list[str] = []
    google.connect()
    rows = rows_for(google, [conversion(0), conversion(1)])
    fake.script(
        RowFaults({0: [Err("conversion_upload_error", "UNPARSEABLE_GCLID")]}),
        invalid_argument(Err("request_error", "INVALID_CUSTOMER_ID")),
        unauthenticated(),
        internal(with_failure=False),
        quota_exhausted(daily=True),
    )
    texts += [o.message or "" for o in google.send(rows)]
    for _ in range(4):
        with pytest.raises((PermanentError, DestinationUnavailable, TransientError)) as caught:
            google.send(rows)
        texts.append(str(caught.value))
    fake.oauth.revoke(google.config.auth.refresh_token.get_secret_value())  # type: ignore[union-attr]
    with pytest.raises(DestinationUnavailable) as revoked:
        google.connect()
    texts.append(str(revoked.value))
    return texts


def test_no_secret_in_any_message(
    failures: list[str], fake: FakeGoogleAds, google_ads_destination: GoogleAdsDestination
) -> None:
    config = google_ads_destination.config
    auth = config.auth
    secrets = [
        auth.refresh_token.get_secret_value(),  # type: ignore[union-attr]
        auth.client_secret.get_secret_value(),  # type: ignore[union-attr]
        config.developer_token.get_secret_value(),  # type: ignore[union-attr]
        *fake.oauth.access_tokens,
    ]
    assert len(failures) == 7
    for text in failures:
        for secret in secrets:
            assert secret not in text
    described = repr(google_ads_destination.describe())
    assert described == repr(
        {"destination": "google", "type": "google_ads", "customer_id": CUSTOMER_ID}
    )


# --- logging ------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    google = logging.getLogger("google")
    google_state = (google.level, google.propagate)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    google.setLevel(google_state[0])
    google.propagate = google_state[1]
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_google_ads_log_lines_reach_convsync_logging_redacted(
    fake: FakeGoogleAds, google_ads_destination: GoogleAdsDestination
) -> None:
    google = google_ads_destination
    google.clock = lambda: NOW
    # google-auth may already have cut the "google" logger off the root (it does so the
    # first time it logs while that logger is unconfigured)
    logging.getLogger("google").propagate = False
    buffer = io.StringIO()
    configure_logging("json", "INFO", stream=buffer)
    google.connect()
    fake.script(invalid_argument(Err("request_error", "INVALID_CUSTOMER_ID")))
    with pytest.raises(PermanentError):
        google.send(rows_for(google, [conversion(0)]))
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    faults = [line for line in lines if line["logger"] == "google.ads.googleads.client"]
    assert faults, lines
    assert "IsFault: True" in faults[0]["event"]
    developer_token = google.config.developer_token.get_secret_value()  # type: ignore[union-attr]
    assert developer_token not in buffer.getvalue()
