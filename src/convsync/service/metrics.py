"""convsync's Prometheus metrics, served at ``GET /metrics`` of ``convsync run``.

Two kinds, in a registry of convsync's own (never ``prometheus_client.REGISTRY``):

* what this process did, counted as it happens: runs by status and their durations,
  deliveries settled and records pulled or rejected (``record_run`` after each run),
  webhook requests (``count_webhooks``) and whether the scheduler runs;
* what the ledger holds, read at scrape time (``LedgerGauges``): deliveries by state,
  the last delivery and the oldest due delivery per destination, upload match ratios.
  Every replica of a shared ledger reports the same numbers for these.

Label values are names from the config (goals, destinations, sources), state and
status words, and reason codes: never a record's data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy.exc import OperationalError

from convsync.core.model import DEGRADED, FAILED, INTERRUPTED, OK, DeliveryState
from convsync.store.funnel import NO_CODE
from convsync.store.gauges import DeliveryTally
from convsync.store.ledger import Ledger
from convsync.sync.summary import RunSummary

log = structlog.get_logger("convsync.metrics")

# a ``_created`` series per counter child would double the series for no dashboard's use
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated

#: the status words a finished run can have
RUN_STATUSES = (OK, DEGRADED, FAILED, INTERRUPTED)
#: runs take from about a second (nothing new) to an hour (a first import)
RUN_DURATION_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
#: the outcomes of a sent delivery counted per run (``DestinationStats.states``)
SETTLED_OUTCOMES = (
    DeliveryState.DELIVERED,
    DeliveryState.REJECTED,
    DeliveryState.DEFERRED,
    DeliveryState.UNCERTAIN,
)
#: the ``reason`` of a delivered row
NO_REASON = "none"
#: deliveries whose state changed longer ago are left out of ``convsync_deliveries``
STATE_WINDOW = timedelta(days=30)
#: the verdicts of uploads a match ratio is taken of
MATCH_WINDOW = timedelta(hours=24)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: states of a delivery that reached its platform
ARRIVED = frozenset({DeliveryState.DELIVERED, DeliveryState.MATCHED, DeliveryState.UNMATCHED})

RUNS = Counter(
    "convsync_runs", "Sync runs finished by this process, by status.", ["status"], registry=None
)
RUN_DURATION = Histogram(
    "convsync_run_duration_seconds",
    "How long the sync runs of this process took.",
    buckets=RUN_DURATION_BUCKETS,
    registry=None,
)
LAST_RUN_STATUS = Gauge(
    "convsync_last_run_status",
    "1 for the status of this process's last run, 0 for the other status words.",
    ["status"],
    registry=None,
)
SETTLED = Counter(
    "convsync_deliveries_settled",
    "Deliveries sent by this process's runs, by outcome; reason is the rejection code "
    f"({NO_REASON} for delivered, {NO_CODE} where the run counts no code: deferred, "
    "uncertain).",
    ["destination", "outcome", "reason"],
    registry=None,
)
RECORDS_PULLED = Counter(
    "convsync_records_pulled",
    "Source records read by this process's runs.",
    ["source"],
    registry=None,
)
RECORDS_REJECTED = Counter(
    "convsync_records_rejected",
    "Source records this process's runs could not turn into conversions, by reason code.",
    ["source", "reason"],
    registry=None,
)
for _status in RUN_STATUSES:
    RUNS.labels(status=_status)  # every status shows from the start, at 0

_RUN_INSTRUMENTS = (RUNS, RUN_DURATION, LAST_RUN_STATUS, SETTLED, RECORDS_PULLED, RECORDS_REJECTED)


def record_run(summary: RunSummary | None, duration_s: float) -> None:
    """Count a finished run; ``None`` is a run that raised before it could report (the
    pipeline marks it failed in the ledger)."""
    status = summary.status if summary is not None else FAILED
    RUNS.labels(status=status).inc()
    RUN_DURATION.observe(duration_s)
    for word in RUN_STATUSES:
        LAST_RUN_STATUS.labels(status=word).set(1 if word == status else 0)
    if summary is None:
        return
    for source, counts in summary.sources.items():
        RECORDS_PULLED.labels(source=source).inc(counts.get("pulled", 0))
    for (source, code), tally in summary.rejected_records.items():
        RECORDS_REJECTED.labels(source=source, reason=code).inc(tally.count)
    for destination, stats in summary.destinations.items():
        for outcome, reason, count in _settled(stats):
            SETTLED.labels(destination=destination, outcome=outcome, reason=reason).inc(count)


def _settled(stats: Mapping[str, object]) -> Iterator[tuple[str, str, int]]:
    """(outcome, reason, count) of one destination's run statistics
    (``DestinationStats.as_dict``)."""
    by_code = stats.get("rejected_by_code")
    rejected_by_code: Mapping[str, int] = by_code if isinstance(by_code, Mapping) else {}
    for outcome in SETTLED_OUTCOMES:
        count = stats.get(outcome.value)
        if not isinstance(count, int) or count <= 0:
            continue
        if outcome is DeliveryState.DELIVERED:
            yield outcome.value, NO_REASON, count
        elif outcome is DeliveryState.REJECTED:
            yield from ((outcome.value, code, n) for code, n in rejected_by_code.items())
            if without_code := count - sum(rejected_by_code.values()):
                yield outcome.value, NO_CODE, without_code
        else:
            yield outcome.value, NO_CODE, count


class LedgerGauges(Collector):
    """The ledger's numbers, read when Prometheus scrapes: one grouped query over the
    deliveries changed in the last ``STATE_WINDOW``, and an index seek per destination
    for its oldest due delivery."""

    def __init__(
        self, ledger: Ledger, destinations: Collection[str], clock: Callable[[], datetime]
    ) -> None:
        self.ledger = ledger
        self.destinations = sorted(destinations)
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        try:
            tallies = self.ledger.delivery_tallies(
                since=now - STATE_WINDOW, recent=now - MATCH_WINDOW
            )
            oldest = {d: self.ledger.oldest_due(destination=d, now=now) for d in self.destinations}
        except OperationalError as exc:
            # the scrape still shows this process's counters; /healthz names the problem
            log.warning("metrics: the ledger could not be read", reason=str(exc.orig or exc))
            return iter(())
        families = self._families()
        by_state, last_delivery, match_ratio, oldest_age = families
        for t in tallies:
            by_state.add_metric([t.goal, t.destination, t.state], t.count)
        for destination, moment in _last_arrivals(tallies).items():
            last_delivery.add_metric([destination], moment.timestamp())
        for destination, ratio in _match_ratios(tallies).items():
            match_ratio.add_metric([destination], ratio)
        for destination, since in oldest.items():
            age = (now - since).total_seconds() if since is not None else 0.0
            oldest_age.add_metric([destination], max(age, 0.0))
        return iter(families)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        days = STATE_WINDOW.days
        return (
            GaugeMetricFamily(
                "convsync_deliveries",
                f"Deliveries whose state changed in the last {days} days, by goal, "
                "destination and state (older ones are left out to keep the scrape cheap; "
                "convsync_oldest_due_age_seconds sees an older backlog).",
                labels=["goal", "destination", "state"],
            ),
            GaugeMetricFamily(
                "convsync_last_delivery_timestamp_seconds",
                "When a delivery of the destination last reached its platform "
                f"(delivered, matched or unmatched), within the last {days} days.",
                labels=["destination"],
            ),
            GaugeMetricFamily(
                "convsync_upload_match_ratio",
                "Matched / (matched + unmatched) of the deliveries whose upload got its "
                f"verdict in the last {int(MATCH_WINDOW.total_seconds() // 3600)} h; "
                "absent when none did.",
                labels=["destination"],
            ),
            GaugeMetricFamily(
                "convsync_oldest_due_age_seconds",
                "How long the oldest due delivery (pending, or deferred and due) of the "
                "destination has waited since it was recorded; 0 when none is due.",
                labels=["destination"],
            ),
        )


def _last_arrivals(tallies: Collection[DeliveryTally]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for t in tallies:
        if t.state in ARRIVED and t.last_changed_at > latest.get(t.destination, _EPOCH):
            latest[t.destination] = t.last_changed_at
    return latest


def _match_ratios(tallies: Collection[DeliveryTally]) -> dict[str, float]:
    verdicts: dict[str, list[int]] = {}
    for t in tallies:
        if t.state in (DeliveryState.MATCHED, DeliveryState.UNMATCHED) and t.recent:
            counts = verdicts.setdefault(t.destination, [0, 0])
            counts[0 if t.state == DeliveryState.MATCHED else 1] += t.recent
    return {d: matched / (matched + unmatched) for d, (matched, unmatched) in verdicts.items()}


class WebhookTotals(Collector):
    """The webhook recorder's totals (``WebhookRecorder.totals``) as counters."""

    def __init__(self, totals: Callable[[], Mapping[str, int]]) -> None:
        self.totals = totals

    def describe(self) -> Iterator[Metric]:
        return iter(self._families({"requests": 0, "transactions": 0}))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(self.totals()))

    @staticmethod
    def _families(totals: Mapping[str, int]) -> tuple[CounterMetricFamily, ...]:
        return (
            CounterMetricFamily(
                "convsync_webhook_requests",
                "Webhook requests recorded by this process.",
                value=totals["requests"],
            ),
            CounterMetricFamily(
                "convsync_webhook_transactions",
                "Ledger transactions that held this process's webhook requests.",
                value=totals["transactions"],
            ),
        )


def build_registry(
    ledger: Ledger,
    destinations: Collection[str],
    *,
    running: Callable[[], bool],
    clock: Callable[[], datetime],
) -> CollectorRegistry:
    """The registry ``/metrics`` renders: this process's run counters, ``convsync_up``
    (``running()``) and the ledger's gauges for ``destinations``."""
    registry = CollectorRegistry()
    for instrument in _RUN_INSTRUMENTS:
        registry.register(instrument)
    up = Gauge("convsync_up", "1 while the scheduler runs.", registry=registry)
    up.set_function(lambda: 1.0 if running() else 0.0)
    registry.register(LedgerGauges(ledger, destinations, clock))
    return registry


def count_webhooks(registry: CollectorRegistry, totals: Callable[[], Mapping[str, int]]) -> None:
    """Add the webhook endpoint's totals to ``registry``."""
    registry.register(WebhookTotals(totals))


def render(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """The body and content type of a scrape: the Prometheus text format, or OpenMetrics
    when the scraper's ``Accept`` header asks for it."""
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
