"""Match signals sealed for the ledger: IP addresses, user agents, session attributes.

Google's Data Manager matches a conversion better with the visitor's IP address, user
agent and Google's session attributes. The first two are personal data, so they never
reach the ledger in the clear: the record step keeps a conversion's :data:`SEALED_FIELDS`
as one Fernet token (``conversions.sealed``), the deliver step opens it when it claims
the conversion, and the token is dropped once the conversion's deliveries are settled
(``Ledger.drop_settled_signals``).

The key is one per process. ``CONVSYNC_MATCH_SIGNALS_KEY`` (a Fernet key, or any
passphrase of at least 16 characters) keeps tokens readable across restarts and
replicas; without it each process makes its own, and a token sealed by an earlier
process cannot be opened: its conversion goes without the signals (one warning per
process), it never fails. A mapping process is handed its parent's key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Mapping

import structlog
from cryptography.fernet import Fernet, InvalidToken

#: the record fields that are sealed (the rest of ``Conversion.attributes`` stays plain)
SEALED_FIELDS = frozenset({"ip_address", "user_agent", "google_session_attributes"})

#: the shortest passphrase taken as a key (a Fernet key itself is 44 characters)
MIN_PASSPHRASE_LENGTH = 16

log = structlog.get_logger("convsync.sealing")

_lock = threading.Lock()
#: the key (a Fernet key: urlsafe base64 of 32 bytes) and its Fernet; None until used
_state: tuple[str, Fernet] | None = None
_warned = False


def configure(key: str | None) -> None:
    """Use ``key`` for this process from now on (``None``: a random key of its own).

    ``key`` is a Fernet key or a passphrase of at least 16 characters (turned into a
    key by SHA-256); anything shorter raises ``ValueError``.
    """
    global _state
    fernet_key = Fernet.generate_key().decode() if key is None else _fernet_key(key)
    state = (fernet_key, Fernet(fernet_key))
    with _lock:
        _state = state


def current_key() -> str:
    """This process's key, as a Fernet key (what a mapping process is configured with)."""
    return _current()[0]


def seal(values: Mapping[str, str]) -> str:
    """A token of ``values`` that only this key opens."""
    text = json.dumps(dict(values), ensure_ascii=False, separators=(",", ":"))
    return _current()[1].encrypt(text.encode()).decode()


def unseal(text: str) -> dict[str, str]:
    """The values sealed in ``text``; ``{}`` when this key cannot open it (the key
    changed, or an earlier process sealed it with a key of its own)."""
    try:
        opened = _current()[1].decrypt(text.encode())
    except InvalidToken:
        _warn_once()
        return {}
    values = json.loads(opened)
    return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}


def split(attributes: Mapping[str, str] | None) -> tuple[dict[str, str] | None, str | None]:
    """``attributes`` as the ledger keeps them: the plain ones (``None`` if none) and a
    token of the sealed ones (``None`` if none)."""
    if not attributes:
        return None, None
    if SEALED_FIELDS.isdisjoint(attributes):
        return dict(attributes), None
    plain = {k: v for k, v in attributes.items() if k not in SEALED_FIELDS}
    sealed = {k: v for k, v in attributes.items() if k in SEALED_FIELDS}
    return plain or None, seal(sealed)


def _fernet_key(key: str) -> str:
    try:
        Fernet(key)
    except ValueError:
        if len(key) < MIN_PASSPHRASE_LENGTH:
            raise ValueError(
                f"a match signals key is a Fernet key or at least {MIN_PASSPHRASE_LENGTH} "
                "characters long"
            ) from None
        return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode()
    return key


def _current() -> tuple[str, Fernet]:
    global _state
    state = _state
    if state is None:
        with _lock:  # nothing configured: a key of this process's own, made once
            if _state is None:
                made = Fernet.generate_key().decode()
                _state = (made, Fernet(made))
            state = _state
    return state


def _warn_once() -> None:
    global _warned
    with _lock:
        if _warned:
            return
        _warned = True
    log.warning(
        "sealed match signals could not be opened; conversions go without them",
        hint=(
            "set CONVSYNC_MATCH_SIGNALS_KEY so that signals sealed by one process can be "
            "opened by the next (and by other replicas)"
        ),
    )
