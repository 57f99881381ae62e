"""The ``ga4_bigquery`` source: configured GA4 events from the BigQuery export.

A pull lists the dataset's tables, then runs one query over the daily tables
``events_YYYYMMDD`` from ``lookback_days`` before the saved cursor (or ``start_date``)
up to the newest daily table, and — with ``intraday: true`` — over the
``events_intraday_YYYYMMDD`` tables of the dates that have no daily table yet (never
both for one date). GA4 adds late events to a daily table for up to three days, hence
the re-read; a re-read event keeps its record id (``query.record_id``), so the ledger
records it once, and an event read from an intraday table keeps its id when it comes
again from the daily table.

Before the query, a dry run estimates the bytes it would process: logged
(``ga4_query_estimate``) and refused past ``maximum_bytes_billed``, which is set on the
job too. Rows come ordered by table date, then time, a page at a time; a chunk's cursor
is the last daily table read completely (never less than the saved one), so a restart
re-reads from there minus the lookback, not from the start of the backfill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import structlog

from convsync.core.errors import UserError
from convsync.core.model import RawRecord, RecordRejection, SourceState
from convsync.sources.base import PulledChunk, Source, SourceContext
from convsync.sources.ga4.client import BigQueryReader
from convsync.sources.ga4.config import Ga4BigQuerySourceConfig, merged_fields
from convsync.sources.ga4.query import (
    EventQuery,
    build_parameters,
    build_sql,
    field_value,
    occurred_at,
    record_id,
    shift,
    suffix,
    suffix_date,
)

log = structlog.get_logger("convsync.sources.ga4")

#: the first pull without ``start_date`` reaches back this far
DEFAULT_START = timedelta(days=30)
CURSOR_KEY = "daily"


class Ga4BigQuerySource(Source[Ga4BigQuerySourceConfig]):
    """Configured events of one GA4 property, one record per event."""

    type: ClassVar[str] = "ga4_bigquery"
    #: test seams: rows a result page, the first retry's wait, and the clock
    page_size: int = 10_000
    retry_initial: float = 1.0
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))

    def __init__(self, name: str, config: Ga4BigQuerySourceConfig, context: SourceContext) -> None:
        super().__init__(name, config, context)
        self.key = f"sources.{name}"
        self.specs = merged_fields(config.fields)
        #: the byte estimate of the last pull's query (the bench reads it)
        self.estimated_bytes = 0

    def reader(self) -> BigQueryReader:
        return BigQueryReader(
            self.config,
            self.key,
            self.context.base_dir,
            page_size=self.page_size,
            retry_initial=self.retry_initial,
        )

    def check(self) -> tuple[list[str], list[str]]:
        """Lists the dataset's tables: proves the credentials and the dataset, costs
        nothing (no query runs)."""
        try:
            reader = self.reader()
            try:
                daily, intraday = reader.event_tables()
            finally:
                reader.close()
        except UserError as exc:
            return [str(exc)], []
        if not daily and not intraday:
            return [], [f"{self.key}: the dataset has no events_YYYYMMDD table yet"]
        return [], []

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        saved = self._saved_cursor(state)
        reader = self.reader()
        try:
            yield from self._pull(reader, saved)
        finally:
            reader.close()

    def _pull(self, reader: BigQueryReader, saved: str | None) -> Iterator[PulledChunk]:
        daily, intraday = reader.event_tables()
        query = self._plan(saved, daily, intraday)
        final = max(filter(None, (saved, query.last)), default=None)
        if query.empty:
            log.info("ga4_pull", source=self.name, tables="none new", records=0)
            yield PulledChunk(cursor={CURSOR_KEY: final} if final else None)
            return
        sql = build_sql(reader.data_project, reader.dataset_name, query)
        params = build_parameters(query, self.config.events, self.specs)
        self.estimated_bytes = reader.estimate(sql, params, query.describe())

        limit = max(1, self.context.chunk_size)
        chunk = PulledChunk()
        complete: str | None = None  # the last daily table read to its end
        counts = {"rows": 0, "records": 0, "rejections": 0}
        for row in reader.rows(sql, params):
            counts["rows"] += 1
            table_suffix = str(row.get("table_suffix") or "")
            if row.get("intraday"):
                complete = query.last
            elif table_suffix:
                complete = shift(table_suffix, -1)  # ordered by table: the days before are done
            item = self._record(row)
            if isinstance(item, RawRecord):
                chunk.records.append(item)
                counts["records"] += 1
            else:
                chunk.rejections.append(item)
                counts["rejections"] += 1
            if len(chunk.records) + len(chunk.rejections) >= limit:
                chunk.cursor = self._cursor(complete, saved)
                yield chunk
                chunk = PulledChunk()
        chunk.cursor = {CURSOR_KEY: final} if final else None
        log.info(
            "ga4_pull",
            source=self.name,
            tables=query.describe(),
            estimated_bytes=self.estimated_bytes,
            cursor=final,
            **counts,
        )
        yield chunk

    def _plan(self, saved: str | None, daily: set[str], intraday: set[str]) -> EventQuery:
        if saved is not None:
            first = shift(saved, -self.config.lookback_days)
        else:
            start = self.config.start_date
            if start is None:
                start = self.clock().astimezone(self.context.timezone).date() - DEFAULT_START
            first = suffix(start)
        days = sorted(s for s in daily if s >= first)
        extra: tuple[str, ...] = ()
        if self.config.intraday:
            extra = tuple(sorted(s for s in intraday if s >= first and s not in daily))
        if not days:
            return EventQuery(None, None, extra)
        return EventQuery(first, days[-1], extra)

    def _cursor(self, complete: str | None, saved: str | None) -> Mapping[str, Any] | None:
        if complete is None or (saved is not None and complete <= saved):
            return None
        return {CURSOR_KEY: complete}

    def _record(self, row: Mapping[str, Any]) -> RawRecord | RecordRejection:
        rid = record_id(row)
        table = ("events_intraday_" if row.get("intraday") else "events_") + str(
            row.get("table_suffix") or "?"
        )
        micros = row.get("event_timestamp")
        origin = f"GA4 {row.get('event_name') or 'event'} in {table} at {micros}"
        if micros is None:
            return RecordRejection(
                self.name, origin, "event_timestamp", "missing_time",
                "the event has no event_timestamp", rid,
            )  # fmt: skip
        try:
            occurred = occurred_at(int(micros))
        except (OverflowError, ValueError, TypeError):
            return RecordRejection(
                self.name, origin, "event_timestamp", "bad_time",
                f"event_timestamp {micros!r} is not a time in microseconds", rid,
            )  # fmt: skip
        fields: dict[str, str] = {}
        columns: dict[str, str] = {}
        for name, specs in self.specs.items():
            columns[name] = " or ".join(specs)
            for spec in specs:
                value = field_value(row, spec)
                if value:
                    fields[name] = value
                    break
        return RawRecord(self.name, rid, occurred, fields, origin, columns)

    def _saved_cursor(self, state: SourceState) -> str | None:
        text = (state.cursor or {}).get(CURSOR_KEY)
        if not text:
            return None
        try:
            return suffix(suffix_date(str(text)))
        except ValueError:
            raise UserError(
                f"{self.key}: the saved cursor {text!r} is not a table date (YYYYMMDD); "
                "reset the source's cursor"
            ) from None
