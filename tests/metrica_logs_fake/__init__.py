"""A fake Yandex.Metrica Logs API on 127.0.0.1: the counter, evaluate, create, poll,
list, multi-part TSV downloads (one can break half-way), clean and cancel; requests move
``created`` → ``processed`` (or ``processing_failed``) after some polls; scripted 429
(``quota_*``) and 5xx answers; ``date2`` not before today and unknown fields refused
with 400; every call recorded."""

from .server import FakeMetricaLogs, fake_metrica_logs
from .state import COUNTER_ID, Call, Fault, LogRequest, LogsState, Visit, days_ago

__all__ = [
    "COUNTER_ID",
    "Call",
    "FakeMetricaLogs",
    "Fault",
    "LogRequest",
    "LogsState",
    "Visit",
    "days_ago",
    "fake_metrica_logs",
]
