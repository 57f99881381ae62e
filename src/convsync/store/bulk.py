"""Many-row INSERTs at the speed of the driver's ``executemany``.

``connection.execute(insert, rows)`` builds and type-processes every parameter set in
Python (about 4 µs a row with two timestamps), more than SQLite's own insert costs,
and the record step writes four rows per record. Here a Core INSERT (ON CONFLICT
included) is compiled once per dialect, callers pass tuples already converted to the
database's form (with the column types' own bind processors, see :func:`to_db`), and
the rows go to ``cursor.executemany`` through ``exec_driver_sql``. The SQL text and
the conversions stay SQLAlchemy's; only its per-row bookkeeping is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

_Convert = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def to_db(on: Connection | Dialect, column: sa.Column[Any]) -> _Convert:
    """The function that turns a Python value of ``column`` into what the driver takes."""
    dialect = on.dialect if isinstance(on, Connection) else on
    process: _Convert | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return _identity if process is None else process


class BulkInsert:
    """An INSERT of fixed ``columns`` run with many rows of driver-ready values."""

    def __init__(
        self,
        build: Callable[[Connection], Any],
        columns: Sequence[str],
    ) -> None:
        self._build = build  # the statement depends on the dialect (ON CONFLICT syntax)
        self.columns = tuple(columns)
        self._compiled: dict[str, tuple[str, tuple[int, ...] | None]] = {}

    def execute(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows``: tuples in :attr:`columns` order, values already converted."""
        if not rows:
            return
        sql, order = self._compile(connection)
        if order is None:  # named parameters (psycopg): one dict per row
            connection.exec_driver_sql(sql, [dict(zip(self.columns, r, strict=True)) for r in rows])
        elif order == tuple(range(len(self.columns))):
            connection.exec_driver_sql(sql, list(rows))
        else:
            connection.exec_driver_sql(sql, [tuple(r[i] for i in order) for r in rows])

    def _compile(self, connection: Connection) -> tuple[str, tuple[int, ...] | None]:
        found = self._compiled.get(connection.dialect.name)
        if found is None:
            compiled = self._build(connection).compile(
                dialect=connection.dialect, column_keys=list(self.columns)
            )
            names = (
                list(compiled.positiontup or ())
                if connection.dialect.positional
                else list(compiled.bind_names.values())
            )
            if sorted(names) != sorted(self.columns):
                # the statement binds something besides the row's columns: not for us
                raise ValueError(f"bulk insert parameters {names} are not {self.columns}")
            order = (
                tuple(self.columns.index(name) for name in names)
                if connection.dialect.positional
                else None
            )
            found = self._compiled[connection.dialect.name] = (str(compiled), order)
        return found
