"""One log request's life: evaluate, create (or reuse), wait until processed, hand the
request over for its parts to be read, and clean it — always.

Stored logs count against the counter's 10 GB until cleaned (ru/logs/index), so a
request this source created is never left behind on purpose: a processed one is cleaned
after its parts are read, or when reading them fails or the pull is abandoned; one that
failed (``processing_failed``) is cleaned and created once more; one not ready within
``processing_timeout`` is canceled. What a crash leaves (the process killed between
create and clean) is found at the start of the next pull by its fields: reused when it
covers the same days, cleaned or canceled otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential

from convsync.core.errors import UserError
from convsync.core.logging import get_logger
from convsync.sources.metrica_logs.client import MetricaLogsClient

log = get_logger(__name__)

SOURCE = "visits"
PENDING = frozenset({"created", "awaiting_retry"})
#: a failed request is created once more before the pull gives up
FAILED_RETRIES = 1
#: the longest wait between two polls of a request
MAX_POLL_WAIT = 60.0
Span = tuple[date, date]


class LogRequests:
    """The log requests of one pull over one client."""

    def __init__(
        self,
        client: MetricaLogsClient,
        *,
        key: str,
        fields: tuple[str, ...],
        attribution: str | None,
        poll_interval: timedelta,
        timeout: timedelta,
        sleep: Callable[[float], None],
    ) -> None:
        self.client = client
        self.key = key
        self.source_name = key.removeprefix("sources.")
        self.fields = fields
        self.attribution = attribution
        self.poll_interval = poll_interval.total_seconds()
        self.timeout = timeout
        self.sleep = sleep

    def params(self, span: Span) -> dict[str, str]:
        params = {
            "date1": span[0].isoformat(),
            "date2": span[1].isoformat(),
            "fields": ",".join(self.fields),
            "source": SOURCE,
        }
        if self.attribution:
            params["attribution"] = self.attribution
        return params

    # --- before the first request --------------------------------------------------------

    def tidy(self, planned: set[Span]) -> dict[Span, dict[str, Any]]:
        """Requests this source left behind: those covering a planned span (not failed)
        are returned for reuse; the others are cleaned or canceled."""
        reusable: dict[Span, dict[str, Any]] = {}
        for info in self.client.log_requests():
            if not self._is_ours(info):
                continue
            status = str(info.get("status"))
            span = _span(info)
            if status in PENDING | {"processed"} and span in planned and span not in reusable:
                log.info("reusing a log request", source=self.source_name,
                         request_id=info.get("request_id"), status=status)  # fmt: skip
                reusable[span] = info
            elif status in PENDING | {"processed", "processing_failed"}:
                log.info("removing a log request left behind", source=self.source_name,
                         request_id=info.get("request_id"), status=status)  # fmt: skip
                self._give_up(info)
        return reusable

    def fit(self, span: Span) -> Span:
        """``span``, shortened to what Metrica can prepare now (``evaluate``)."""
        answer = self.client.evaluate(self.params(span))
        if answer.get("possible"):
            return span
        days = (span[1] - span[0]).days + 1
        most = min(int(answer.get("max_possible_day_quantity") or 0), days - 1)
        if most < 1:
            raise UserError(
                f"{self.key}: Metrica cannot prepare logs of counter {self.client.counter_id} "
                f"for {span[0]} now (evaluate: not possible, 0 days): the counter's 10 GB of "
                "stored logs may be used up by other tools' requests (clean them) — the next "
                "run tries again from the same cursor"
            )
        return span[0], span[0] + timedelta(days=most - 1)

    # --- one request ----------------------------------------------------------------------

    @contextmanager
    def processed(
        self, span: Span, reuse: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """A processed request of ``span`` (``parts`` listed), cleaned on leaving."""
        info = self._ready(span, reuse)
        try:
            yield info
        finally:
            self._clean(info)

    def _ready(self, span: Span, reuse: Mapping[str, Any] | None) -> dict[str, Any]:
        for attempt in range(FAILED_RETRIES + 1):
            info = dict(reuse) if reuse and attempt == 0 else self.client.create(self.params(span))
            ready = False
            try:
                info = self._wait(info)
                ready = str(info.get("status")) == "processed"
            finally:
                if not ready:  # failed, timed out, or the pull was abandoned while waiting
                    self._give_up(info)
            if ready:
                return info
            status = str(info.get("status"))
            if status == "processing_failed" and attempt < FAILED_RETRIES:
                log.warning("log request failed, creating it again", source=self.source_name,
                            request_id=info.get("request_id"))  # fmt: skip
                continue
            raise UserError(self._not_ready(info, span))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, info: dict[str, Any]) -> dict[str, Any]:
        """Polls until the request leaves ``created``/``awaiting_retry`` or the waits add
        up to ``processing_timeout`` (the last answer is returned either way)."""
        request_id = int(info["request_id"])
        first = [info]

        def poll() -> dict[str, Any]:
            return first.pop() if first else self.client.info(request_id)

        def timed_out(state: RetryCallState) -> bool:
            return state.idle_for >= self.timeout.total_seconds()

        def last_answer(state: RetryCallState) -> dict[str, Any]:
            assert state.outcome is not None
            answer: dict[str, Any] = state.outcome.result()
            return answer

        polling = Retrying(
            retry=retry_if_result(lambda answer: str(answer.get("status")) in PENDING),
            wait=wait_exponential(
                multiplier=self.poll_interval, max=max(self.poll_interval, MAX_POLL_WAIT)
            ),
            stop=timed_out,
            retry_error_callback=last_answer,
            sleep=self.sleep,
        )
        answer: dict[str, Any] = polling(poll)
        return answer

    def _not_ready(self, info: Mapping[str, Any], span: Span) -> str:
        status = str(info.get("status"))
        what = f"the log request {info.get('request_id')} ({span[0]} … {span[1]})"
        if status in PENDING:
            return (
                f"{self.key}: {what} was not ready after {self.timeout} (status {status}); "
                "it was canceled and the next run tries again from the same cursor (raise "
                "processing_timeout if Metrica's queue is often this slow)"
            )
        if status == "processing_failed":
            return (
                f"{self.key}: Metrica failed to prepare {what} twice (processing_failed); "
                "the next run tries again from the same cursor"
            )
        return (
            f"{self.key}: {what} became {status} before it was read (another tool cleaned "
            "or canceled it?); the next run tries again from the same cursor"
        )

    # --- letting go ------------------------------------------------------------------------

    def _clean(self, info: Mapping[str, Any]) -> None:
        try:
            self.client.clean(int(info["request_id"]))
        except UserError as exc:
            # the logs are read; a request still stored is removed by the next pull
            log.warning("log request not cleaned", source=self.source_name,
                        request_id=info.get("request_id"), reason=str(exc))  # fmt: skip

    def _give_up(self, info: Mapping[str, Any]) -> None:
        """Cancel a request still waiting, clean one that is done; if Metrica refuses the
        first (its status moved meanwhile), try the other."""
        request_id = int(info["request_id"])
        status = str(info.get("status"))
        if status not in PENDING | {"processed", "processing_failed"}:
            return
        calls = [self.client.cancel, self.client.clean]
        if status not in PENDING:
            calls.reverse()
        for call in calls:
            try:
                call(request_id)
            except UserError as exc:
                reason = str(exc)
            else:
                return
        log.warning("log request neither canceled nor cleaned", source=self.source_name,
                    request_id=request_id, reason=reason)  # fmt: skip

    def _is_ours(self, info: Mapping[str, Any]) -> bool:
        source = info.get("source")
        sources = source if isinstance(source, list) else [source]
        if sources != [SOURCE] or set(info.get("fields") or []) != set(self.fields):
            return False
        model = str(info.get("attribution") or "LASTSIGN").upper()
        return model == (self.attribution or "LASTSIGN")


def _span(info: Mapping[str, Any]) -> Span | None:
    try:
        return date.fromisoformat(str(info.get("date1"))), date.fromisoformat(
            str(info.get("date2"))
        )
    except ValueError:
        return None
