"""A fake amoCRM / Kommo account for tests and benchmarks: API v4 events, leads,
contacts, custom fields, pipelines and the OAuth token endpoint on 127.0.0.1, over real
HTTP (see ``server``)."""

from __future__ import annotations

from .server import FakeAmo, fake_amo

__all__ = ["FakeAmo", "fake_amo"]
