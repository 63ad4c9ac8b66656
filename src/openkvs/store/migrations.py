"""Versioned schema migrations, applied in order at start-up by every process.

Each step is a function of a connection inside one transaction; the table ``schema_version``
remembers the last step applied. Several processes may start at once (``serve`` plus
``keys create``, or many workers on PostgreSQL): the steps run under a lock (SQLite's write
lock, a PostgreSQL advisory lock), and a process that finds the work done does nothing.

Rule for later steps: never edit a step that has shipped. Each step creates its own tables
as ``schema.py`` declares them; a change to a table that a shipped step created must first
freeze that step to its own copy of the table, then go in a new step that alters it. A test
checks that migrating an empty database gives the schema of ``schema.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)

from openkvs.store import schema

log = logging.getLogger(__name__)

_version_meta = MetaData()
schema_version = Table("schema_version", _version_meta, Column("version", Integer, nullable=False))


# Version 1's users and access_keys, frozen: version 3 altered them.
_v1_meta = MetaData()
_v1_users = Table(
    "users",
    _v1_meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)
_v1_access_keys = Table(
    "access_keys",
    _v1_meta,
    Column("access_key_id", String(64), primary_key=True),
    Column("secret", String(128), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
)


# Version 1's tasks, frozen: version 5 altered it.
_v1_tasks = Table(
    "tasks",
    _v1_meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(40), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("task_type", String(32), nullable=False),
    Column("preset", String(256), nullable=False),
    Column("pipeline", String(64), nullable=False),
    Column("is_top", Integer, nullable=False, default=0),
    Column("top_at", Float, nullable=True),
    Column("status", String(8), nullable=False),
    Column("request", Text, nullable=False),
    Column("error_code", Integer, nullable=False, default=0),
    Column("error_msg", Text, nullable=False, default=""),
    Column("result", Text, nullable=True),
    Column("progress", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("cancel_requested", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
)
Index("ix_tasks_queue", _v1_tasks.c.status, _v1_tasks.c.is_top, _v1_tasks.c.top_at, _v1_tasks.c.id)
Index("ix_tasks_user_created", _v1_tasks.c.user_id, _v1_tasks.c.created_at)


def _v1_initial(conn: Connection) -> None:
    _v1_meta.create_all(conn)
    tables = [
        schema.callbacks,
        schema.callback_attempts,
    ]
    schema.metadata.create_all(conn, tables=tables)


def _v2_presets_pipelines_counters(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.presets, schema.pipelines, schema.api_calls])


def _v3_owners_secrets_tokens(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE users ADD COLUMN webhook_secret TEXT"))
    conn.execute(text("ALTER TABLE access_keys ADD COLUMN revoked_at DOUBLE PRECISION"))
    if conn.dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        conn.execute(text("ALTER TABLE access_keys ALTER COLUMN secret TYPE TEXT"))
    schema.metadata.create_all(
        conn, tables=[schema.buckets, schema.bucket_grants, schema.client_tokens]
    )


def _v4_task_runs(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.task_runs])


def _v5_scale_out(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE tasks ADD COLUMN parent_id VARCHAR(40)"))
    conn.execute(text("CREATE INDEX ix_tasks_parent ON tasks (parent_id)"))
    schema.metadata.create_all(conn, tables=[schema.workers, schema.queue_slots])
    schema.ix_tasks_claim.create(conn)
    schema.ix_tasks_claim_parts.create(conn)
    # Tasks running during the upgrade hold slots, so that quotas count them.
    conn.execute(
        text(
            "INSERT INTO queue_slots (user_id, pipeline, slot, task_id)"
            " SELECT user_id, pipeline,"
            " ROW_NUMBER() OVER (PARTITION BY user_id, pipeline ORDER BY id) - 1, task_id"
            " FROM tasks WHERE status = 'exec'"
        )
    )


def _v6_callback_styles(conn: Connection) -> None:
    # ``users`` is version 1's frozen table (altered by 3): alter it again here.
    conn.execute(text("ALTER TABLE users ADD COLUMN callback_style TEXT NOT NULL DEFAULT ''"))
    conn.execute(text("ALTER TABLE users ADD COLUMN ks3_items INTEGER NOT NULL DEFAULT 0"))


def _v7_console_admin(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0"))


STEPS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial schema", _v1_initial),
    (2, "presets, pipelines and API call counters", _v2_presets_pipelines_counters),
    (
        3,
        "bucket owners and grants, sealed secrets, webhook secrets, client tokens",
        _v3_owners_secrets_tokens,
    ),
    (4, "task runs: phase, command and log", _v4_task_runs),
    (5, "worker registry, quota slots, task parts", _v5_scale_out),
    (6, "legacy callback variants per user", _v6_callback_styles),
    (7, "the console's admin flag per user", _v7_console_admin),
]

LATEST = STEPS[-1][0]


def current_version(conn: Connection) -> int:
    _version_meta.create_all(conn)
    value = conn.execute(select(schema_version.c.version)).scalar()
    return int(value or 0)


def migrate(engine: Engine) -> int:
    """Apply every missing step; return the version the database is at."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7350912)"))
        version = current_version(conn)
        if version > LATEST:
            raise RuntimeError(
                f"database schema version {version} is newer than this openkvs ({LATEST})"
            )
        for number, title, step in STEPS:
            if number <= version:
                continue
            step(conn)
            log.info("schema_migrated", extra={"version": number, "title": title})
            version = number
        conn.execute(schema_version.delete())
        conn.execute(schema_version.insert().values(version=version))
    return version
