"""yandex_metrica: the error table (every row), the error body and Retry-After, and the
CSV file built from the rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.http import retry_after
from convsync.destinations.yandex_metrica.classify import (
    RULES,
    ApiError,
    Effect,
    parse_error,
    to_exception,
)
from convsync.destinations.yandex_metrica.csvfile import FILE_COLUMNS, build_csv

NOW = datetime(2026, 11, 21, 21, 30, tzinfo=UTC)
RESET = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
TOKEN = "y0_AgAAAAsecret-token-value"


def body(error_type: str | None, message: str = "Metrica says no", status: int = 400) -> bytes:
    errors = [{"error_type": error_type, "message": message, "location": "file"}]
    return json.dumps(
        {"errors": errors if error_type else [], "code": status, "message": "top"}
    ).encode()


def classified(status: int, error_type: str | None, **headers: str) -> Exception:
    error = parse_error(status, body(error_type, status=status), headers, NOW, (TOKEN,))
    return to_exception(error, destination="metrica", counter_id=123, now=NOW)


#: every row of the table: error_type → (documented status, exception, effect)
TABLE: dict[str, tuple[int, type[Exception], Effect]] = {
    "quota_requests_by_ip": (429, TransientError, Effect.TRANSIENT),
    "quota_parallel_requests": (429, TransientError, Effect.TRANSIENT),
    "backend_error": (503, TransientError, Effect.TRANSIENT),
    "timeout": (504, TransientError, Effect.TRANSIENT),
    "quota_requests_by_uid": (429, DestinationUnavailable, Effect.DAILY_QUOTA),
    "quota_requests_by_counter_id": (429, DestinationUnavailable, Effect.DAILY_QUOTA),
    "invalid_token": (403, DestinationUnavailable, Effect.UNAVAILABLE),
    "unauthorized": (401, DestinationUnavailable, Effect.UNAVAILABLE),
    "access_denied": (403, DestinationUnavailable, Effect.UNAVAILABLE),
    "counter_in_connect": (403, DestinationUnavailable, Effect.UNAVAILABLE),
    "not_found": (404, DestinationUnavailable, Effect.UNAVAILABLE),
    "invalid_uploading": (400, PermanentError, Effect.REJECT),
    "invalid_parameter": (400, PermanentError, Effect.REJECT),
    "missing_parameter": (400, PermanentError, Effect.REJECT),
    "limit_exceeded": (400, PermanentError, Effect.REJECT),
    "conflict": (409, PermanentError, Effect.REJECT),
    "not_acceptable": (406, PermanentError, Effect.REJECT),
    "invalid_json": (400, PermanentError, Effect.REJECT),
}


def test_the_test_table_covers_the_whole_rule_table() -> None:
    assert set(TABLE) == set(RULES)


@pytest.mark.parametrize("error_type", sorted(TABLE))
def test_each_error_type(error_type: str) -> None:
    status, kind, effect = TABLE[error_type]
    assert RULES[error_type].effect is effect
    exc = classified(status, error_type)
    assert type(exc) is kind
    assert getattr(exc, "code", None) == error_type
    text = str(exc)
    assert f"Metrica answered {status} {error_type}: Metrica says no" in text
    assert TOKEN not in text
    if effect is Effect.DAILY_QUOTA:
        assert isinstance(exc, DestinationUnavailable)
        assert exc.retry_at == RESET
        assert "00:00 UTC" in exc.message
    elif effect is Effect.UNAVAILABLE:
        assert isinstance(exc, DestinationUnavailable) and exc.retry_at is None
        assert "pending" in exc.message
    elif effect is Effect.REJECT:
        assert isinstance(exc, PermanentError)
        assert "convsync retry --destination metrica" in exc.message


def test_token_problems_say_what_to_do() -> None:
    invalid = classified(403, "invalid_token")
    assert isinstance(invalid, DestinationUnavailable)
    assert "metrika:offline_data" in invalid.message and "counter 123" in invalid.message
    assert "destinations.metrica.token" in invalid.message
    denied = classified(403, "access_denied")
    assert isinstance(denied, DestinationUnavailable)
    assert "edit access to counter 123" in denied.message


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("2.5", 2.5), ("Sat, 21 Nov 2026 21:30:30 GMT", 30.0), ("soon", None)],
)
def test_retry_after_in_seconds_or_as_a_date(header: str, seconds: float | None) -> None:
    exc = classified(429, "quota_requests_by_ip", **{"Retry-After": header})
    assert isinstance(exc, TransientError)
    assert exc.retry_after == seconds
    assert retry_after(None, NOW) is None


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (500, TransientError, "http_500"),
        (502, TransientError, "http_502"),
        (429, TransientError, "http_429"),
        (401, DestinationUnavailable, "http_401"),
        (403, DestinationUnavailable, "http_403"),
        (404, DestinationUnavailable, "http_404"),
        (418, PermanentError, "http_418"),
    ],
)
def test_without_a_known_error_type_the_status_decides(
    status: int, kind: type[Exception], code: str
) -> None:
    html = parse_error(status, b"<html>Bad Gateway</html>", {}, NOW)
    assert html == ApiError(status, None, f"HTTP {status}", None)
    exc = to_exception(html, destination="metrica", counter_id=123, now=NOW)
    assert type(exc) is kind and getattr(exc, "code", None) == code
    unknown = classified(status, "brand_new_error")  # a type the table does not know
    assert type(unknown) is kind and getattr(unknown, "code", None) == "brand_new_error"


def test_an_unknown_error_type_is_rejected_never_retried_blindly() -> None:
    exc = classified(400, "brand_new_error")
    assert isinstance(exc, PermanentError) and exc.code == "brand_new_error"


def test_metricas_message_is_kept_short_and_without_the_token() -> None:
    long = f"echo {TOKEN} " + "x" * 1000
    error = parse_error(400, body("invalid_parameter", long), {}, NOW, (TOKEN,))
    assert TOKEN not in error.message and "**********" in error.message
    assert len(error.message) <= 300
    top_only = json.dumps({"code": 400, "message": "Check your request"}).encode()
    assert parse_error(400, top_only, {}, NOW).message == "Check your request"


# --- the CSV file ------------------------------------------------------------------


def read(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_header_has_only_the_columns_some_row_uses_in_file_order() -> None:
    rows: list[dict[str, Any]] = [
        {"Yclid": "7", "Target": "t", "DateTime": 1795172580},
        {"ClientId": "1", "Target": "t", "DateTime": 1795172581, "Price": "10.50"},
    ]
    data = build_csv(rows)
    assert data.splitlines()[0] == b"ClientId,Yclid,Target,DateTime,Price"
    assert read(data) == [
        {"ClientId": "", "Yclid": "7", "Target": "t", "DateTime": "1795172580", "Price": ""},
        {"ClientId": "1", "Yclid": "", "Target": "t", "DateTime": "1795172581", "Price": "10.50"},
    ]
    assert FILE_COLUMNS.index("Currency") < FILE_COLUMNS.index("PhoneNumber")


def test_text_with_commas_quotes_and_cyrillic_survives_the_file() -> None:
    rows = [{"ClientId": "1", "DateTime": 1, "Tag": 'дорого, "перезвонит"'}]
    data = build_csv(rows)
    assert not data.startswith(b"\xef\xbb\xbf")  # no BOM: the header must read as is
    assert read(data) == [{"ClientId": "1", "DateTime": "1", "Tag": 'дорого, "перезвонит"'}]


def test_a_column_metrica_does_not_know_is_a_bug_caught_before_sending() -> None:
    with pytest.raises(ValueError, match="Email"):
        build_csv([{"ClientId": "1", "DateTime": 1, "Email": "x"}])
