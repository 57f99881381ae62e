"""google_ads: retractions, restatements and validate-only against the fake Google Ads
API, through the real client."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from convsync.core.model import (
    Conversion,
    OutcomeKind,
    RowOutcome,
)
from convsync.destinations.google_ads import GoogleAdsDestination
from tests.google_ads_fake import (
    ADJUSTMENTS,
    CUSTOMER_ID,
    Err,
    FakeGoogleAds,
    RowFaults,
)
from tests.integration.google_ads.rows import (
    ACTION,
    MSK,
    NOW,
    OCCURRED,
    adjustment_rows,
    conversion,
    kinds,
    restatement,
    retraction,
    rows_for,
)

# --- adjustments ----------------------------------------------------------------------------


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
