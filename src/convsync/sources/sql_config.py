"""Config of the ``sql`` source: the user's own database, read incrementally.

SQLAlchemy is imported only when a config has an ``sql`` source: the URL's shape and
its database (``foo://`` is none SQLAlchemy knows) are checked here, without showing the
URL; its driver package and the database itself when the source runs.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from convsync.core.configtypes import Int64, Lookback, StrictModel, TimeZoneName, WholeNumber

#: SQLAlchemy's own rule for ``:name`` parameters of ``text()`` (``::type`` casts and
#: ``\\:`` escapes are not parameters)
BIND_PARAM = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)", re.UNICODE)
_URL_SHAPE = re.compile(r"^[A-Za-z][\w+.-]*://")


class SqlSourceConfig(StrictModel):
    """A query against the user's own database (any SQLAlchemy URL), pulled by a cursor."""

    def literal_ok(self, key: str) -> bool:
        """A URL without a password (``sqlite:///orders.db``) may be written as it is."""
        if key != "url":
            return False
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.url.get_secret_value()).password is None
        except ArgumentError:
            return False

    type: Literal["sql"]
    url: SecretStr = Field(
        description="SQLAlchemy URL of the database, e.g. postgresql+psycopg://user:pw@host/db "
        "(write it as ${ENV} or ${file:…}: it holds a password). A relative SQLite path is "
        "relative to the config file's folder."
    )
    query: str = Field(
        description="SELECT with a :cursor parameter, e.g. `… WHERE updated_at >= :cursor`. "
        "convsync orders its rows by the cursor column, then the id column."
    )
    id: str = Field(description="Column with the record's unique id.")
    time: str = Field(description="Column with the moment the target action happened.")
    cursor: str | None = Field(
        default=None,
        description="Column the cursor follows: a time, an integer or text that grows with "
        "each change (default: the time column).",
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical field name → column name (email, phone, gclid, value, …).",
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="Time zone of naive timestamps; default: the top-level one."
    )
    lookback: Lookback = Field(
        default=timedelta(0),
        description="Re-read this far behind the saved cursor (time cursors only): rows "
        "committed late with an earlier cursor value (long transactions, clock skew) are "
        "caught; the ledger absorbs the overlap.",
    )
    start_date: datetime | date | None = Field(
        default=None,
        description="First run, time cursors: read rows from this moment on (naive = in the "
        "source's time zone). Required unless start is set.",
    )
    start: Int64 | str | None = Field(
        default=None,
        description="First run, integer or text cursors: the :cursor value of the first "
        "query (e.g. 0). Instead of start_date.",
    )
    fetch_rows: WholeNumber = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Rows fetched from the database per round trip (memory stays constant).",
    )

    @field_validator("query")
    @classmethod
    def _has_cursor_parameter(cls, value: str) -> str:
        names = set(BIND_PARAM.findall(value))
        if "cursor" not in names:
            raise ValueError(
                "the query must compare the cursor column with the :cursor parameter, "
                "e.g. WHERE updated_at >= :cursor"
            )
        others = sorted(names - {"cursor"})
        if others:
            shown = ", ".join(f":{n}" for n in others)
            raise ValueError(
                f"only :cursor is bound; {shown} would have no value (write a literal colon as \\:)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _looks_like_a_url(cls, value: SecretStr) -> SecretStr:
        # the value itself is never quoted: it holds a password
        text = value.get_secret_value().strip()
        if not _URL_SHAPE.match(text):
            raise ValueError(
                "not a SQLAlchemy URL: expected dialect[+driver]://user:password@host/db "
                "or sqlite:///path/to/file.db"
            )
        _check_dialect(text)
        return value

    @model_validator(mode="after")
    def _one_start(self) -> Self:
        # required: the first query needs a :cursor value of the column's own type, and
        # a wrong guess would silently match no row on SQLite (integers < text there)
        if self.start is not None and self.start_date is not None:
            raise ValueError("set start_date (time cursors) or start (others), not both")
        if self.start is None and self.start_date is None:
            raise ValueError(
                "say where the first run starts: start_date: 2026-01-01 for a time cursor, "
                "or start: 0 for an integer one (start: '' for text)"
            )
        return self

    @property
    def cursor_column(self) -> str:
        return self.cursor or self.time


def _check_dialect(url: str) -> None:
    """A URL whose database SQLAlchemy knows (``foo://`` is none); its driver package
    is looked for when the source connects. Only the dialect is named, never the URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError(
            "not a SQLAlchemy URL: expected dialect[+driver]://user:password@host/db "
            "or sqlite:///path/to/file.db"
        ) from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(
            f"SQLAlchemy knows no database {parsed.drivername!r}: write "
            "postgresql+psycopg://…, mysql+pymysql://…, mssql+pyodbc://… or sqlite:///file.db"
        ) from None
    except ImportError:
        return  # a known dialect whose driver is missing: the source says so when it connects
