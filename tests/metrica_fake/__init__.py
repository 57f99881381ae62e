"""A fake Yandex.Metrica offline-conversions API for tests and benchmarks: real HTTP on
127.0.0.1, multipart CSV uploads parsed and checked, uploads followed through their
statuses under test control (see ``server``)."""

from __future__ import annotations

from .destination import destination_for
from .faults import ERRORS, Fault, error, http
from .server import COUNTER_ID, Call, FakeMetrica, Hold, fake_metrica
from .state import Upload

__all__ = [
    "COUNTER_ID",
    "ERRORS",
    "Call",
    "FakeMetrica",
    "Fault",
    "Hold",
    "Upload",
    "destination_for",
    "error",
    "fake_metrica",
    "http",
]
