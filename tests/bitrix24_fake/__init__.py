"""A fake Bitrix24 portal for tests and benchmarks: the REST methods the ``bitrix24``
source calls, through an inbound webhook URL on 127.0.0.1, over real HTTP."""

from __future__ import annotations

from .portal import FakePortal, Fault, Hit, php_parse
from .server import FakeBitrix24, fake_bitrix24

__all__ = ["FakeBitrix24", "FakePortal", "Fault", "Hit", "fake_bitrix24", "php_parse"]
