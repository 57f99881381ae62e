"""yandex_metrica uploads against the fake Metrica API over HTTP on 127.0.0.1: the exact
multipart CSV, calls in a file of their own, every error type, and the token kept out of
every message and log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import structlog

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.logging import configure_logging
from convsync.core.model import OutcomeKind
from convsync.destinations.yandex_metrica import MetricaDestination
from tests.integration.metrica.rows import (
    BATCH,
    CALL,
    NOW,
    call,
    conversion,
    kinds,
    rows_for,
)
from tests.metrica_fake import COUNTER_ID, FakeMetrica, destination_for, error, http


def test_a_batch_is_one_multipart_csv_named_by_its_batch_id(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    rows = rows_for(metrica, [conversion(0), conversion(1, value=None), conversion(2)])
    outcomes = metrica.send(rows)
    assert kinds(outcomes) == [(OutcomeKind.DELIVERED, None)] * 3
    [upload] = fake.calls_of("upload")
    assert upload.method == "POST" and upload.status == 200
    assert upload.query == {"comment": BATCH}  # no type: BASIC is the default
    assert upload.authorization == f"OAuth {fake.token}"
    assert (upload.file_name, upload.file_type) == ("data.csv", "text/csv")
    assert upload.columns == ["ClientId", "Target", "DateTime", "Price", "Currency"]
    assert upload.rows == [
        {
            "ClientId": "1700000000123400000",
            "Target": "offline_purchase",
            "DateTime": "1795172580",
            "Price": "1500.00",
            "Currency": "RUB",
        },
        {
            "ClientId": "1700000000123400001",
            "Target": "offline_purchase",
            "DateTime": "1795172580",
            "Price": "",
            "Currency": "",
        },
        {
            "ClientId": "1700000000123400002",
            "Target": "offline_purchase",
            "DateTime": "1795172580",
            "Price": "1500.00",
            "Currency": "RUB",
        },
    ]
    [stored] = fake.uploads.values()
    assert stored.comment == BATCH and stored.type == "BASIC" and len(stored.valid) == 3
    [record] = metrica.take_uploads()
    assert (record.destination, record.batch_id, record.external_id) == (
        "metrica",
        BATCH,
        str(stored.id),
    )
    assert (record.status, record.rows, record.final) == ("UPLOADED", 3, False)
    assert record.next_check_at == NOW + timedelta(minutes=5)
    assert record.details["targets"] == {"offline_purchase": 3}
    assert metrica.take_uploads() == []


def test_calls_go_in_a_file_of_their_own_with_type_calls(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    rows = [
        *rows_for(metrica, [conversion(0)]),
        *rows_for(metrica, [call(1), call(2, attributes={"talk": "30"})], CALL, first_id=2),
    ]
    assert kinds(metrica.send(rows)) == [(OutcomeKind.DELIVERED, None)] * 3
    basic, calls = fake.calls_of("upload")
    assert basic.query == {"comment": BATCH}
    assert calls.query == {"comment": f"{BATCH}calls", "type": "CALLS"}
    assert calls.columns == ["ClientId", "DateTime", "TalkDuration", "CallMissed"]
    assert [(r["TalkDuration"], r["CallMissed"]) for r in calls.rows] == [("65", "0"), ("30", "")]
    assert [u.type for u in fake.uploads.values()] == ["BASIC", "CALLS"]
    records = metrica.take_uploads()
    assert [(r.batch_id, r.rows, r.details["type"]) for r in records] == [
        (BATCH, 1, "BASIC"),
        (f"{BATCH}-calls", 2, "CALLS"),
    ]
    assert all(r.details["mixed_batch"] for r in records)


def test_a_batch_of_calls_alone_keeps_the_batch_id(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    metrica.send(rows_for(metrica, [call(0)], CALL))
    [record] = metrica.take_uploads()
    assert record.batch_id == BATCH and not record.details["mixed_batch"]
    assert fake.calls_of("upload")[0].query["type"] == "CALLS"


# --- errors -------------------------------------------------------------------------

ERRORS = [
    ("quota_requests_by_ip", TransientError),
    ("quota_parallel_requests", TransientError),
    ("quota_requests_by_uid", DestinationUnavailable),
    ("quota_requests_by_counter_id", DestinationUnavailable),
    ("invalid_token", DestinationUnavailable),
    ("access_denied", DestinationUnavailable),
    ("unauthorized", DestinationUnavailable),
    ("invalid_uploading", PermanentError),
    ("invalid_parameter", PermanentError),
]


@pytest.mark.parametrize(("error_type", "kind"), ERRORS, ids=[e for e, _ in ERRORS])
def test_each_error_type_of_an_upload(
    fake: FakeMetrica, metrica: MetricaDestination, error_type: str, kind: type[Exception]
) -> None:
    fake.script(error(error_type))
    with pytest.raises(kind) as caught:
        metrica.send(rows_for(metrica, [conversion(0)]))
    assert getattr(caught.value, "code", None) == error_type
    assert fake.token not in str(caught.value)
    assert fake.calls_of("upload")[0].status >= 400
    assert metrica.take_uploads() == []
    if error_type.startswith("quota_requests_by_u") or error_type.endswith("counter_id"):
        assert isinstance(caught.value, DestinationUnavailable)
        assert caught.value.retry_at == datetime(2026, 11, 22, tzinfo=NOW.tzinfo)


@pytest.mark.parametrize("error_type", ["backend_error", "timeout"])
def test_a_server_error_of_an_upload_leaves_it_unclear(
    fake: FakeMetrica, metrica: MetricaDestination, error_type: str
) -> None:
    """A 5xx may come from a gateway that handed the file on: the rows are unclear (the
    worker keeps them in their batch), not failed, and the upload has a record."""
    fake.script(error(error_type))
    [outcome] = metrica.send(rows_for(metrica, [conversion(0)]))
    assert (outcome.kind, outcome.code) == (OutcomeKind.UNCLEAR, "upload_unclear")
    assert outcome.retry_at == NOW + timedelta(minutes=5)  # the first look-up
    assert outcome.message is not None and BATCH in outcome.message
    assert f"Metrica answered {ERRORS_STATUS[error_type]} {error_type}" in outcome.message
    [record] = metrica.take_uploads()
    assert (record.batch_id, record.status, record.external_id, record.final) == (
        BATCH,
        "UNCLEAR",
        "",
        False,
    )
    assert record.details["comment"] == BATCH and record.details["lookups"] == 0
    assert record.next_check_at == outcome.retry_at


ERRORS_STATUS = {"backend_error": 503, "timeout": 504}


def test_invalid_uploading_rejects_the_batch_with_metricas_words(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    fake.script(
        error("invalid_uploading", message="Goal 'Покупка' not found: use the goal identifier")
    )
    with pytest.raises(PermanentError) as caught:
        metrica.send(rows_for(metrica, [conversion(0)]))
    assert caught.value.code == "invalid_uploading"
    assert "Goal 'Покупка' not found: use the goal identifier" in caught.value.message


def test_429_then_success_honours_retry_after(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    fake.script(error("quota_requests_by_ip", retry_after="3"))
    rows = rows_for(metrica, [conversion(0), conversion(1)])
    with pytest.raises(TransientError) as caught:
        metrica.send(rows)
    assert caught.value.retry_after == 3.0
    assert kinds(metrica.send(rows)) == [(OutcomeKind.DELIVERED, None)] * 2
    assert [c.status for c in fake.calls_of("upload")] == [429, 200]
    assert len(fake.uploads) == 1 and len(metrica.take_uploads()) == 1


def test_a_gateway_timeout_after_the_file_went_in_is_not_uploaded_twice(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    fake.script(error("timeout", store=True))  # Metrica has the file, the answer is 504
    rows = rows_for(metrica, [conversion(0)])
    [unclear] = metrica.send(rows)
    assert unclear.kind is OutcomeKind.UNCLEAR and "504 timeout" in (unclear.message or "")
    outcomes = metrica.send(rows)  # the worker's retry: looked up by comment first
    assert kinds(outcomes) == [(OutcomeKind.DELIVERED, "recovered")]
    assert len(fake.calls_of("upload")) == 1 and len(fake.uploads) == 1
    [record] = metrica.take_uploads()  # the upload's record replaced the unclear one
    assert record.external_id == str(next(iter(fake.uploads)))
    assert (record.batch_id, record.status) == (BATCH, "UPLOADED")


def test_a_server_error_page_is_retried_and_then_the_file_goes(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    fake.script(http(502))
    rows = rows_for(metrica, [conversion(0)])
    [unclear] = metrica.send(rows)
    assert unclear.kind is OutcomeKind.UNCLEAR and "502 http_502" in (unclear.message or "")
    assert kinds(metrica.send(rows)) == [(OutcomeKind.DELIVERED, None)]
    # the lookup by comment found nothing, so the file went once
    assert [c.endpoint for c in fake.calls[1:]] == ["upload", "uploadings", "upload"]
    assert len(fake.uploads) == 1


def test_one_part_failing_leaves_the_other_delivered(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    rows = [*rows_for(metrica, [conversion(0)]), *rows_for(metrica, [call(1)], CALL, first_id=2)]
    fake.script(error("quota_requests_by_ip", endpoint="upload"))
    outcomes = metrica.send(rows)
    assert kinds(outcomes) == [
        (OutcomeKind.TRANSIENT, "quota_requests_by_ip"),
        (OutcomeKind.DELIVERED, None),
    ]
    assert [u.type for u in fake.uploads.values()] == ["CALLS"]
    fake.script(error("invalid_token"))  # the retry of the other part: the token is revoked
    [held] = metrica.send(rows[:1])
    assert (held.kind, held.code) == (OutcomeKind.DEFERRED, "invalid_token")
    assert held.retry_at == NOW + timedelta(minutes=15)


def test_a_used_up_daily_quota_stops_every_later_call_of_the_run(
    fake: FakeMetrica, metrica: MetricaDestination
) -> None:
    fake.script(error("quota_requests_by_uid"))
    with pytest.raises(DestinationUnavailable):
        metrica.send(rows_for(metrica, [conversion(0)]))
    requests = len(fake.calls)
    with pytest.raises(DestinationUnavailable) as caught:
        metrica.send(rows_for(metrica, [conversion(1)], batch_id="other"))
    with pytest.raises(DestinationUnavailable):
        metrica.reconcile([], NOW)
    assert caught.value.code == "quota_requests_by_uid" and len(fake.calls) == requests


def test_a_wrong_token_or_counter_stops_the_destination_in_connect(fake: FakeMetrica) -> None:
    wrong = destination_for(fake, token="y0_not-the-token-of-this-account")
    with pytest.raises(DestinationUnavailable) as caught:
        wrong.connect()
    assert caught.value.code == "invalid_token"
    assert "metrika:offline_data" in caught.value.message
    other = destination_for(fake, counter_id=COUNTER_ID + 1)
    with pytest.raises(DestinationUnavailable) as denied:
        other.connect()
    assert denied.value.code == "access_denied"
    assert f"counter {COUNTER_ID + 1}" in denied.value.message
    assert fake.calls_of("upload") == []


def test_an_unreachable_api_stops_the_destination_in_connect(fake: FakeMetrica) -> None:
    gone = destination_for(fake, api_base_url="http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DestinationUnavailable) as caught:
        gone.connect()
    assert caught.value.code == "metrica_unreachable"
    assert caught.value.message == (
        "Metrica API at 127.0.0.1:9: connection refused; check the network, DNS, proxy or "
        "destinations.metrica.api_base_url"
    )


# --- the token never shows -----------------------------------------------------------


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream=stream)
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_the_token_is_in_no_message_and_no_log_line(
    fake: FakeMetrica, debug_log: io.StringIO
) -> None:
    log = structlog.get_logger("test")
    texts: list[str] = []
    destination = destination_for(fake)
    destination.clock = lambda: NOW
    destination.connect()
    rows = rows_for(destination, [conversion(0)])
    for fault in (
        "invalid_token",
        "unauthorized",
        "quota_requests_by_ip",
        "invalid_uploading",
    ):
        fake.script(error(fault, message=f"echo {fake.token}"))
        try:
            destination.send(rows)
        except (DestinationUnavailable, TransientError, PermanentError) as exc:
            texts.append(str(exc))
            log.warning("send failed", reason=str(exc), exc_info=True)
    # a 5xx leaves the upload unclear, and so does its look-up's failure: both are told
    fake.script(
        error("backend_error", message=f"echo {fake.token}"),
        error("backend_error", endpoint="uploadings", message=f"echo {fake.token}"),
    )
    for _ in range(2):
        [unclear] = destination.send(rows)
        texts.append(unclear.message or "")
        [waiting] = destination.take_uploads()
        texts.append(json.dumps(dict(waiting.details)))
        log.warning("send failed", reason=unclear.message)
    assert "lookup_error" in texts[-1]
    destination.send(rows)
    [record] = destination.take_uploads()
    fake.process(status="LINKAGE_FAILURE", linked_quantity=0)
    [final] = destination.reconcile([record], NOW + timedelta(hours=1))
    texts += [final.message or "", json.dumps(dict(final.details)), repr(destination.describe())]
    log.info("reconciled", message=final.message, details=dict(final.details))
    destination.close()
    logged = debug_log.getvalue()
    assert "send failed" in logged and "reconciled" in logged
    assert len(texts) == 11
    for text in [*texts, logged]:
        assert fake.token not in text
