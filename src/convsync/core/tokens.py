"""Tokens a connector must keep between runs — VK Ads API tokens (a client may hold only
a few), amoCRM's refresh tokens (each is good for one refresh): the protocol connectors
see (the ledger implements it: ``store/tokens.py``), a read-only wrapper for dry runs,
and an in-memory stand-in for use outside the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from convsync.core.errors import UserError


class TokenStore(Protocol):
    """Where a connector keeps its tokens: the ledger, shared by every run and replica."""

    def load(self, name: str) -> dict[str, Any] | None: ...

    def save(self, name: str, data: Mapping[str, Any]) -> None: ...


class ReadOnlyTokens:
    """A store that gives tokens but keeps none: a dry run may use a token, but must not
    rotate one it cannot store (a rotated refresh token lost is access lost)."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    def load(self, name: str) -> dict[str, Any] | None:
        return self.store.load(name)

    def save(self, name: str, data: Mapping[str, Any]) -> None:
        raise UserError(
            f"a dry run cannot keep the new token of {name}: run a real sync "
            "(`convsync sync --once`) first, which stores it, then the dry run again"
        )


class MemoryTokens:
    """A token store for a connector used outside the pipeline (which sets the ledger)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def load(self, name: str) -> dict[str, Any] | None:
        return self.data.get(name)

    def save(self, name: str, data: Mapping[str, Any]) -> None:
        self.data[name] = dict(data)
