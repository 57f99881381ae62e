"""The funnel of ``convsync report`` and the status page: per goal × destination, what
became of the conversions recorded in a window.

Stages, each a subset of the one before (per goal × destination):

* ``pulled`` — records the goal's source pulled in the runs started in the window (the
  same number on every row of the source's goals);
* ``conversions`` — the goal's conversions recorded in the window (an adjustment row:
  its adjustments), the same for each of the goal's destinations;
* ``planned`` — their deliveries to this destination that were not skipped
  (``conversions`` = ``planned`` + ``skipped``, unless the destination was added to the
  goal after some of them were recorded);
* ``sent`` — deliveries that went out and were not refused: ``accepted`` + ``uncertain``
  (sent without a receipt). ``planned`` = ``sent`` + ``waiting`` + ``rejected``;
  rejected rows are not counted as sent, whether convsync's pre-flight or the platform
  refused them (the ledger does not tell the two apart);
* ``accepted`` — the platform took them: delivered, matched or unmatched;
* ``matched`` — the platform matched them to a click or a visitor (Metrica's upload
  verdicts, the Data Manager API's request status).

Beside them: ``waiting`` (pending, sending or deferred: not settled yet), reasons by
code for skipped, rejected, deferred and uncertain rows, and the match rate
matched / (matched + unmatched), None while the platform has judged none of them.

The Google Ads API judges no row after the upload; what it reports instead are its
upload summaries per conversion action and upload day, read once a day
(``platform_reports.py``). A ``google_ads_api`` row (conversions, not adjustments) of a
destination with summaries carries their counts over the window's upload days —
``platform_successful``, ``platform_failed``, ``platform_pending`` — and the alerts of
the latest of those days (``platform_alerts``: error code → share, on
``platform_alerts_on``). These count the action's uploads on those days, not a subset of
the stages above, and ``matched`` stays the ledger's; where the ledger has no verdict of
its own, the match rate is successful / (successful + failed) of the summaries
(``match_rate_source``: ``verdicts`` or ``upload_summaries``).

The window selects deliveries by when they were planned (``deliveries.created_at``): a
conversion's deliveries are planned in the transaction that records it, at its
``recorded_at``; an adjustment's, when it is recorded, while its own ``recorded_at`` is
set back by a margin (``adjusting.adjustment_time``). Adjustments get rows of their own,
by their ``recorded_at``.

Speed: the status page asks for three windows on every load, on ledgers of millions of
deliveries. Grouping the window's deliveries by goal, destination, state and code makes
both databases sort or hash every one of them (SQLite: about 1 µs each, over a second
for 30 days of a million conversions). Instead the few distinct (goal, destination,
state, code) values are found by index seeks on ``ix_deliveries_funnel`` (goal,
destination, state, code, created_at), and each one's count in the window is an index
range count: the time grows with the window's deliveries at the cost of counting index
entries, and with the combinations, never with the ledger's history. See bench/report.py.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.model import DeliveryState, UploadRecord
from convsync.store.platform_reports import add_to_funnel
from convsync.store.rows import distinct_values
from convsync.store.runs import pulled_since
from convsync.store.schema import conversions, deliveries, uploads

_S = DeliveryState

#: what a code-less skip, rejection, deferral or uncertain row is counted under
NO_CODE = "unknown"
#: the kind of a conversions row that is not an adjustment
CONVERSION = "conversion"


@dataclass(slots=True)
class FunnelRow:
    """One goal × destination (× kind: a conversion, or an adjustment of one) over a
    window; see the module's docstring for what each stage counts."""

    goal: str
    destination: str
    #: "conversion", or the goal's adjustments: "retraction" or "restatement"
    kind: str = CONVERSION
    source: str | None = None
    pulled: int | None = None
    conversions: int = 0
    accepted: int = 0
    matched: int = 0
    unmatched: int = 0
    pending: int = 0
    sending: int = 0
    skipped_by_code: dict[str, int] = field(default_factory=dict)
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    deferred_by_code: dict[str, int] = field(default_factory=dict)
    uncertain_by_code: dict[str, int] = field(default_factory=dict)
    #: the destination's platform reports matches (the ledger follows its uploads up
    #: for a verdict: Yandex.Metrica, the Data Manager API; the Google Ads API once its
    #: upload summaries are in the ledger); VK Ads does not
    reports_matching: bool = False
    #: the platform's upload summaries over the window's upload days (None: it has none)
    platform_successful: int | None = None
    platform_failed: int | None = None
    platform_pending: int | None = None
    #: the summaries' alerts of ``platform_alerts_on`` (ISO date): error code → share 0…1
    platform_alerts: dict[str, float] = field(default_factory=dict)
    platform_alerts_on: str | None = None

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_code.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_code.values())

    @property
    def deferred(self) -> int:
        return sum(self.deferred_by_code.values())

    @property
    def uncertain(self) -> int:
        return sum(self.uncertain_by_code.values())

    @property
    def sent(self) -> int:
        return self.accepted + self.uncertain

    @property
    def waiting(self) -> int:
        return self.pending + self.sending + self.deferred

    @property
    def planned(self) -> int:
        return self.sent + self.waiting + self.rejected

    @property
    def match_rate(self) -> float | None:
        """matched / (matched + unmatched); without verdicts, successful / (successful +
        failed) of the platform's upload summaries; None when neither judged any."""
        judged = self.matched + self.unmatched
        if judged:
            return self.matched / judged
        successful, failed = self.platform_successful or 0, self.platform_failed or 0
        return successful / (successful + failed) if successful + failed else None

    @property
    def match_rate_source(self) -> str | None:
        """Where the match rate comes from: ``verdicts`` (the ledger's), ``upload_summaries``."""
        if self.matched + self.unmatched:
            return "verdicts"
        return "upload_summaries" if self.match_rate is not None else None

    def add(self, state: DeliveryState, code: str | None, n: int) -> None:
        """Add ``n`` deliveries in ``state`` with ``code`` (negative: take them away)."""
        by_code = {
            _S.SKIPPED: self.skipped_by_code,
            _S.REJECTED: self.rejected_by_code,
            _S.DEFERRED: self.deferred_by_code,
            _S.UNCERTAIN: self.uncertain_by_code,
        }.get(state)
        if by_code is not None:
            key = code or NO_CODE
            by_code[key] = by_code.get(key, 0) + n
            if not by_code[key]:
                del by_code[key]
        elif state is _S.PENDING:
            self.pending += n
        elif state is _S.SENDING:
            self.sending += n
        else:  # delivered, matched, unmatched: the platform took them
            self.accepted += n
            if state is _S.MATCHED:
                self.matched += n
            elif state is _S.UNMATCHED:
                self.unmatched += n


class Funnel(list[FunnelRow]):
    """The rows of a window — by goal, destination, then conversions before their
    adjustments — with the window and the records pulled per source. It is a list of
    its rows (and compares as one), so a caller that wants only the rows reads it as
    such."""

    __slots__ = ("since", "sources", "until")

    def __init__(
        self,
        rows: Sequence[FunnelRow],
        *,
        since: datetime,
        until: datetime | None,
        sources: Mapping[str, int],
    ) -> None:
        super().__init__(rows)
        self.since = since
        #: None: up to now
        self.until = until
        #: records pulled per source in the runs started in the window
        self.sources = dict(sources)


def funnel(connection: Connection, since: datetime, until: datetime | None = None) -> Funnel:
    """The funnel of the deliveries planned at or after ``since`` and before ``until``."""
    rows: dict[tuple[str, str, str], FunnelRow] = {}

    def row(goal: str, destination: str, kind: str) -> FunnelRow:
        found = rows.get((goal, destination, kind))
        if found is None:
            found = rows[(goal, destination, kind)] = FunnelRow(goal, destination, kind)
        return found

    planned = _window(deliveries.c.created_at, since, until)
    for (goal, destination, state, code), n in _delivery_counts(connection, planned):
        row(goal, destination, CONVERSION).add(DeliveryState(state), code, n)
    recorded = _window(conversions.c.recorded_at, since, until)
    for (goal, destination, kind, state, code), own, counted in _adjustment_counts(
        connection, since, until
    ):
        # counted above among the conversions when planned in the window; a row of
        # their own when recorded in it
        row(goal, destination, CONVERSION).add(DeliveryState(state), code, -counted)
        row(goal, destination, kind).add(DeliveryState(state), code, own)
    kept = [r for r in rows.values() if r.planned or r.skipped]
    kept.sort(key=lambda r: (r.goal, r.destination, r.kind != CONVERSION, r.kind))
    pulled = pulled_since(connection, since, until)
    recorded_per_kind = _conversion_counts(connection, {r.goal for r in kept}, recorded)
    sources = {goal: _source_of(connection, goal, until) for goal in {r.goal for r in kept}}
    matching = {d: _reports_matching(connection, d) for d in {r.destination for r in kept}}
    for r in kept:
        r.conversions = recorded_per_kind.get((r.goal, r.kind), 0)
        r.source = sources[r.goal]
        r.pulled = pulled.get(r.source, 0) if r.source is not None else None
        r.reports_matching = matching[r.destination]
    add_to_funnel(connection, [r for r in kept if r.kind == CONVERSION], since, until)
    return Funnel(kept, since=since, until=until, sources=pulled)


def _window(
    column: sa.ColumnElement[datetime], since: datetime, until: datetime | None
) -> list[sa.ColumnElement[bool]]:
    return [column >= since] if until is None else [column >= since, column < until]


def count_deliveries(connection: Connection, where: Sequence[sa.ColumnElement[bool]]) -> int:
    query = sa.select(sa.func.count()).select_from(deliveries).where(*where)
    return int(connection.execute(query).scalar_one())


DeliveryGroup = tuple[str, str, str, str | None]


def delivery_groups(
    connection: Connection, states: Collection[str] | None = None
) -> Iterator[tuple[DeliveryGroup, tuple[sa.ColumnElement[bool], ...]]]:
    """Every (goal, destination, state, code) among the ledger's deliveries (of
    ``states`` only, when given), found by index seeks, with the conditions that pick
    its rows: with a window on ``created_at`` added, one range of ``ix_deliveries_funnel``."""
    d = deliveries.c
    for goal in distinct_values(connection, d.goal, ()):
        for destination in distinct_values(connection, d.destination, (d.goal == goal,)):
            pair = (d.goal == goal, d.destination == destination)
            for state in distinct_values(connection, d.state, pair):
                if states is not None and state not in states:
                    continue
                same = (*pair, d.state == state)
                codes: list[str | None] = [None, *distinct_values(connection, d.code, same)]
                for code in codes:
                    by_code = d.code.is_(None) if code is None else d.code == code
                    yield (goal, destination, state, code), (*same, by_code)


def _delivery_counts(
    connection: Connection, window: Sequence[sa.ColumnElement[bool]]
) -> Iterator[tuple[DeliveryGroup, int]]:
    """Deliveries of ``window`` per (goal, destination, state, code), those with none
    left out; each count one range of ``ix_deliveries_funnel``."""
    for group, where in delivery_groups(connection):
        n = count_deliveries(connection, (*where, *window))
        if n:
            yield group, n


def _adjustment_counts(
    connection: Connection, since: datetime, until: datetime | None
) -> Iterator[tuple[tuple[str, str, str, str, str | None], int, int]]:
    """Deliveries of adjustments per (goal, destination, kind, state, code): how many
    belong to adjustments recorded in the window, and how many were planned in it."""
    # here, not at the top: the record step's modules load only when a funnel is asked
    # for, not with every CLI command that prints one
    from convsync.store.adjusting import adjustment_time

    c, d = conversions.c, deliveries.c
    own = sa.and_(*_window(c.recorded_at, since, until))
    planned = sa.and_(*_window(d.created_at, since, until))
    # an adjustment planned in the window was recorded (set back) at or after this
    earliest = adjustment_time(since)
    query = (
        sa.select(
            c.adjustment,
            d.goal,
            d.destination,
            d.state,
            d.code,
            sa.func.count(sa.case((own, 1))),
            sa.func.count(sa.case((planned, 1))),
        )
        .join_from(conversions, deliveries, d.conversion_id == c.id)
        .where(c.adjusts_id.is_not(None), *_window(c.recorded_at, earliest, until))
        # the conversion's column first: grouped in ix_deliveries_funnel's order, SQLite
        # would read every delivery in that order (no sort) instead of the window's
        # adjustments on ix_conversions_adjustments
        .group_by(c.adjustment, d.goal, d.destination, d.state, d.code)
    )
    for kind, goal, destination, state, code, n_own, n_planned in connection.execute(query):
        yield (goal, destination, kind, state, code), int(n_own), int(n_planned)


def _conversion_counts(
    connection: Connection, goals: set[str], window: Sequence[sa.ColumnElement[bool]]
) -> dict[tuple[str, str], int]:
    """Conversions and adjustments recorded in ``window`` per (goal, kind)."""
    c = conversions.c
    out: dict[tuple[str, str], int] = {}
    adjustments = (
        sa.select(c.goal, c.adjustment, sa.func.count())
        .where(c.adjusts_id.is_not(None), *window)
        .group_by(c.goal, c.adjustment)
    )
    for goal, kind, n in connection.execute(adjustments):
        out[(goal, kind)] = int(n)
    for goal in goals:
        # one range of ix_conversions_goal_recorded_at, adjustments included
        query = sa.select(sa.func.count()).select_from(conversions).where(c.goal == goal, *window)
        every = int(connection.execute(query).scalar_one())
        made = sum(n for (adjusted, _), n in out.items() if adjusted == goal)
        out[(goal, CONVERSION)] = every - made
    return out


def _source_of(connection: Connection, goal: str, until: datetime | None) -> str | None:
    """The source of the goal's latest conversion before ``until``."""
    c = conversions.c
    query = sa.select(c.source).where(c.goal == goal)
    if until is not None:
        query = query.where(c.recorded_at < until)
    return connection.execute(query.order_by(c.recorded_at.desc()).limit(1)).scalar()


def _reports_matching(connection: Connection, destination: str) -> bool:
    """Whether the ledger follows uploads of ``destination`` up for the platform's verdict."""
    query = sa.select(uploads.c.id).where(uploads.c.destination == destination).limit(1)
    return connection.execute(query).first() is not None


# --- what `convsync report --format json|csv` prints --------------------------------------

#: the scalar columns of a row, in the order of the JSON object and the CSV
SCALARS = (
    "goal", "destination", "kind", "source", "pulled", "conversions", "skipped", "planned",
    "sent", "accepted", "matched", "unmatched", "waiting", "rejected", "deferred",
    "uncertain", "match_rate", "reports_matching",
)  # fmt: skip
BY_CODE = ("skipped_by_code", "rejected_by_code", "deferred_by_code", "uncertain_by_code")
#: what the platform's upload summaries reported (Google Ads API), after the rest
PLATFORM = (
    "platform_successful", "platform_failed", "platform_pending", "match_rate_source",
    "platform_alerts_on", "platform_alerts",
)  # fmt: skip
CSV_COLUMNS = (*SCALARS, *BY_CODE, *PLATFORM)
#: decimals of the match rate in JSON and CSV
RATE_DIGITS = 4


def row_json(row: FunnelRow) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(row, name) for name in SCALARS}
    if row.match_rate is not None:
        out["match_rate"] = round(row.match_rate, RATE_DIGITS)
    out.update({name: dict(sorted(getattr(row, name).items())) for name in BY_CODE})
    out.update({name: getattr(row, name) for name in PLATFORM})
    out["platform_alerts"] = dict(row.platform_alerts)  # largest share first
    return out


def report_json(funnel: Funnel, uploads: Sequence[UploadRecord]) -> dict[str, Any]:
    """``convsync report --format json``: the window (ISO 8601, ``until`` null for up to
    now), a row per goal × destination, records pulled per source, recent uploads."""
    return {
        "since": funnel.since.isoformat(),
        "until": funnel.until.isoformat() if funnel.until is not None else None,
        "goals": [row_json(r) for r in funnel],
        "sources": dict(sorted(funnel.sources.items())),
        "uploads": [_upload_json(u) for u in uploads],
    }


def _upload_json(upload: UploadRecord) -> dict[str, Any]:
    return {
        "destination": upload.destination,
        "batch_id": upload.batch_id,
        "external_id": upload.external_id,
        "status": upload.status,
        "final": upload.final,
        "rows": upload.rows,
        "details": dict(upload.details),
        "message": upload.message,
        "next_check_at": upload.next_check_at.isoformat() if upload.next_check_at else None,
    }


def csv_row(row: FunnelRow) -> list[str]:
    """A row in :data:`CSV_COLUMNS` order: numbers as digits, no match rate as an empty
    cell, ``true``/``false``, and reasons as ``code=n;code=n``."""
    values = row_json(row)
    out = []
    for name in CSV_COLUMNS:
        value = values[name]
        if isinstance(value, dict):
            out.append(";".join(f"{code}={n}" for code, n in value.items()))
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        else:
            out.append("" if value is None else str(value))
    return out
