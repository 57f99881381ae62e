"""What a platform reports of the uploads as a whole rather than row by row: the Google
Ads API's upload summaries (``offline_conversion_upload_conversion_action_summary``),
kept per destination × goal × upload day in ``platform_summaries``, and the day each
destination's were last read (``platform_summary_reads``), for the once-a-day read
(``sync/platform_summaries.py``) and for the funnel.

Google counts per conversion action and upload day (its date, in the account's time
zone), over the last 7 days: each read replaces the counts of the days it reports, so a
day's counts settle as its pending events are processed. The alerts Google gives are of
the latest day with uploads: they are stored on that day's row, and a later read, whose
alerts are of a later day, leaves them there.

In the funnel (``add_to_funnel``) a goal × destination row gets the sums over the
upload days its window touches (UTC dates: the ledger does not know the account's time
zone) and the alerts of the latest of those days that has some; these counts are of
the conversion action's uploads on those days, not of the window's rows alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from convsync.store.rows import upsert_insert
from convsync.store.schema import platform_summaries, platform_summary_reads


class ReportedRow(Protocol):
    """What ``add_to_funnel`` reads and fills in of a funnel row (``funnel.FunnelRow``,
    which imports this module)."""

    goal: str
    destination: str
    reports_matching: bool
    platform_successful: int | None
    platform_failed: int | None
    platform_pending: int | None
    platform_alerts: dict[str, float]
    platform_alerts_on: str | None


#: decimals of an alert's share as stored and shown
SHARE_DIGITS = 4


@dataclass(frozen=True, slots=True)
class PlatformDay:
    """One goal's conversion action on one upload day, as the platform counted it."""

    goal: str
    conversion_action_id: int
    day: date
    successful: int
    failed: int
    pending: int
    #: error code → its share (0…1) of the day's events; None: the platform's alerts are
    #: of another day (the stored ones of this day are kept)
    alerts: Mapping[str, float] | None = None


def save(
    connection: Connection,
    destination: str,
    days: Sequence[PlatformDay],
    *,
    read_on: date,
    now: datetime,
) -> None:
    """Upsert ``days`` (a re-read replaces a day's counts) and note the read of ``read_on``."""
    s = platform_summaries.c
    for with_alerts in (True, False):
        values = [
            {
                "destination": destination,
                "goal": d.goal,
                "upload_date": d.day,
                "conversion_action_id": d.conversion_action_id,
                "successful": d.successful,
                "failed": d.failed,
                "pending": d.pending,
                "alerts": _shares(d.alerts) if d.alerts is not None else None,
                "fetched_at": now,
            }
            for d in days
            if (d.alerts is not None) is with_alerts
        ]
        if not values:
            continue
        insert = upsert_insert(connection, platform_summaries)
        replaced = ["conversion_action_id", "successful", "failed", "pending", "fetched_at"]
        if with_alerts:
            replaced.append("alerts")
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=[s.destination, s.goal, s.upload_date],
                set_={name: insert.excluded[name] for name in replaced},
            ),
            values,
        )
    insert = upsert_insert(connection, platform_summary_reads)
    connection.execute(
        insert.values(destination=destination, read_on=read_on, read_at=now).on_conflict_do_update(
            index_elements=[platform_summary_reads.c.destination],
            set_={"read_on": insert.excluded.read_on, "read_at": insert.excluded.read_at},
        )
    )


def read_on(connection: Connection, destination: str) -> date | None:
    """The day (in the config's timezone) of the destination's last read; None: never."""
    query = sa.select(platform_summary_reads.c.read_on).where(
        platform_summary_reads.c.destination == destination
    )
    found: date | None = connection.execute(query).scalar()
    return found


def stored(connection: Connection, destination: str) -> list[PlatformDay]:
    """Every stored day of ``destination``, by goal and day."""
    s = platform_summaries.c
    query = (
        sa.select(platform_summaries)
        .where(s.destination == destination)
        .order_by(s.goal, s.upload_date)
    )
    return [
        PlatformDay(
            r.goal,
            int(r.conversion_action_id),
            r.upload_date,
            int(r.successful),
            int(r.failed),
            int(r.pending),
            dict(r.alerts) if r.alerts is not None else None,
        )
        for r in connection.execute(query)
    ]


def add_to_funnel(
    connection: Connection, rows: Iterable[ReportedRow], since: datetime, until: datetime | None
) -> None:
    """Give the conversion ``rows`` of destinations with stored summaries the counts of
    the window's upload days (see the module's docstring); they report matching."""
    s = platform_summaries.c
    first = since.astimezone(UTC).date()
    window = [s.upload_date >= first]
    if until is not None:  # the day of the window's last moment
        window.append(s.upload_date <= (until - timedelta(microseconds=1)).astimezone(UTC).date())
    reporting: dict[str, bool] = {}
    for row in rows:
        if row.destination not in reporting:
            exists = sa.select(s.destination).where(s.destination == row.destination).limit(1)
            reporting[row.destination] = connection.execute(exists).first() is not None
        if not reporting[row.destination]:
            continue
        query = (
            sa.select(s.upload_date, s.successful, s.failed, s.pending, s.alerts)
            .where(s.destination == row.destination, s.goal == row.goal, *window)
            .order_by(s.upload_date)
        )
        found = connection.execute(query).all()
        row.reports_matching = True
        row.platform_successful = sum(int(r.successful) for r in found)
        row.platform_failed = sum(int(r.failed) for r in found)
        row.platform_pending = sum(int(r.pending) for r in found)
        alerted = [r for r in found if r.alerts]
        if alerted:
            row.platform_alerts = _shares(alerted[-1].alerts)
            row.platform_alerts_on = alerted[-1].upload_date.isoformat()


def _shares(alerts: Mapping[str, Any]) -> dict[str, float]:
    """Alerts by share, largest first, rounded."""
    shares = {str(code): round(float(share), SHARE_DIGITS) for code, share in alerts.items()}
    return dict(sorted(shares.items(), key=lambda item: (-item[1], item[0])))


class PlatformReportLedger:
    """The ``Ledger``'s methods for platform reports (mixed into it), each one transaction."""

    if TYPE_CHECKING:  # the Ledger's transactions

        def _read(self) -> AbstractContextManager[Connection]: ...
        def _write(self) -> AbstractContextManager[Connection]: ...

    def summaries_read_on(self, destination: str) -> date | None:
        """The day (in the config's timezone) ``destination``'s summaries were last read."""
        with self._read() as connection:
            return read_on(connection, destination)

    def save_platform_summaries(
        self, destination: str, days: Sequence[PlatformDay], *, read_on: date, now: datetime
    ) -> None:
        """Store one read of ``destination``'s summaries (``days``) made on ``read_on``."""
        if now.utcoffset() is None:
            raise ValueError(f"naive datetime {now.isoformat()} given to the ledger")
        with self._write() as connection:
            save(connection, destination, days, read_on=read_on, now=now)

    def platform_summaries(self, destination: str) -> list[PlatformDay]:
        """Every stored day of ``destination``'s summaries, by goal and day."""
        with self._read() as connection:
            return stored(connection, destination)
