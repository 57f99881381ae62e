"""google_ads: credentials, access, secrets and logging of the destination against the
fake Google Ads API and OAuth endpoint, through the real client."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from convsync.core.errors import DestinationUnavailable, PermanentError, TransientError
from convsync.core.logging import configure_logging
from convsync.core.model import (
    OutcomeKind,
)
from convsync.destinations.google_ads import GoogleAdsDestination
from tests.google_ads_fake import (
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
)
from tests.integration.google_ads.rows import (
    NOW,
    conversion,
    kinds,
    rows_for,
)

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
