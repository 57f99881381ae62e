"""Sealed match signals: the process key, seal/unseal, and that IP addresses and user
agents never reach the ledger's file in the clear."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from cryptography.fernet import Fernet
from pydantic import ValidationError

from convsync.config.settings import Settings
from convsync.core import sealing
from convsync.core.model import Conversion, Identifiers, PlannedDelivery
from convsync.store import Ledger

IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) SealedTest/1.0"
SESSION = "gsa.v1.c2Vzc2lvbi1hdHRyaWJ1dGVz"
SIGNALS = {"ip_address": IP, "user_agent": AGENT, "google_session_attributes": SESSION}
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
WARNING = "sealed match signals could not be opened; conversions go without them"


@pytest.fixture(autouse=True)
def _own_key() -> Iterator[None]:
    """Each test starts without a key and warning; the process's own are put back."""
    saved = (sealing._state, sealing._warned)
    sealing._state, sealing._warned = None, False
    yield
    sealing._state, sealing._warned = saved


def test_a_sealed_token_opens_with_the_key_it_was_sealed_with() -> None:
    token = sealing.seal(SIGNALS)
    assert IP not in token and AGENT not in token and SESSION not in token
    assert sealing.unseal(token) == SIGNALS
    assert sealing.seal(SIGNALS) != token  # a fresh IV each time: equal values do not show


def test_without_a_key_the_process_makes_one_once() -> None:
    key = sealing.current_key()
    Fernet(key)  # a real Fernet key
    assert sealing.current_key() == key
    token = sealing.seal({"ip_address": IP})
    sealing.configure(key)  # what a mapping process does with its parent's key
    assert sealing.unseal(token) == {"ip_address": IP}


def test_a_changed_key_gives_nothing_and_warns_once() -> None:
    sealing.configure("the first passphrase, long enough")
    token = sealing.seal(SIGNALS)
    sealing.configure(None)  # e.g. a later process without CONVSYNC_MATCH_SIGNALS_KEY
    with structlog.testing.capture_logs() as logs:
        assert sealing.unseal(token) == {}
        assert sealing.unseal(token) == {}
        assert sealing.unseal("not a token at all") == {}
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [(WARNING, "warning")]
    assert "CONVSYNC_MATCH_SIGNALS_KEY" in logs[0]["hint"]
    assert IP not in repr(logs) and AGENT not in repr(logs)


def test_a_passphrase_is_a_key_and_a_fernet_key_is_taken_as_it_is() -> None:
    sealing.configure("correct horse battery staple")
    derived = sealing.current_key()
    token = sealing.seal(SIGNALS)
    sealing.configure(None)
    sealing.configure("correct horse battery staple")  # another process, same setting
    assert sealing.current_key() == derived
    assert sealing.unseal(token) == SIGNALS
    fernet_key = Fernet.generate_key().decode()
    sealing.configure(fernet_key)
    assert sealing.current_key() == fernet_key
    assert sealing.unseal(Fernet(fernet_key).encrypt(b'{"user_agent":"x"}').decode()) == {
        "user_agent": "x"
    }


def test_a_short_passphrase_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        sealing.configure("too short")


def test_split_keeps_plain_attributes_and_seals_the_rest() -> None:
    assert sealing.split(None) == (None, None)
    assert sealing.split({}) == (None, None)
    assert sealing.split({"plan": "gold"}) == ({"plan": "gold"}, None)
    plain, token = sealing.split({"plan": "gold", **SIGNALS})
    assert plain == {"plan": "gold"}
    assert token is not None and sealing.unseal(token) == SIGNALS
    plain, token = sealing.split({"ip_address": IP})
    assert plain is None
    assert token is not None and sealing.unseal(token) == {"ip_address": IP}


def test_the_setting_is_at_least_16_characters_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONVSYNC_MATCH_SIGNALS_KEY", "short-secret")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert "match_signals_key" in str(raised.value)
    assert "short-secret" not in str(raised.value)
    monkeypatch.delenv("CONVSYNC_MATCH_SIGNALS_KEY")
    assert Settings().match_signals_key is None
    # a Docker secret file (the trailing newline of `echo` is not part of the key)
    (tmp_path / "convsync_match_signals_key").write_text("a passphrase from a file\n")
    settings = Settings(_secrets_dir=tmp_path)
    assert settings.match_signals_key is not None
    assert settings.match_signals_key.get_secret_value() == "a passphrase from a file"
    assert "a passphrase" not in repr(settings)


def test_signals_never_reach_the_ledger_file_in_the_clear(tmp_path: Path) -> None:
    conversion = Conversion(
        key="k" * 64,
        source="shop",
        record_id="1",
        goal="purchase",
        order_id="A-1",
        occurred_at=NOW - timedelta(hours=1),
        value=Decimal("10"),
        currency="RUB",
        ids=Identifiers(gclid="gclid-1"),
        attributes={"plan": "gold-plan-marker", **SIGNALS},
    )
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        ledger.record_chunk(
            run_id="r",
            source="shop",
            conversions=[conversion],
            deliveries=[PlannedDelivery(conversion.key, "purchase", "google")],
            rejections=[],
            cursor=None,
            files_done=[],
            now=NOW,
        )
        written = b"".join(path.read_bytes() for path in sorted(tmp_path.iterdir()))
        assert any(path.name.endswith("-wal") for path in tmp_path.iterdir())
        assert b"gold-plan-marker" in written  # the plain attributes are there: grep works
        for secret in (IP, AGENT, SESSION):
            assert secret.encode() not in written
        [claimed] = ledger.claim(
            destination="google",
            limit=10,
            lease=timedelta(minutes=5),
            batch_id="b1",
            run_id="r",
            now=NOW,
        )
        assert claimed.conversion.attributes == {"plan": "gold-plan-marker", **SIGNALS}
    finally:
        ledger.close()
    written = b"".join(path.read_bytes() for path in sorted(tmp_path.iterdir()))
    assert b"gold-plan-marker" in written  # checkpointed into the main file on close
    assert IP.encode() not in written and AGENT.encode() not in written
