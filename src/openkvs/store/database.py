"""Opening the database: one SQLAlchemy engine per process, tuned per dialect.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE``: it takes the write lock at the start, so two writers queue up instead of
failing when a read transaction tries to become a write transaction. PostgreSQL needs nothing
special: the queue's claim uses ``FOR UPDATE SKIP LOCKED`` (see ``store/queue.py``).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from openkvs.store.migrations import migrate


def open_engine(url: str, *, migrate_schema: bool = True) -> Engine:
    """An engine for ``url`` with the schema migrated to the latest version."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if migrate_schema:
        migrate(engine)
    return engine


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
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own
        # transaction handling would begin lazily, as a deferred transaction).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
