"""The current database schema, as SQLAlchemy Core tables.

Migrations (``store/migrations.py``) build this schema step by step; a test checks that
migrating an empty database gives exactly these tables. Times are Unix seconds as floats
(``REAL``/``DOUBLE PRECISION``): the same on SQLite and PostgreSQL, and cheap to compare.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    # The key of the user's callback signatures (Standard Webhooks), sealed like key secrets.
    Column("webhook_secret", Text, nullable=True),
    # Legacy completion-callback variants (`openkvs keys callbacks`): "" or "lowercase"
    # (spec §5.7), and 1 for the KS3-compatibility ``itmes`` list (§5.5). Off by default.
    Column("callback_style", Text, nullable=False, server_default=""),
    Column("ks3_items", Integer, nullable=False, server_default="0"),
    # 1: the web console shows this user every user's tasks, presets, pipelines and
    # buckets (`openkvs keys admin`). Off by default; the API is not affected.
    Column("admin", Integer, nullable=False, server_default="0"),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(64), primary_key=True),
    # Sealed with the data key (store/secrets.py), never the plain secret.
    Column("secret", Text, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),  # set by `openkvs keys revoke`
)

tasks = Table(
    "tasks",
    metadata,
    # ``id`` orders the queue by age; ``task_id`` is the 40-character public identifier.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(40), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("action", String(32), nullable=False),  # CreateWaveTask, CreateTask, ...
    Column("task_type", String(32), nullable=False),  # preset type: audiowave, avinfo, ...
    Column("preset", String(256), nullable=False),
    Column("pipeline", String(64), nullable=False),
    Column("is_top", Integer, nullable=False, default=0),
    Column("top_at", Float, nullable=True),  # when it was topped: top tasks are FIFO by this
    Column("status", String(8), nullable=False),  # TaskStatus value (init, exec, succ, fail, del)
    Column("request", Text, nullable=False),  # the validated request, JSON (see service/tasks)
    Column("error_code", Integer, nullable=False, default=0),
    Column("error_msg", Text, nullable=False, default=""),
    Column("result", Text, nullable=True),  # the callback ``items`` of a finished task, JSON
    Column("progress", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("cancel_requested", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    # The TaskID of the task this one is a part of (a chunk of a split transcode), else
    # NULL. Parts are internal: no API list, statistic or callback shows them.
    Column("parent_id", String(40), nullable=True),
)

Index("ix_tasks_queue", tasks.c.status, tasks.c.is_top, tasks.c.top_at, tasks.c.id)
Index("ix_tasks_user_created", tasks.c.user_id, tasks.c.created_at)
Index("ix_tasks_parent", tasks.c.parent_id)
# The queue's own indexes (store/queue.py): queued rows only, in the order claims take
# them. Their conditions are literals, and so are the claim's (see store/queue.py).
_QUEUED_TOP = text("status = 'init' AND parent_id IS NULL")
_QUEUED_PART = text("status = 'init' AND parent_id IS NOT NULL")
ix_tasks_claim = Index(
    "ix_tasks_claim",
    tasks.c.is_top.desc(),
    tasks.c.top_at,
    tasks.c.id,
    postgresql_where=_QUEUED_TOP,
    sqlite_where=_QUEUED_TOP,
)
ix_tasks_claim_parts = Index(
    "ix_tasks_claim_parts",
    tasks.c.id,
    postgresql_where=_QUEUED_PART,
    sqlite_where=_QUEUED_PART,
)

#: What a task's run did, beside the queue row (written while it runs, read by
#: GetTaskByTaskID): the sub-phase, the command that ran and, after a failure, the end of
#: the failing program's stderr (for the operator; never in callbacks).
task_runs = Table(
    "task_runs",
    metadata,
    Column("task_id", String(40), primary_key=True),
    Column("phase", String(16), nullable=False, default=""),  # "", transcoding, uploading
    Column("command", Text, nullable=False, default=""),  # shell-quoted; joined with " && "
    Column("log", Text, nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

callbacks = Table(
    "callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(40), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),  # DeliveryState value
    Column("attempts", Integer, nullable=False, default=0),
    # When the next attempt is due; while an attempt runs, it is pushed ahead as a lease.
    Column("next_attempt_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
)

Index("ix_callbacks_due", callbacks.c.state, callbacks.c.next_attempt_at)

callback_attempts = Table(
    "callback_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("callback_id", Integer, ForeignKey("callbacks.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=False, default=""),
)

presets = Table(
    "presets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(32), nullable=False),
    Column("preset_type", String(32), nullable=False),  # as the client sent it (aliases kept)
    Column("description", Text, nullable=False, default=""),
    Column("param", Text, nullable=False),  # JSON, exactly as the client sent it
    Column("kshd", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_presets_user_name"),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # PipelineState value
    Column("description", Text, nullable=False, default=""),
    Column("regular_start", String(8), nullable=False, default=""),  # HH:MM:SS, UTC+8
    Column("regular_duration", Integer, nullable=False, default=0),  # seconds; 0 = no window
    Column("quota", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_pipelines_user_name"),
)

api_calls = Table(
    "api_calls",
    metadata,
    # One row per user, action and 5-minute period: the counter GetInterfaceNumber reads.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("action", String(64), nullable=False),
    Column("period_start", Integer, nullable=False),  # unix seconds, a multiple of 300
    Column("count", Integer, nullable=False),
    UniqueConstraint("user_id", "action", "period_start", name="uq_api_calls_period"),
)

buckets = Table(
    "buckets",
    metadata,
    # A bucket belongs to the user who created it; only its owner and the users it was
    # granted to may read sources from it or write outputs into it.
    Column("name", String(63), primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
)

bucket_grants = Table(
    "bucket_grants",
    metadata,
    Column("bucket", String(63), ForeignKey("buckets.name"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("access", String(16), nullable=False),  # "read" or "readwrite"
    Column("created_at", Float, nullable=False),
    UniqueConstraint("bucket", "user_id", name="uq_bucket_grants_bucket_user"),
)

client_tokens = Table(
    "client_tokens",
    metadata,
    # ExtParam ClientToken: a repeat by the same user within a day returns the first TaskID.
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("token", String(64), primary_key=True),
    Column("task_id", String(40), nullable=False),
    Column("created_at", Float, nullable=False, index=True),
)

#: The processes that run tasks (``openkvs worker``, the pool of ``serve``): each writes its
#: row when it starts and renews ``heartbeat_at`` while it lives (``store/workers.py``).
workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),  # host, pid and a random part
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pipelines", Text, nullable=False, default="[]"),  # JSON names; [] = all
    Column("task_types", Text, nullable=False, default="[]"),  # JSON: the kinds it runs
    Column("concurrency", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # alive or draining (lost: by heartbeat)
    Column("running", Text, nullable=False, default="[]"),  # JSON TaskIDs it runs now
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

#: A pipeline's quota as rows: a task starts only by taking a free slot of its (user,
#: pipeline) with ``slot < Quota`` (``store/queue.py``), so claimers on many machines keep
#: the quota with row locks, without one lock for the whole queue. Slots are numbered from
#: 0 without gaps. ``task_id`` has no index: a slot is freed by (user, pipeline, task), and
#: with no indexed column changing, PostgreSQL updates the row in place (HOT).
queue_slots = Table(
    "queue_slots",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("pipeline", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("task_id", String(40), nullable=True),  # the top-level task holding it, or NULL
)
