"""The alert channels' fakes, started for a test and stopped after it, and a trust store
that holds the fakes' test certificate (``SSL_CERT_FILE``: what ``ssl`` trusts)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts_fake import FakeSmtp, FakeTelegram, FakeWebhook
from tests.alerts_fake.smtp import PASSWORD, USER

# the ledger on SQLite and on PostgreSQL, for the alert engine's tests
from tests.integration.conftest import ledger, ledger_url, pg_url, sqlite_url  # noqa: F401


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def webhook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as fake:
        yield fake


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSmtp]:
    """STARTTLS and AUTH for USER, its certificate trusted by this process."""
    with FakeSmtp(users={USER: PASSWORD}) as fake:
        monkeypatch.setenv("SSL_CERT_FILE", str(fake.roots_file))
        yield fake
