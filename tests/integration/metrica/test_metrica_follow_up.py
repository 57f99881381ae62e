"""yandex_metrica after the upload, against the fake Metrica API: recovering a batch left
in ``sending`` by its comment, and reconciling uploads until Metrica has processed them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from convsync.core.errors import DestinationUnavailable, TransientError
from convsync.core.model import DeliveryState, OutcomeKind, UploadRecord
from convsync.destinations.yandex_metrica import MetricaDestination
from tests.integration.metrica.rows import (
    BATCH,
    CALL,
    NOW,
    PURCHASE,
    call,
    conversion,
    kinds,
    rows_for,
)
from tests.metrica_fake import FakeMetrica, error

# --- recovery ------------------------------------------------------------------------


def test_a_batch_metrica_has_is_recovered_by_its_comment(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    rows = rows_for(metrica, [conversion(0), conversion(1)])
    metrica.send(rows)
    metrica.take_uploads()
    [stored] = fake.uploads
    outcomes = metrica.recover(rows)  # as after a crash between the answer and the ledger
    assert kinds(outcomes) == [(OutcomeKind.DELIVERED, "recovered")] * 2  # type: ignore[arg-type]
    assert outcomes[0] is not None and outcomes[0].message is not None
    assert f"upload {stored}" in outcomes[0].message
    assert len(fake.calls_of("upload")) == 1
    [record] = metrica.take_uploads()
    assert (record.batch_id, record.external_id, record.rows) == (BATCH, str(stored), 2)
    assert record.next_check_at == NOW  # asked about in this run's reconcile step


def test_a_batch_metrica_does_not_have_is_sent_again(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    metrica.send(rows_for(metrica, [conversion(9)], batch_id="someotherbatch"))
    rows = rows_for(metrica, [conversion(0)])
    assert metrica.recover(rows) == [None]
    assert metrica.take_uploads()[1:] == []  # only the other batch's upload
    [listing] = fake.calls_of("uploadings")[1:]  # after connect's check
    assert listing.query == {"limit": "10000", "offset": "0"}


def test_recovery_looks_for_each_kind_of_a_mixed_batch(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    rows = [*rows_for(metrica, [conversion(0)]), *rows_for(metrica, [call(1)], CALL, first_id=2)]
    fake.script(error("quota_requests_by_ip"))  # the conversions file fails, the calls go
    metrica.send(rows)
    metrica.take_uploads()
    outcomes = metrica.recover(rows)
    assert outcomes[0] is None
    assert outcomes[1] is not None and outcomes[1].code == "recovered"
    [record] = metrica.take_uploads()
    assert record.batch_id == f"{BATCH}-calls" and record.details["type"] == "CALLS"


def test_the_list_is_read_once_per_run_for_recovery(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    metrica.recover(rows_for(metrica, [conversion(0)], batch_id="a"))
    metrica.recover(rows_for(metrica, [conversion(1)], batch_id="b"))
    assert len(fake.calls_of("uploadings")) == 2  # connect's check and one list


def test_recovery_that_cannot_look_keeps_the_rows_for_later(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    fake.script(error("backend_error", endpoint="uploadings"))
    [outcome] = metrica.recover(rows_for(metrica, [conversion(0)]))
    assert outcome is not None
    assert (outcome.kind, outcome.code) == (OutcomeKind.UNCLEAR, "upload_unclear")
    assert outcome.retry_at == NOW + timedelta(minutes=5)
    assert "stopped before noting Metrica's answer" in (outcome.message or "")
    assert "503 backend_error" in (outcome.message or "")
    [record] = metrica.take_uploads()
    assert (record.status, record.details["lookups"], record.details["batch"]) == (
        "UNCLEAR",
        1,
        BATCH,
    )


def test_recovery_that_hits_the_daily_quota_keeps_the_rows_and_stops(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    fake.script(error("quota_requests_by_uid", endpoint="uploadings"))
    rows = rows_for(metrica, [conversion(0)])
    [outcome] = metrica.recover(rows)
    assert outcome is not None and outcome.kind is OutcomeKind.UNCLEAR
    with pytest.raises(DestinationUnavailable) as caught:  # nothing else goes this run
        metrica.send(rows_for(metrica, [conversion(1)], batch_id="other"))
    assert caught.value.code == "quota_requests_by_uid"
    assert fake.calls_of("upload") == []


# --- reconciliation -----------------------------------------------------------------


def uploaded(fake: FakeMetrica, metrica: MetricaDestination, n: int = 4) -> UploadRecord:
    metrica.send(rows_for(metrica, [conversion(i) for i in range(n)]))
    [record] = metrica.take_uploads()
    return record


def test_processed_with_every_row_linked_is_matched(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    record = uploaded(fake, metrica)
    fake.process()
    [done] = metrica.reconcile([record], NOW + timedelta(minutes=5))
    assert fake.calls_of("uploading")[0].status == 200
    assert (done.status, done.final, done.verdict) == ("PROCESSED", True, DeliveryState.MATCHED)
    assert done.details["linked_quantity"] == 4 and done.details["line_quantity"] == 4


def test_linkage_failure_is_unmatched_with_an_explanation(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    record = uploaded(fake, metrica)
    fake.visitors = set()  # no ClientId of the file ever visited the site
    fake.process()
    [done] = metrica.reconcile([record], NOW + timedelta(minutes=5))
    assert (done.status, done.verdict, done.verdict_code) == (
        "LINKAGE_FAILURE",
        DeliveryState.UNMATCHED,
        "linkage_failure",
    )
    assert done.message is not None
    assert "None of the 4 rows" in done.message and "_ym_uid" in done.message


def test_a_goal_the_counter_lacks_is_named(fake: FakeMetrica, metrica: MetricaDestination) -> None:
    record = uploaded(fake, metrica)
    fake.goals = {"some_other_goal"}
    fake.process()
    [done] = metrica.reconcile([record], NOW + timedelta(minutes=5))
    assert done.status == "PROCESSED" and done.details["goal_not_found_quantity"] == 4
    assert done.verdict is DeliveryState.UNMATCHED and done.verdict_code == "goal_not_found"
    assert done.message is not None
    assert done.message.startswith(
        f"Goal identifier not found on counter {metrica.config.counter_id} for 4 of 4 rows: "
        f"create a JavaScript-event goal with identifier {PURCHASE.target}"
    )


def test_an_upload_not_processed_yet_is_asked_again_later(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    record = uploaded(fake, metrica)
    [first] = metrica.reconcile([record], NOW + timedelta(minutes=5))
    assert (first.status, first.final) == ("UPLOADED", False)
    assert first.next_check_at == NOW + timedelta(minutes=20)
    fake.advance(int(record.external_id), "EXPORTED")
    [second] = metrica.reconcile([first], NOW + timedelta(minutes=20))
    assert second.status == "EXPORTED" and second.next_check_at == NOW + timedelta(minutes=80)
    assert len(fake.calls_of("uploading")) == 2  # one request per due upload, no waiting


def test_an_upload_never_processed_is_given_up_after_three_days(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    record = uploaded(fake, metrica)
    [done] = metrica.reconcile([record], NOW + timedelta(days=3))
    assert (done.status, done.final, done.verdict) == ("UNKNOWN", True, None)
    assert done.message is not None and "after 3 days (last status UPLOADED)" in done.message


def test_a_transient_failure_ends_the_round_keeping_what_was_learnt(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    first = uploaded(fake, metrica)
    metrica.send(rows_for(metrica, [conversion(9)], batch_id="second"))
    [second] = metrica.take_uploads()
    fake.process()
    fake.script(error("backend_error", endpoint="uploading"))
    with pytest.raises(TransientError):
        metrica.reconcile([first, second], NOW + timedelta(minutes=5))
    fake.script(error("quota_requests_by_ip", endpoint="uploading", retry_after="1", after=1))
    [done] = metrica.reconcile([first, second], NOW + timedelta(minutes=5))
    assert done.batch_id == BATCH and done.verdict is DeliveryState.MATCHED


def test_an_upload_metrica_does_not_know_is_given_up(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    record = uploaded(fake, metrica)
    fake.uploads.clear()
    [done] = metrica.reconcile([record], NOW + timedelta(minutes=5))
    assert (done.status, done.final) == ("UNKNOWN", True)
    assert fake.calls_of("uploading")[0].status == 404
