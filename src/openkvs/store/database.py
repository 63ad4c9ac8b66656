"""Opening the database: one SQLAlchemy engine per process, tuned per dialect.

SQLite runs in WAL mode with a busy timeout. A transaction opened with ``engine.begin()``
(every write, and the queue's claim) starts with ``BEGIN IMMEDIATE``: it takes the write lock
at the start, so two writers queue up instead of failing when a read transaction tries to
become a write transaction. A transaction that ``engine.connect()`` begins by itself for a
plain ``SELECT`` (a read) starts with a deferred ``BEGIN``: in WAL mode it reads a snapshot
without taking the write lock, so reads neither wait for writers nor hold them up. Write
through ``engine.begin()``, never through a connection whose first statement was a read.
PostgreSQL needs nothing special for locking: the queue's claim uses ``FOR UPDATE SKIP
LOCKED`` (see ``store/queue.py``). Its engine is made to live through outages
(:func:`_postgresql_engine`): a pool checked before use, connections that give up instead of
hanging (connect timeout, TCP keep-alives and user timeout), and server-side limits on
statements and idle transactions.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from openkvs.store.migrations import migrate
from openkvs.store.permissions import DIR_MODE, private_file, warn_if_open
from openkvs.store.writer_turn import WriterTurn

#: ``Connection.info`` key: the transaction about to begin is a read (a deferred BEGIN).
_READ = "openkvs_read"
#: ``Connection.info`` key: the transaction holds this process's SQLite writer lock.
_WRITER = "openkvs_writer"
#: SQLite connections kept open per process (as many again may be opened for a while).
SQLITE_POOL_SIZE = 48
#: How long a writer waits for the database's write lock (SQLite's busy timeout).
BUSY_SECONDS = 30

#: PostgreSQL connections kept open per process, and how many more it may open at busy
#: times (closed again when returned): enough for the API's request threads, the worker
#: threads, the lease keeper, the notifier and the call counter of one process at once.
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 20
#: Seconds a thread waits for a free pooled connection before its call fails (503).
PG_POOL_TIMEOUT = 10
#: libpq connection parameters (a value given in the URL's query wins): give up a connection
#: attempt after 5 s, notice a silent peer within about 20 s when idle (keep-alives) and
#: within 15 s when data sent is not acknowledged (tcp_user_timeout, in ms), so that a
#: thread never hangs on a cut connection.
PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
#: Server-side limits set on every PostgreSQL session after migrations: no statement runs
#: longer (a lock wait included), no transaction stays open and idle longer (so a client
#: that vanished mid-transaction does not hold its locks for ever).
PG_SESSION_LIMITS = {
    "statement_timeout": "60s",
    "idle_in_transaction_session_timeout": "60s",
}


def open_engine(url: str, *, migrate_schema: bool = True) -> Engine:
    """An engine for ``url`` with the schema migrated to the latest version."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database)
    else:
        engine = _postgresql_engine(url, parsed)
    if migrate_schema:
        migrate(engine)
    if parsed.get_backend_name() == "postgresql":
        _limit_sessions(engine)
    return engine


def _postgresql_engine(url: str, parsed: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() in ("psycopg", "psycopg2"):  # libpq's parameters
        connect_args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in parsed.query}
    return create_engine(
        url,
        pool_pre_ping=True,  # a connection broken by an outage is replaced, not used
        pool_size=PG_POOL_SIZE,
        max_overflow=PG_MAX_OVERFLOW,
        pool_timeout=PG_POOL_TIMEOUT,
        connect_args=connect_args,
    )


def _limit_sessions(engine: Engine) -> None:
    """Set :data:`PG_SESSION_LIMITS` on every connection from now on: after migrations,
    which may rightly run longer (their connections are closed first)."""
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for name, value in PG_SESSION_LIMITS.items():
            cursor.execute(f"SET {name} = '{value}'")
        cursor.close()
        dbapi_conn.commit()  # the driver began a transaction: end it, the settings stay


def _enable_wal(cursor: Any, patience: float = 30.0) -> None:
    """Switch a new database to WAL. The switch needs the database to itself and SQLite
    does not wait for it (no busy handler), so two processes starting on a fresh data
    folder at once (``serve`` and ``keys create``) retry here instead of failing."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    lock_file = None
    if database and database != ":memory:":
        # Created owner-only before SQLite opens it; its -wal and -shm files take its mode.
        path = Path(database)
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        private_file(path)
        for extra in ("-wal", "-shm"):
            warn_if_open(path.with_name(path.name + extra))
        lock_file = path.with_name(path.name + "-writer")
    # A connection per thread that may use one at once (the API's request threads, the
    # workers, the notifier): a thread that waits for a pooled connection costs more than
    # an idle SQLite connection does, and connections beyond the pool are closed and
    # reopened (with their PRAGMAs) each time.
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own
        # transaction handling would begin lazily, as a deferred transaction).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "engine_connect")
    def _on_checkout(conn: Any) -> None:
        conn.info.pop(_READ, None)  # engine.begin() starts here too: a write unless marked

    @event.listens_for(engine, "before_execute")
    def _before_execute(conn: Any, clause: Any, *_args: Any) -> None:
        # Runs before the statement makes the connection begin a transaction by itself
        # (``engine.connect()``, no explicit begin): a plain SELECT marks it as a read.
        if not conn.in_transaction():
            plain_select = getattr(clause, "is_select", False) and (
                getattr(clause, "_for_update_arg", None) is None
            )
            conn.info[_READ] = bool(plain_select)

    writer = WriterTurn(lock_file)  # writers queue before they ask SQLite: see its module

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.info.pop(_READ, False):
            # A deferred BEGIN takes no lock and cannot fail on one: sent to the driver
            # directly, it costs a fraction of a statement run through SQLAlchemy.
            conn.connection.driver_connection.execute("BEGIN")
            return
        if not writer.acquire(timeout=BUSY_SECONDS):
            raise sqlite3.OperationalError("database is locked (by other openkvs writers)")
        conn.info[_WRITER] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _end_write(conn)
            raise

    def _end_write(conn: Any) -> None:
        if conn.info.pop(_WRITER, False):
            writer.release()

    event.listen(engine, "commit", _end_write)
    event.listen(engine, "rollback", _end_write)
    return engine
