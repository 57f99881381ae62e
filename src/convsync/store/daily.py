"""Counts per window of time (days, mostly) for the status page's charts and the alert
rules: a goal's conversions, and a destination's match verdicts; and each goal's newest record.

Each count is one range of an index, so the time grows with the rows counted and the
windows asked for, never with the ledger's history: a goal's conversions of a window
are a range of ``ix_conversions_goal_occurred_at`` (conversions only, adjustments left
out); a destination's verdicts, ranges of ``ix_deliveries_funnel`` per goal and code
(see ``funnel.delivery_groups``). See bench/report.py.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.core.model import DeliveryState
from convsync.store.funnel import count_deliveries, delivery_groups
from convsync.store.schema import conversions, deliveries

#: a window of time: [start, end)
Window = tuple[datetime, datetime]

VERDICTS = (DeliveryState.MATCHED.value, DeliveryState.UNMATCHED.value)


def goal_volumes(
    connection: Connection, goals: Collection[str], windows: Sequence[Window]
) -> dict[str, list[int]]:
    """Conversions (not adjustments) of each of ``goals`` that occurred in each of
    ``windows``: goal → one count per window, in their order."""
    c = conversions.c
    out: dict[str, list[int]] = {}
    for goal in goals:
        counts = out[goal] = []
        for start, end in windows:
            query = (
                sa.select(sa.func.count())
                .select_from(conversions)
                .where(
                    c.goal == goal,
                    c.adjusts_id.is_(None),
                    c.occurred_at >= start,
                    c.occurred_at < end,
                )
            )
            counts.append(int(connection.execute(query).scalar_one()))
    return out


def newest_per_goal(connection: Connection, goals: Collection[str]) -> dict[str, datetime]:
    """When each goal's newest conversion (or adjustment) was recorded: one seek each on
    ``ix_conversions_goal_recorded_at``; goals without one are left out."""
    c = conversions.c
    out: dict[str, datetime] = {}
    for goal in goals:
        query = sa.select(sa.func.max(c.recorded_at)).where(c.goal == goal)
        newest = connection.execute(query).scalar()
        if newest is not None:
            out[goal] = newest
    return out


def planned_verdicts(
    connection: Connection, windows: Sequence[Window]
) -> dict[str, list[tuple[int, int]]]:
    """Of the deliveries planned in each of ``windows`` (``created_at``), those the
    platform has matched and not matched so far: destination → ``(matched, unmatched)``
    per window. Destinations without a verdict are left out."""
    d = deliveries.c
    counts: dict[str, list[list[int]]] = {}
    for (_, destination, state, _), where in delivery_groups(connection, VERDICTS):
        per_window = counts.setdefault(destination, [[0, 0] for _ in windows])
        slot = 0 if state == DeliveryState.MATCHED.value else 1
        for i, (start, end) in enumerate(windows):
            window = (d.created_at >= start, d.created_at < end)
            per_window[i][slot] += count_deliveries(connection, (*where, *window))
    return {name: [(m, u) for m, u in rows] for name, rows in counts.items()}
