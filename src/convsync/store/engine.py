"""Engines for the ledger's two databases: SQLite (embedded default) and PostgreSQL.

SQLite notes, because its defaults are wrong for a ledger that several processes share:

* ``journal_mode=WAL`` lets readers run while one process writes; ``synchronous=NORMAL``
  is durable across application crashes in WAL mode and much faster than FULL.
* Python's ``sqlite3`` (before 3.12's ``autocommit``) starts transactions lazily and
  only before DML. A deferred transaction that reads and then writes gets
  ``SQLITE_BUSY`` *without* waiting when another process wrote in between, so every
  write transaction starts with ``BEGIN IMMEDIATE`` (takes the write lock up front and
  waits ``busy_timeout`` for it). The driver's own BEGIN is switched off
  (``isolation_level=None``) and SQLAlchemy's ``begin`` event emits ours: ``BEGIN
  IMMEDIATE`` on connections marked with the :data:`WRITE` execution option, a plain
  (deferred, snapshot) ``BEGIN`` otherwise.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import QueuePool

from convsync.core.errors import UserError

#: execution option that makes a connection's transactions start with BEGIN IMMEDIATE
WRITE = "convsync_write"

#: how long a SQLite writer waits for another process's write transaction
SQLITE_BUSY_TIMEOUT_S = 60.0
#: page cache per SQLite connection (KiB). The key index is written in random order, so a
#: larger cache helps a little (64 MB: ~10 % faster at 1M records) but costs resident memory.
SQLITE_CACHE_KIB = 16 * 1024
#: WAL pages before an automatic checkpoint (about 120 MB of 4 KiB pages), and the size
#: the WAL file is cut back to after one
SQLITE_CHECKPOINT_PAGES = 30_000
SQLITE_WAL_LIMIT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LedgerEngine:
    """An engine plus what the ledger must know about how it was opened."""

    engine: Engine
    display_url: str
    #: an empty in-memory stand-in for a ledger file that does not exist (dry-run)
    in_memory: bool
    #: for the in-memory stand-in: the connection that keeps the shared database alive
    keeper: sqlite3.Connection | None = None

    def dispose(self) -> None:
        self.engine.dispose()
        if self.keeper is not None:
            self.keeper.close()


def parse_url(raw: str) -> URL:
    """Parse a ledger URL; bare ``postgresql://`` (and ``postgres://``) mean psycopg 3."""
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        # the message of ArgumentError never contains the URL itself, so no password leaks
        raise UserError(f"the ledger URL is not a database URL: {exc}") from exc
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise UserError(
            f"the ledger URL {mask(url)} is not supported: use sqlite:///path/to/file.db "
            "or postgresql://user@host/db"
        )
    return url


def mask(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:":
        return None
    return Path(database)


def create(url: URL, *, read_only: bool) -> LedgerEngine:
    """An engine for ``url``.

    ``read_only``: PostgreSQL transactions are READ ONLY; an existing SQLite file is
    opened with ``mode=ro``; a SQLite file that does not exist is replaced by an empty
    in-memory database (the caller creates the schema in it).
    """
    display = mask(url)
    if url.get_backend_name() == "postgresql":
        engine = sa.create_engine(url, pool_pre_ping=True)
        if read_only:
            engine = engine.execution_options(postgresql_readonly=True)
        return LedgerEngine(engine, display, in_memory=False)

    path = sqlite_path(url)
    if path is None:
        return _sqlite_memory(display)
    if read_only and not path.exists():
        return _sqlite_memory(display)
    if not path.parent.is_dir():
        raise UserError(f"the ledger's folder {path.parent} does not exist (ledger URL {display})")
    if not read_only:
        _check_writable(path, display)
    if read_only:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return LedgerEngine(
            _sqlite_engine(lambda: _sqlite_connect(uri, uri=True), wal=False), display, False
        )
    target = str(path)
    return LedgerEngine(_sqlite_engine(lambda: _sqlite_connect(target), wal=True), display, False)


def _check_writable(path: Path, display: str) -> None:
    """A writer needs the folder as well as the file (SQLite creates its journal files
    beside the ledger): say so at once, naming the user, rather than SQLite's "unable to
    open database file" at the first write. In Docker this is a host folder mounted at
    /data that uid 10001 may not write."""
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        blocked = folder
    elif path.exists() and not os.access(path, os.W_OK):
        blocked = path
    else:
        return
    uid = os.getuid()
    raise UserError(
        f"{blocked} is not writable by uid {uid}, so the ledger cannot be kept there "
        f"(ledger URL {display}): let uid {uid} write it (in Docker: chown -R {uid} the "
        f"host folder mounted at {folder}, or mount a named volume there instead)"
    )


def _sqlite_memory(display: str) -> LedgerEngine:
    # A named shared-cache database rather than one StaticPool connection: the pipeline
    # may use the ledger from several threads, which one connection cannot serve.
    uri = f"file:convsync-{uuid.uuid4().hex}?mode=memory&cache=shared"
    keeper = _sqlite_connect(uri, uri=True)
    engine = _sqlite_engine(lambda: _sqlite_connect(uri, uri=True), wal=False)
    return LedgerEngine(engine, display, in_memory=True, keeper=keeper)


def _sqlite_connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    return sqlite3.connect(
        target,
        uri=uri,
        timeout=SQLITE_BUSY_TIMEOUT_S,
        # SQLAlchemy's pool hands connections between threads, never to two at once
        check_same_thread=False,
        # no implicit BEGIN from the driver: _begin below decides how transactions start
        isolation_level=None,
    )


def _sqlite_engine(creator: Callable[[], sqlite3.Connection], *, wal: bool) -> Engine:
    engine = sa.create_engine("sqlite+pysqlite://", creator=creator, poolclass=QueuePool)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            if wal:
                _enable_wal(cursor)
                cursor.execute("PRAGMA synchronous = NORMAL")
                # A record chunk dirties thousands of pages of the conversion-key index
                # (hash keys land on random pages); checkpointing after every commit
                # (the default 1,000-page threshold) writes the same pages back again
                # and again: a larger threshold was 10-15% faster for a 1M-record import.
                cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
                cursor.execute(f"PRAGMA journal_size_limit = {SQLITE_WAL_LIMIT_BYTES}")
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _begin)
    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch a (new) database file to WAL; a no-op once it is.

    Two processes converting a fresh file at once deadlock (both hold SHARED, both need
    EXCLUSIVE), and SQLite answers one of them "database is locked" at once, without
    calling the busy handler. Asking again usually waits for the other to finish and
    finds the file in WAL already, but not always: the other may still be between its
    locks, and the answer comes at once again (a few times in a hundred races on two
    cores). So the question is repeated with a short, growing pause for as long as a
    writer would wait (busy_timeout).
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
        else:
            return


def _begin(conn: Connection) -> None:
    if conn.get_execution_options().get(WRITE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
