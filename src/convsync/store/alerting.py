"""What the alert rules read (finished runs, daily volumes, match verdicts, the last
record of each source) and the alert state they keep (table ``alert_state``).

Every change to a state row is a compare-and-set on what the writer read (``firing``,
``since``, whether its message was claimed), so of several processes evaluating the
same condition at once only one records the change; and a message is sent only by the
process whose ``claim_notice`` set ``notified_at``. ``AlertLedger`` gives the ``Ledger``
these as methods, each one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.model import RUNNING, DeliveryState
from convsync.store.daily import Window, goal_volumes, planned_verdicts
from convsync.store.rows import upsert_insert
from convsync.store.runs import RunRow
from convsync.store.schema import alert_state, deliveries, runs


@dataclass(frozen=True, slots=True)
class AlertStateRow:
    """One alert condition (``rule:subject``) as the ledger keeps it."""

    rule: str
    subject: str
    firing: bool
    since: datetime
    message: str
    details: Mapping[str, Any]
    updated_at: datetime
    #: when a process claimed this state's message (None: not sent yet)
    notified_at: datetime | None = None
    #: the channels this state's message reached
    sent_to: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return alert_key(self.rule, self.subject)


def alert_key(rule: str, subject: str) -> str:
    return f"{rule}:{subject}"


# --- facts ------------------------------------------------------------------------------


def finished_runs(connection: Connection, limit: int) -> list[RunRow]:
    """The newest ``limit`` runs that finished themselves (a summary of what they did),
    newest first."""
    query = (
        sa.select(runs)
        .where(runs.c.status != RUNNING, runs.c.finished_at.is_not(None))
        .order_by(runs.c.finished_at.desc(), runs.c.run_id.desc())
        .limit(limit)
    )
    return [
        RunRow.of(row)
        for row in connection.execute(query)
        if isinstance(row.summary, Mapping) and "lost" not in row.summary
    ]


def _window_index(column: sa.ColumnElement[datetime], windows: Sequence[Window]) -> Any:
    """Which of ``windows`` ``column`` falls in (its index), NULL for none."""
    return sa.case(
        *((sa.and_(column >= start, column < end), i) for i, (start, end) in enumerate(windows)),
        else_=sa.null(),
    )


def daily_verdicts(
    connection: Connection, destinations: Collection[str], windows: Sequence[Window]
) -> dict[str, list[tuple[int, int]]]:
    """Deliveries of ``destinations`` that became matched or unmatched in each of
    ``windows`` (by their last change): destination → one ``(matched, unmatched)`` per
    window."""
    if not windows or not destinations:
        return {}
    verdicts = (DeliveryState.MATCHED.value, DeliveryState.UNMATCHED.value)
    inner = (
        sa.select(
            deliveries.c.destination,
            deliveries.c.state,
            _window_index(deliveries.c.updated_at, windows).label("window"),
        )
        .where(
            deliveries.c.destination.in_(sorted(destinations)),
            deliveries.c.state.in_(verdicts),
            deliveries.c.updated_at >= min(start for start, _ in windows),
        )
        .subquery()
    )
    query = (
        sa.select(inner.c.destination, inner.c.state, inner.c.window, sa.func.count())
        .where(inner.c.window.is_not(None))
        .group_by(inner.c.destination, inner.c.state, inner.c.window)
    )
    counts: dict[str, list[list[int]]] = {}
    for destination, state, window, count in connection.execute(query):
        per_window = counts.setdefault(destination, [[0, 0] for _ in windows])
        per_window[int(window)][0 if state == DeliveryState.MATCHED.value else 1] += int(count)
    return {name: [(m, u) for m, u in rows] for name, rows in counts.items()}


def alert_states(connection: Connection, *, firing_only: bool = False) -> list[AlertStateRow]:
    query = sa.select(alert_state).order_by(alert_state.c.since, alert_state.c.key)
    if firing_only:
        query = query.where(alert_state.c.firing.is_(True))
    return [_state(row) for row in connection.execute(query).mappings()]


def unnotified(connection: Connection) -> list[AlertStateRow]:
    """The states whose message has not gone out (nor is going out)."""
    query = (
        sa.select(alert_state)
        .where(alert_state.c.notified_at.is_(None))
        .order_by(alert_state.c.since, alert_state.c.key)
    )
    return [_state(row) for row in connection.execute(query).mappings()]


def _state(row: Mapping[Any, Any]) -> AlertStateRow:
    return AlertStateRow(
        rule=row["rule"],
        subject=row["subject"],
        firing=bool(row["firing"]),
        since=row["since"],
        message=row["message"],
        details=dict(row["details"] or {}),
        updated_at=row["updated_at"],
        notified_at=row["notified_at"],
        sent_to=tuple(row["sent_to"] or ()),
    )


def _values(state: AlertStateRow) -> dict[str, Any]:
    return {
        "rule": state.rule,
        "subject": state.subject,
        "firing": state.firing,
        "since": state.since,
        "message": state.message,
        "details": dict(state.details),
        "notified_at": state.notified_at,
        "sent_to": list(state.sent_to),
        "updated_at": state.updated_at,
    }


def _as_read(state: AlertStateRow) -> sa.ColumnElement[bool]:
    """The row is still as ``state`` was read: the same state, its message claimed or not."""
    claimed = (
        alert_state.c.notified_at.is_(None)
        if state.notified_at is None
        else alert_state.c.notified_at.is_not(None)
    )
    return sa.and_(
        alert_state.c.key == state.key,
        alert_state.c.firing.is_(state.firing),
        alert_state.c.since == state.since,
        claimed,
    )


def save_state(connection: Connection, new: AlertStateRow, read: AlertStateRow | None) -> bool:
    """Write ``new`` if the row is still as it was ``read`` (absent, when None); whether
    it was written."""
    if read is None:
        insert = upsert_insert(connection, alert_state).values(key=new.key, **_values(new))
        written = connection.execute(
            insert.on_conflict_do_nothing(index_elements=[alert_state.c.key]).returning(
                alert_state.c.key
            )
        ).first()
        return written is not None
    result = connection.execute(alert_state.update().where(_as_read(read)).values(**_values(new)))
    return result.rowcount == 1


def refresh_state(connection: Connection, read: AlertStateRow, new: AlertStateRow) -> bool:
    """The latest message and numbers of a state that goes on; its notice untouched."""
    result = connection.execute(
        alert_state.update()
        .where(
            alert_state.c.key == read.key,
            alert_state.c.firing.is_(read.firing),
            alert_state.c.since == read.since,
        )
        .values(message=new.message, details=dict(new.details), updated_at=new.updated_at)
    )
    return result.rowcount == 1


def claim_notice(connection: Connection, state: AlertStateRow, now: datetime) -> bool:
    """Take the sending of ``state``'s message: only if nobody has, and the state is still
    the one read."""
    result = connection.execute(
        alert_state.update()
        .where(
            alert_state.c.key == state.key,
            alert_state.c.firing.is_(state.firing),
            alert_state.c.since == state.since,
            alert_state.c.notified_at.is_(None),
        )
        .values(notified_at=now)
    )
    return result.rowcount == 1


def finish_notice(
    connection: Connection,
    state: AlertStateRow,
    claimed_at: datetime,
    sent_to: Sequence[str],
    *,
    complete: bool,
) -> None:
    """Record the channels ``state``'s message reached; an incomplete notice is released
    (``notified_at`` NULL again) for the next evaluation to send to the rest."""
    connection.execute(
        alert_state.update()
        .where(
            alert_state.c.key == state.key,
            alert_state.c.firing.is_(state.firing),
            alert_state.c.since == state.since,
            alert_state.c.notified_at == claimed_at,
        )
        .values(sent_to=list(sent_to), notified_at=claimed_at if complete else None)
    )


class AlertLedger:
    """The ``Ledger``'s methods for the alert rules and their state, and the status
    page's daily series (mixed into it, so the ledger module stays about the sync
    itself)."""

    if TYPE_CHECKING:  # the Ledger's transactions

        def _read(self) -> AbstractContextManager[Connection]: ...
        def _write(self) -> AbstractContextManager[Connection]: ...

    def finished_runs(self, limit: int) -> list[RunRow]:
        """The newest ``limit`` runs that finished themselves, newest first."""
        with self._read() as connection:
            return finished_runs(connection, limit)

    def goal_volumes(
        self, goals: Collection[str], windows: Sequence[Window]
    ) -> dict[str, list[int]]:
        """Conversions of each goal that occurred in each window: goal → a count per window."""
        with self._read() as connection:
            return goal_volumes(connection, goals, windows)

    def planned_verdicts(self, windows: Sequence[Window]) -> dict[str, list[tuple[int, int]]]:
        """Of the deliveries planned in each window, those matched and not matched so far:
        destination → ``(matched, unmatched)`` per window."""
        with self._read() as connection:
            return planned_verdicts(connection, windows)

    def daily_verdicts(
        self, destinations: Collection[str], windows: Sequence[Window]
    ) -> dict[str, list[tuple[int, int]]]:
        """Deliveries that became matched or unmatched in each window: destination →
        ``(matched, unmatched)`` per window."""
        with self._read() as connection:
            return daily_verdicts(connection, destinations, windows)

    def alert_states(self, *, firing_only: bool = False) -> list[AlertStateRow]:
        with self._read() as connection:
            return alert_states(connection, firing_only=firing_only)

    def unnotified_alerts(self) -> list[AlertStateRow]:
        with self._read() as connection:
            return unnotified(connection)

    def save_alert_state(self, new: AlertStateRow, read: AlertStateRow | None) -> bool:
        """Write ``new`` if its row is still as ``read`` (absent: None); whether it was."""
        with self._write() as connection:
            return save_state(connection, new, read)

    def refresh_alert_state(self, read: AlertStateRow, new: AlertStateRow) -> bool:
        with self._write() as connection:
            return refresh_state(connection, read, new)

    def claim_alert_notice(self, state: AlertStateRow, now: datetime) -> bool:
        """Take the sending of ``state``'s message, if no process has."""
        with self._write() as connection:
            return claim_notice(connection, state, now)

    def finish_alert_notice(
        self,
        state: AlertStateRow,
        claimed_at: datetime,
        sent_to: Sequence[str],
        *,
        complete: bool,
    ) -> None:
        with self._write() as connection:
            finish_notice(connection, state, claimed_at, sent_to, complete=complete)
