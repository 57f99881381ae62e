"""The ``sql`` source: a query against the user's own database, pulled by a cursor.

Each pull runs the configured query once with ``:cursor`` bound (as a parameter, never
formatted into the SQL) to the saved cursor minus ``lookback`` — or ``start`` /
``start_date`` on the first run — wrapped so that its rows come ordered by the cursor
column, then the id column::

    SELECT * FROM (<query>) AS convsync_rows ORDER BY "<cursor>", "<id>"

The rows stream (a server-side cursor where the driver has one, ``yield_per``), so
memory stays constant; every chunk carries the cursor of its last row, so a restart
resumes after the last chunk the pipeline recorded. The query should compare with
``>=``: rows that share the cursor value of a chunk's last row then come again rather
than being lost, and the ledger absorbs them. See ``sql_cursor`` for the cursor rules.

A short probe (the wrapped query ``WHERE 1 = 0``) runs first: it checks the columns
before any row is read, and is all ``convsync validate`` runs. ``sql_rows`` finds the
configured columns and turns rows into records.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from convsync.core.errors import UserError
from convsync.core.logging import REDACTED, get_logger, register_secret
from convsync.core.model import RawRecord, RecordRejection, SourceState
from convsync.sources.base import PulledChunk, Source, SourceContext
from convsync.sources.sql_config import SqlSourceConfig
from convsync.sources.sql_cursor import (
    TIME_KINDS,
    CursorKindError,
    SqlCursor,
    capped,
    kind_of,
    parse_iso_text,
)
from convsync.sources.sql_rows import Layout, find_layout, read_rows, shown_value

log = get_logger(__name__)

_ALIAS = "convsync_rows"


class SqlSource(Source[SqlSourceConfig]):
    """Rows of a query against the user's own database (any SQLAlchemy URL)."""

    type: ClassVar[str] = "sql"

    def __init__(self, name: str, config: SqlSourceConfig, context: SourceContext) -> None:
        super().__init__(name, config, context)
        register_secret(config.url)
        self._password: str | None = None
        with contextlib.suppress(ArgumentError):  # reported by pull and check, naming the key
            self._password = make_url(config.url.get_secret_value().strip()).password
        if self._password:
            register_secret(self._password)

    # --- the Source interface -------------------------------------------------------------

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        started = datetime.now(UTC)
        tz = self._timezone()
        column = self.config.cursor_column
        saved = SqlCursor.from_state(state.cursor, column)
        if state.cursor is not None and saved is None:
            log.warning(
                "saved cursor does not fit the configured cursor column: starting over",
                source=self.name,
                column=column,
            )
        bound = self._start_value(tz) if saved is None else self._moved_back(saved)
        engine = self._engine()
        try:
            with self._connect(engine) as connection:
                layout = self._probe(connection, bound)
                result = self._execute(connection, self._ordered(engine, layout), bound)
                yield from self._chunks(result, layout, saved, started, tz, bound)
        finally:
            engine.dispose()

    def check(self) -> tuple[list[str], list[str]]:
        """The URL, the connection and the query's columns; no row is read."""
        try:
            engine = self._engine()
        except UserError as exc:
            return [str(exc)], []
        try:
            with self._connect(engine) as connection:
                self._probe(connection, self._start_value(self._timezone()))
        except UserError as exc:
            return [str(exc)], []
        finally:
            engine.dispose()
        notes = []
        if ">:cursor" in "".join(self.config.query.split()):
            notes.append(
                f"sources.{self.name}.query: compare with >= :cursor, not > :cursor: rows "
                "sharing the cursor value of the last row pulled would be skipped"
            )
        return [], notes

    # --- the database -----------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return f"sources.{self.name}.{name}"

    def _timezone(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone) if self.config.timezone else self.context.timezone

    def _url(self) -> URL:
        try:
            url = make_url(self.config.url.get_secret_value().strip())
        except ArgumentError:
            raise UserError(
                f"{self._key('url')}: not a valid SQLAlchemy URL (expected "
                "dialect+driver://user:password@host/db or sqlite:///file.db)"
            ) from None
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                path = self.context.base_dir / database
                if not path.is_file():
                    raise UserError(f"{self._key('url')}: the SQLite file {path} does not exist")
                url = url.set(database=os.fspath(path))
        return url

    def _engine(self) -> Engine:
        url = self._url()
        try:
            # NullPool: a pull holds one connection and gives it back when it ends
            return sa.create_engine(url, poolclass=NullPool, hide_parameters=True)
        except (NoSuchModuleError, ImportError) as exc:
            raise UserError(
                f"{self._key('url')}: no driver for {url.drivername!r} is installed "
                f"({self._scrub(str(exc))})"
            ) from None
        except (ArgumentError, TypeError) as exc:
            raise UserError(f"{self._key('url')}: {self._scrub(str(exc))}") from None

    def _connect(self, engine: Engine) -> Connection:
        try:
            return engine.connect()
        except SQLAlchemyError as exc:
            raise UserError(
                f"{self._key('url')}: cannot connect to the database: {self._db_message(exc)}"
            ) from None

    def _probe(self, connection: Connection, bound: Any) -> Layout:
        sql = f"SELECT * FROM ({self._query()}) AS {_ALIAS} WHERE 1 = 0"  # noqa: S608  # the user's own query, run as configured; values are bound
        result = self._execute(connection, sql, bound)
        keys = list(result.keys())
        result.close()
        return find_layout(self.name, self.config, keys)

    def _query(self) -> str:
        return self.config.query.strip().rstrip(";").strip()

    def _ordered(self, engine: Engine, layout: Layout) -> str:
        quote = engine.dialect.identifier_preparer.quote_identifier
        order = quote(layout.cursor_column)
        if layout.id_column != layout.cursor_column:
            order += f", {quote(layout.id_column)}"
        return f"SELECT * FROM ({self._query()}) AS {_ALIAS} ORDER BY {order}"  # noqa: S608  # identifiers quoted, values bound

    def _execute(self, connection: Connection, sql: str, bound: Any) -> sa.CursorResult[Any]:
        streaming = connection.execution_options(
            stream_results=True, yield_per=self.config.fetch_rows
        )
        try:
            return streaming.execute(sa.text(sql), {"cursor": self._bindable(connection, bound)})
        except SQLAlchemyError as exc:
            raise UserError(
                f"{self._key('query')}: the database refused the query: {self._db_message(exc)}"
            ) from None

    def _bindable(self, connection: Connection, value: Any) -> Any:
        # SQLite has no time type: times are text there, and sqlite3's own datetime
        # adapter is deprecated; "YYYY-MM-DD HH:MM:SS" is what SQLite's functions write
        # (naive, in the source's zone, like the times the shop's application wrote)
        if connection.dialect.name == "sqlite" and isinstance(value, date):
            if isinstance(value, datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(self._timezone()).replace(tzinfo=None)
                return value.isoformat(sep=" ")
            return value.isoformat()
        return value

    def _start_value(self, tz: ZoneInfo) -> Any:
        if self.config.start is not None:
            return self.config.start
        start = self.config.start_date
        if isinstance(start, datetime):
            return start if start.tzinfo is not None else start.replace(tzinfo=tz)
        if isinstance(start, date):
            return datetime.combine(start, time(), tz)
        return None  # unreachable: the config requires start or start_date

    def _moved_back(self, saved: SqlCursor) -> Any:
        try:
            return saved.bound(self.config.lookback)
        except CursorKindError as exc:
            raise UserError(f"{self._key('lookback')}: {exc}; set lookback: 0") from None

    def _db_message(self, exc: SQLAlchemyError) -> str:
        orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
        text = lines[0] if lines else type(orig).__name__
        if "[SQL:" in text:
            text = text.split("[SQL:")[0].strip()
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, REDACTED)
        return text

    # --- rows → records ---------------------------------------------------------------------

    def _chunks(
        self,
        result: sa.CursorResult[Any],
        layout: Layout,
        saved: SqlCursor | None,
        started: datetime,
        tz: ZoneInfo,
        bound: Any,
    ) -> Iterator[PulledChunk]:
        limit = max(1, self.context.chunk_size)
        cursor = saved
        chunk = PulledChunk()
        size = 0
        counts = {"rows": 0, "rejected": 0, "chunks": 0}
        last: Any = None  # the last non-NULL cursor value: rows come in cursor order
        cursor_type: type | None = None
        odd_types = 0
        handed = saved  # the cursor of the last chunk handed over
        cursor_index = layout.cursor_index
        # a time that is not a time says nothing about where the rows are
        skip_bad_times = cursor_index == layout.time_index
        for row, item in self._rows(result, layout, tz, counts):
            value = row[cursor_index]
            if skip_bad_times and type(item) is RecordRejection and item.code == "bad_time":
                value = None
            if value is not None:
                if type(value) is cursor_type:
                    last = value
                elif last is None:
                    cursor = self._first_cursor(value, saved, layout)
                    cursor_type = type(value)
                    last = value
                else:
                    odd_types += 1  # a mixed-type column (SQLite): its order is not ours
            if isinstance(item, RawRecord):
                chunk.records.append(item)
            else:
                chunk.rejections.append(item)
            size += 1
            if size >= limit:
                cursor = self._advance(cursor, last, started, tz)
                chunk.cursor = cursor.as_state() if cursor is not None else None
                counts["chunks"] += 1
                yield chunk
                handed = cursor
                chunk = PulledChunk()
                size = 0
        cursor = self._advance(cursor, last, started, tz)
        if size or cursor != handed:
            chunk.cursor = cursor.as_state() if cursor is not None else None
            counts["chunks"] += 1
            yield chunk
        if odd_types:
            log.warning(
                "cursor values of another type than the column's were not followed",
                source=self.name,
                column=layout.cursor_column,
                rows=odd_types,
            )
        log.info(
            "sql source pulled",
            source=self.name,
            cursor_from=shown_value(bound),
            cursor_to=shown_value(cursor.value) if cursor is not None else None,
            **counts,
        )

    def _first_cursor(self, value: Any, saved: SqlCursor | None, layout: Layout) -> SqlCursor:
        """The cursor the rows follow, from the first row with a cursor value."""
        try:
            kind = kind_of(value)
        except CursorKindError as exc:
            raise UserError(f"{self._key('cursor')}: {exc}") from None
        if self.config.lookback and (
            kind not in TIME_KINDS or (kind == "text" and parse_iso_text(value) is None)
        ):
            what = "text that is not an ISO date-time" if kind == "text" else f"{kind} values"
            raise UserError(
                f"{self._key('lookback')}: the cursor column {layout.cursor_column!r} holds "
                f"{what}, which cannot be moved back by a time; set lookback: 0"
            )
        if saved is not None and saved.kind == kind:
            return saved
        # first run, or the column changed type since the cursor was saved: the rows
        # still came from the bound value, so they are the place to go on from
        return SqlCursor(layout.cursor_column, kind, value)

    def _rows(
        self, result: sa.CursorResult[Any], layout: Layout, tz: ZoneInfo, counts: dict[str, int]
    ) -> Iterator[tuple[Any, RawRecord | RecordRejection]]:
        """``read_rows``, with an error while reading as a UserError (the chunks handed
        over before it stay recorded)."""
        try:
            yield from read_rows(result, layout, self.name, tz, counts)
        except DBAPIError as exc:
            raise UserError(
                f"sources.{self.name}: reading the rows failed after {counts['rows']}: "
                f"{self._db_message(exc)}; the next run resumes from the last chunk recorded"
            ) from None

    @staticmethod
    def _advance(
        cursor: SqlCursor | None, last: Any, started: datetime, tz: ZoneInfo
    ) -> SqlCursor | None:
        if cursor is None or last is None:
            return cursor
        return cursor.advanced(capped(cursor.kind, last, started, tz))
