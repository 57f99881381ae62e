"""Uploads through the Data Manager API: the real ``google-ads-datamanager`` client, over
TLS with OAuth, against the fake API on 127.0.0.1 — requests per batch, fail-fast
refusals isolated to their rows, quotas, outages, consent and match signals as Google
receives them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable
from convsync.core.model import Conversion, Identifiers, OutboundRow, OutcomeKind
from convsync.destinations.google_ads.config import GoogleAdsTarget
from convsync.destinations.google_ads.datamanager.destination import DataManagerDestination
from tests.datamanager_fake import (
    INGEST,
    FakeDataManager,
    destination_for,
    event_violations,
    quota_daily,
    quota_per_minute,
    scope_insufficient,
    service_disabled,
    unavailable,
)
from tests.integration.google_ads.rows import EMAIL_SHA256, NOW, QUOTA_RESET, conversion

DM = {"api": "data_manager"}


def target(action: int = 987654321, **fields: Any) -> GoogleAdsTarget:
    return GoogleAdsTarget.model_validate({"conversion_action": action, **fields}, context=DM)


PLAIN = target()


def rows_of(
    google: DataManagerDestination,
    conversions: list[Conversion],
    targets: list[GoogleAdsTarget] | None = None,
    batch: str = "b1",
) -> list[OutboundRow]:
    chosen = targets or [PLAIN] * len(conversions)
    return [
        OutboundRow(i + 1, c, google.build(c, t, NOW), batch_id=batch)
        for i, (c, t) in enumerate(zip(conversions, chosen, strict=True))
    ]


def many(n: int) -> list[Conversion]:
    return [conversion(i, attributes=None) for i in range(n)]


def ingest_calls(fake: FakeDataManager) -> list[Any]:
    return fake.calls_of(INGEST)


def test_a_batch_is_one_request_and_google_counts_each_order_once(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    outcomes = google.send(rows_of(google, many(5)))
    assert {o.kind for o in outcomes} == {OutcomeKind.DELIVERED}
    [call] = ingest_calls(fake)
    assert call.status == "OK" and len(call.request.events) == 5
    assert call.metadata["authorization"].startswith("Bearer ")
    [upload] = google.take_uploads()
    assert upload.external_id == call.request_id and upload.delivery_ids == (1, 2, 3, 4, 5)
    fake.process()
    assert len(fake.state.conversions) == 5


def test_two_bad_events_of_2000_reject_those_rows_alone_in_two_requests(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    fake.script(event_violations(3, 1999))
    outcomes = google.send(rows_of(google, many(2000)))
    rejected = [i for i, o in enumerate(outcomes) if o.kind is OutcomeKind.REJECTED]
    assert rejected == [3, 1999]
    assert sum(o.kind is OutcomeKind.DELIVERED for o in outcomes) == 1998
    first, second = ingest_calls(fake)
    assert (first.status, len(first.request.events)) == ("INVALID_ARGUMENT", 2000)
    assert (second.status, len(second.request.events)) == ("OK", 1998)
    assert {e.transaction_id for e in second.request.events}.isdisjoint({"A-1003", "A-2999"})
    message = outcomes[3].message or ""
    assert outcomes[3].code == "invalid_format"
    assert "INVALID_FORMAT at ad_identifiers.gclid" in message
    assert "sources.shop captures the click id" in message
    assert google.upload_requests() == 2


def test_a_refusal_that_names_no_event_is_halved_until_the_bad_row_is_alone(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    conversions = many(2000)
    bad = conversions[1234].ids.gclid
    assert bad is not None
    fake.unattributed_bad_gclids.add(bad)
    outcomes = google.send(rows_of(google, conversions))
    assert [i for i, o in enumerate(outcomes) if o.kind is OutcomeKind.REJECTED] == [1234]
    # 2000 → 1000 → … → 1: one refused and one accepted request per level below the first
    assert len(ingest_calls(fake)) == 1 + 2 * 11
    assert sum(len(c.request.events) for c in ingest_calls(fake) if c.status == "OK") == 1999
    assert "this row alone was refused" in (outcomes[1234].message or "")


def test_three_conversion_actions_go_in_one_request(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    targets = [target(111), target(222), target(333)] * 3
    google.send(rows_of(google, many(9), targets))
    [call] = ingest_calls(fake)
    assert [d.product_destination_id for d in call.request.destinations] == ["111", "222", "333"]
    assert [list(e.destination_references) for e in call.request.events][:3] == [
        ["111"],
        ["222"],
        ["333"],
    ]
    uploads = google.take_uploads()
    assert sorted(u.details["conversion_action"] for u in uploads) == ["111", "222", "333"]
    assert {len(u.delivery_ids) for u in uploads} == {3}


def test_a_per_minute_quota_is_retried_after_googles_wait(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    fake.script(quota_per_minute(retry_after=7.0))
    rows = rows_of(google, many(3))
    outcomes = google.send(rows)
    assert {(o.kind, o.code, o.retry_after) for o in outcomes} == {
        (OutcomeKind.TRANSIENT, "rate_limited", 7.0)
    }
    assert {o.kind for o in google.send(rows)} == {OutcomeKind.DELIVERED}


def test_an_outage_is_transient_and_the_next_try_goes_through(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    fake.script(unavailable())
    rows = rows_of(google, many(3))
    assert {(o.kind, o.code) for o in google.send(rows)} == {(OutcomeKind.TRANSIENT, "unavailable")}
    assert {o.kind for o in google.send(rows)} == {OutcomeKind.DELIVERED}


def test_the_daily_quota_stops_the_destination_until_the_reset(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    fake.script(quota_daily())
    rows = rows_of(google, many(3))
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows)
    assert (caught.value.code, caught.value.retry_at) == ("daily_quota_exhausted", QUOTA_RESET)
    calls = len(fake.calls)
    with pytest.raises(DestinationUnavailable):
        google.send(rows)
    assert len(fake.calls) == calls  # no request until the reset


@pytest.mark.parametrize(
    ("fault", "code"),
    [(service_disabled(), "api_disabled"), (scope_insufficient(), "auth_scope")],
)
def test_access_problems_stop_the_destination_with_what_to_do(
    google: DataManagerDestination, fake: FakeDataManager, fault: Any, code: str
) -> None:
    fake.script(fault)
    with pytest.raises(DestinationUnavailable) as caught:
        google.send(rows_of(google, many(2)))
    assert caught.value.code == code


def test_a_revoked_refresh_token_stops_the_destination_at_connect(fake: FakeDataManager) -> None:
    destination = destination_for(fake)
    fake.oauth.revoke(destination.config.auth.refresh_token.get_secret_value())  # type: ignore[union-attr]
    with pytest.raises(DestinationUnavailable) as caught:
        destination.connect()
    assert caught.value.code == "auth_failed"
    assert fake.calls == []


def test_consent_goes_as_the_request_default_and_the_records_own(fake: FakeDataManager) -> None:
    google = destination_for(
        fake, consent={"ad_user_data": "granted", "ad_personalization": "denied"}
    )
    google.connect()
    try:
        conversions = [conversion(0, consent=None), conversion(1, consent="DENIED")]
        google.send(rows_of(google, conversions))
    finally:
        google.close()
    [call] = ingest_calls(fake)
    assert call.request.consent.ad_user_data.name == "CONSENT_GRANTED"
    assert call.request.consent.ad_personalization.name == "CONSENT_DENIED"
    first, second = call.request.events
    assert first.consent.ad_user_data.name == "CONSENT_STATUS_UNSPECIFIED"
    assert second.consent.ad_user_data.name == "CONSENT_DENIED"


SIGNALS = {"google_session_attributes": "Z2FkX3NvdXJjZT0x", "ip_address": "203.0.113.77",
           "user_agent": "Mozilla/5.0 (X11)"}  # fmt: skip


@pytest.mark.parametrize("send_ip_address", [False, True])
def test_session_attributes_and_device_info_only_when_mapped_and_allowed(
    fake: FakeDataManager, send_ip_address: bool
) -> None:
    google = destination_for(fake, send_ip_address=send_ip_address)
    google.connect()
    try:
        conversions = [conversion(0, attributes=SIGNALS), conversion(1, attributes=None)]
        google.send(rows_of(google, conversions))
    finally:
        google.close()
    [call] = ingest_calls(fake)
    with_signals, without = call.request.events
    assert with_signals.ad_identifiers.session_attributes == "Z2FkX3NvdXJjZT0x"
    device = with_signals.ad_identifiers.landing_page_device_info
    assert device.ip_address == ("203.0.113.77" if send_ip_address else "")
    assert device.user_agent == ("Mozilla/5.0 (X11)" if send_ip_address else "")
    assert not without.ad_identifiers.session_attributes
    assert not without.ad_identifiers.landing_page_device_info.ip_address


def test_enhanced_conversions_for_leads_go_hex_encoded(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    lead = conversion(0, ids=Identifiers(email_sha256=EMAIL_SHA256))
    google.send(rows_of(google, [lead], [target(enhanced_for_leads=True)]))
    [call] = ingest_calls(fake)
    assert call.request.encoding.name == "HEX"
    assert call.request.events[0].user_data.user_identifiers[0].email_address == EMAIL_SHA256


def test_validate_only_checks_every_row_and_google_records_nothing(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    fake.script(event_violations(1))
    outcomes = google.validate(rows_of(google, many(3)))
    assert [(o.kind, o.code) for o in outcomes] == [
        (OutcomeKind.DELIVERED, "valid"),
        (OutcomeKind.REJECTED, "invalid_format"),
        (OutcomeKind.DELIVERED, "valid"),
    ]
    assert all(c.request.validate_only for c in ingest_calls(fake))
    assert google.take_uploads() == []
    fake.process()
    assert fake.state.conversions == {}


def test_a_resend_of_a_batch_google_has_restates_it_instead_of_counting_twice(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    fake.auto_process = True
    rows = rows_of(google, many(3))
    google.send(rows)
    assert google.recover(rows) == [None, None, None]  # sent again, as after a crash
    google.send(rows)
    assert len(fake.state.conversions) == 3
    assert {c.count for c in fake.state.conversions.values()} == {1}
    assert {c.receipts for c in fake.state.conversions.values()} == {2}


# --- what Google did with each request -----------------------------------------------------


def test_request_status_is_asked_later_and_a_success_is_matched(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    google.send(rows_of(google, many(3)))
    [upload] = google.take_uploads()
    assert upload.next_check_at == NOW + timedelta(minutes=30)
    [still] = google.reconcile([upload], NOW + timedelta(minutes=30))
    assert (still.status, still.final) == ("PROCESSING", False)
    assert still.next_check_at == NOW + timedelta(minutes=69)
    fake.process()
    [done] = google.reconcile([still], NOW + timedelta(minutes=70))
    assert (done.status, done.final, done.verdict) == ("SUCCESS", True, "matched")
    assert done.details["records"] == 3


def test_a_partly_failed_request_keeps_its_rows_delivered_with_googles_counts(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    conversions = many(4)
    fake.state.unknown_clicks.update(c.ids.gclid for c in conversions[:3] if c.ids.gclid)
    google.send(rows_of(google, conversions))
    fake.process()
    [done] = google.reconcile(google.take_uploads(), NOW + timedelta(hours=1))
    assert (done.status, done.verdict) == ("PARTIAL_SUCCESS", None)
    assert done.details["errors"] == {"CLICK_NOT_FOUND": 3}
    assert "3 of the 4 conversions" in (done.message or "")


def test_a_failed_request_makes_its_rows_unmatched_with_googles_reason(
    google: DataManagerDestination, fake: FakeDataManager
) -> None:
    conversions = many(2)
    fake.state.unknown_clicks.update(c.ids.gclid for c in conversions if c.ids.gclid)
    google.send(rows_of(google, conversions))
    fake.process()
    [done] = google.reconcile(google.take_uploads(), NOW + timedelta(hours=1))
    assert (done.status, done.verdict, done.verdict_code) == (
        "FAILED",
        "unmatched",
        "click_not_found",
    )
    assert "Google found no click" in (done.message or "")
