"""The queue: which task a worker starts next, and the quota slots that let it start.

A claim takes the first queued task a worker may run and marks it running under the
worker's lease, in one transaction:

* **Parts first.** Rows with a ``parent_id`` are the parts of a split task; their parent
  was admitted by its pipeline and holds its slot, so parts skip every pipeline rule and go
  ahead of top-level tasks (the parent waits for them).
* **Then top-level tasks**, by (top flag, time topped, age), whose pipeline is Active and
  inside its daily window, and which can take a free *quota slot*.

**Quota slots.** A pipeline's Quota (its row in ``pipelines``, else the default of
:class:`PipelineRules`) is kept as rows of ``queue_slots``: (user, pipeline, slot number,
the task holding it or NULL). A top-level task starts only by taking a free slot numbered
below the Quota, and gives it back (:func:`end`) in the transaction that ends or requeues
it. Claimers on many machines thus keep the Quota with row locks on the slots (``FOR
UPDATE SKIP LOCKED``): no lock for the whole queue, and claims of one pipeline go on in
parallel up to its Quota. Slot rows are created, numbered from 0, when a claim finds
nothing to start and a pipeline with queued tasks has fewer slots than its Quota
(:data:`_TOP_UP`): a raised Quota or a new pipeline takes effect at the next claim. A
lowered Quota starts nothing until the tasks holding slots at or above it have ended, so
the running tasks never exceed it. The same step frees slots still held by ended tasks
(:data:`_REPAIR`; only a process of an older version leaves such slots behind).

**PostgreSQL.** One statement per claim (:func:`_claim_sql`): data-modifying CTEs lock the
candidate task and a free slot with ``FOR UPDATE SKIP LOCKED``, take the slot and start the
task; concurrent claimers skip each other's rows instead of waiting. When the candidate's
free slots were all locked by concurrent claimers the statement starts nothing and says so,
and the claim tries again (:data:`RETRIES`).

**SQLite.** The claim's transaction holds the database's write lock from its start
(``BEGIN IMMEDIATE``, see ``store/database.py``), so claims are serialised anyway: the same
queries run as plain statements, a few microseconds each.

The queue's indexes are partial, on queued rows only: ``ix_tasks_claim`` in claim order for
top-level tasks, ``ix_tasks_claim_parts`` for parts. Their ``WHERE`` clauses use literals
(``status = 'init'``), so every statement here does too (a bound value would keep a
database from using a partial index in a generic plan).

Waking workers: on PostgreSQL, :func:`announce` sends ``NOTIFY`` on :data:`CHANNEL` in the
transaction that queued a task (``store/wakeups.py`` listens).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Row,
    String,
    TextClause,
    Update,
    bindparam,
    func,
    select,
    text,
    update,
)

from openkvs.store.schema import queue_slots, tasks

#: The channel idle workers listen on (PostgreSQL): a task was queued or requeued, or a
#: pipeline may start tasks again.
CHANNEL = "openkvs_tasks"
#: Statements that lost every free slot of their candidate to concurrent claimers try again
#: this many times in all before the claim gives up (the worker looks again later).
RETRIES = 3
#: Pipeline windows are in UTC+8 (spec §4.3).
UTC_OFFSET = 8 * 3600


def day_seconds(now: float) -> int:
    """Seconds since midnight UTC+8 at ``now``: the clock pipeline windows are set on."""
    return int(now + UTC_OFFSET) % 86400


@dataclass(frozen=True)
class PipelineRules:
    """What a claim enforces for top-level tasks: their pipeline's State, daily window and
    Quota (a pipeline without a row is Active, always open, with ``default_quota``). A
    claim without rules starts any queued task and takes no slot (tests, tools)."""

    default_quota: int


# -- SQL ------------------------------------------------------------------------------

#: How many tasks of ``t``'s (user, pipeline) may run now: its Quota (a pipeline without a
#: row has the default), or 0 when it is Paused or outside its daily window (``:clock``:
#: seconds since midnight UTC+8; the SQL form of ``service/pipelines.py`` ``window_open``).
#: A CASE, because the window's start is parsed only when a window is set (an empty string
#: is not a number on PostgreSQL).
_OPEN_QUOTA = """COALESCE((
            SELECT CASE
                WHEN p.state <> 'Active' THEN 0
                WHEN p.regular_start = '' OR p.regular_duration <= 0
                     OR p.regular_duration >= 86400 THEN p.quota
                WHEN (:clock + 86400
                      - CAST(SUBSTR(p.regular_start, 1, 2) AS INTEGER) * 3600
                      - CAST(SUBSTR(p.regular_start, 4, 2) AS INTEGER) * 60
                      - CAST(SUBSTR(p.regular_start, 7, 2) AS INTEGER)) % 86400
                     < p.regular_duration THEN p.quota
                ELSE 0
            END
            FROM pipelines AS p WHERE p.user_id = t.user_id AND p.name = t.pipeline
        ), :default_quota)"""


def _free_slot(quota: str) -> str:
    """The lowest free slot of ``t``'s (user, pipeline) below ``quota`` (its open Quota), or
    NULL: none free, or a task still holds a slot at or above it (the Quota was lowered:
    nothing starts until the running tasks fit in the new one). One pass over the pair's
    slot rows."""
    return f"""(
            SELECT CASE
                WHEN MAX(CASE WHEN s.task_id IS NOT NULL AND s.slot >= {quota}
                         THEN 1 ELSE 0 END) = 1 THEN NULL
                ELSE MIN(CASE WHEN s.task_id IS NULL AND s.slot < {quota} THEN s.slot END)
            END
            FROM queue_slots AS s
            WHERE s.user_id = t.user_id AND s.pipeline = t.pipeline
        )"""


def _compact(sql: str) -> str:
    """``sql`` without its comments and with its blanks collapsed: psycopg converts and
    caches the placeholders of statements up to 4 KB only, and converting the claim's at
    each run cost more than running it."""
    lines = (line.split("--", 1)[0] for line in sql.splitlines())
    return " ".join(" ".join(lines).split())


def _filters(task_types: bool, pipelines: bool, postgresql: bool) -> str:
    """The worker's own limits on ``t``: the kinds it has executors for, the pipelines it
    serves. On PostgreSQL the lists are arrays (``= ANY``): the statement's text stays the
    same whatever their length, so it is compiled once and prepared by the server."""
    where = ""
    for on, column, name in (
        (task_types, "task_type", "task_types"),
        (pipelines, "pipeline", "pipelines"),
    ):
        if on:
            where += (
                f" AND t.{column} = ANY(:{name})" if postgresql else f" AND t.{column} IN :{name}"
            )
    return where


def _part_sql(filters: str, parent: bool, lock: str, sqlite: bool = False) -> str:
    """The first queued part (of ``:parent`` when given)."""
    of_parent = "t.parent_id = :parent" if parent else "t.parent_id IS NOT NULL"
    hint = " INDEXED BY ix_tasks_claim_parts" if sqlite and not parent else ""
    return f"""
        SELECT t.id FROM tasks AS t{hint}
        WHERE t.status = 'init' AND {of_parent}{filters}
        ORDER BY t.id
        LIMIT 1{lock}"""


def _candidate_sql(
    filters: str, rules: bool, lock: str, after_parts: str = "", sqlite: bool = False
) -> str:
    """The first queued top-level task that may start: with ``rules``, of an Active pipeline
    inside its window that has a free slot below its Quota (that Quota as ``quota``; on
    SQLite that slot as ``slot`` too). SQLite is told which index to walk: without
    statistics it prefers ix_tasks_queue's equality on ``status``, then sorts every queued
    row."""
    hint = " INDEXED BY ix_tasks_claim" if sqlite else ""
    if not rules:
        return f"""
        SELECT t.id, t.task_id FROM tasks AS t{hint}
        WHERE {after_parts}t.status = 'init' AND t.parent_id IS NULL{filters}
        ORDER BY t.is_top DESC, t.top_at, t.id
        LIMIT 1{lock}"""
    # The rules are scalar subqueries, which PostgreSQL evaluates row by row as it walks
    # ix_tasks_claim in claim order and stops at the first row that passes; written as
    # joins, the planner may rather sort every queued row (it cannot tell how many pass).
    # PostgreSQL computes the open Quota once per row (LATERAL; OFFSET 0 keeps the planner
    # from folding it back into every place it is used); SQLite has no LATERAL.
    if sqlite:
        return f"""
        SELECT t.id, t.task_id, t.user_id, t.pipeline, {_OPEN_QUOTA} AS quota,
               {_free_slot(_OPEN_QUOTA)} AS slot
        FROM tasks AS t{hint}
        WHERE {after_parts}t.status = 'init' AND t.parent_id IS NULL{filters}
          AND {_free_slot(_OPEN_QUOTA)} IS NOT NULL
        ORDER BY t.is_top DESC, t.top_at, t.id
        LIMIT 1"""
    return f"""
        SELECT t.id, t.task_id, t.user_id, t.pipeline, q.quota
        FROM tasks AS t
        CROSS JOIN LATERAL (SELECT {_OPEN_QUOTA} AS quota OFFSET 0) AS q
        WHERE {after_parts}t.status = 'init' AND t.parent_id IS NULL{filters}
          AND {_free_slot("q.quota")} IS NOT NULL
        ORDER BY t.is_top DESC, t.top_at, t.id
        LIMIT 1{lock}"""


_START = """
    status = 'exec', lease_owner = :owner, lease_expires_at = :expires,
    attempts = t.attempts + 1, started_at = COALESCE(t.started_at, :now), updated_at = :now"""


def _statement(sql: str, task_types: bool, pipelines: bool) -> TextClause:
    """SQLite's statement: the lists expand to ``IN (?, ?, ...)``."""
    clause = text(_compact(sql))
    lists = [name for name, on in (("task_types", task_types), ("pipelines", pipelines)) if on]
    return clause.bindparams(*(bindparam(name, expanding=True, type_=String) for name in lists))


@functools.lru_cache(maxsize=64)
def _claim_sql(task_types: bool, pipelines: bool, parent: bool, rules: bool) -> TextClause:
    """PostgreSQL's claim, one statement. It returns one row: the started task's columns
    (all NULL when none started), ``candidates``, 1 when a top-level candidate was found but
    its free slots were all taken by concurrent claimers (worth another try), and, when
    nothing started, ``queued``: whether any top-level task waits at all (if not, there is
    no slot to create)."""
    filters = _filters(task_types, pipelines, True)
    lock = "\n        FOR UPDATE OF t SKIP LOCKED"
    if parent:  # only the parts of one task
        chosen = f"chosen AS ({_part_sql(filters, True, lock)}\n)"
        count = "0"
    elif not rules:
        chosen = f"""part AS ({_part_sql(filters, False, lock)}
),
candidate AS ({_candidate_sql(filters, False, lock, "NOT EXISTS (SELECT 1 FROM part) AND ")}
),
chosen AS (SELECT id FROM part UNION ALL SELECT id FROM candidate)"""
        count = "0"
    else:
        chosen = f"""part AS ({_part_sql(filters, False, lock)}
),
candidate AS ({_candidate_sql(filters, True, lock, "NOT EXISTS (SELECT 1 FROM part) AND ")}
),
-- A free slot of the candidate's pipeline below its Quota, locked: concurrent claimers
-- of the same pipeline take different slots, and none takes one another has taken.
slot AS (
    SELECT s.user_id, s.pipeline, s.slot, c.id, c.task_id
    FROM queue_slots AS s
    JOIN candidate AS c ON s.user_id = c.user_id AND s.pipeline = c.pipeline
    WHERE s.task_id IS NULL AND s.slot < c.quota
    ORDER BY s.slot
    LIMIT 1
    FOR UPDATE OF s SKIP LOCKED
),
taken AS (
    UPDATE queue_slots AS s SET task_id = slot.task_id
    FROM slot
    WHERE s.user_id = slot.user_id AND s.pipeline = slot.pipeline AND s.slot = slot.slot
    RETURNING slot.id
),
chosen AS (SELECT id FROM part UNION ALL SELECT id FROM taken)"""
        count = "(SELECT count(*) FROM candidate)"
    sql = f"""
WITH {chosen},
claimed AS (
    UPDATE tasks AS t SET {_START}
    FROM chosen
    WHERE t.id = chosen.id
    RETURNING t.*
)
SELECT claimed.*, {count} AS candidates,
    CASE WHEN claimed.id IS NULL THEN EXISTS (
        SELECT 1 FROM tasks AS t WHERE t.status = 'init' AND t.parent_id IS NULL
    ) END AS queued
FROM (SELECT 1) AS one LEFT JOIN claimed ON true"""
    return text(_compact(sql))


@functools.lru_cache(maxsize=64)
def _sqlite_sql(task_types: bool, pipelines: bool, parent: bool, rules: bool) -> TextClause:
    """SQLite's first look: the first part, else (no ``parent``) the first top-level task
    that may start, and with ``rules`` the free slot it takes (``slot``)."""
    filters = _filters(task_types, pipelines, False)
    part = _part_sql(filters, parent, "", sqlite=True)
    if parent:
        return _statement(f"SELECT id, NULL AS slot FROM ({part})", task_types, pipelines)
    top = _candidate_sql(filters, rules, "", sqlite=True)
    slot = "c.slot" if rules else "NULL"
    sql = f"""
        SELECT * FROM (SELECT id, NULL AS slot, 0 AS later FROM ({part}))
        UNION ALL
        SELECT * FROM (SELECT c.id, {slot} AS slot, 1 AS later FROM ({top}) AS c)
        ORDER BY later
        LIMIT 1"""
    return _statement(sql, task_types, pipelines)


_SQLITE_TAKE = text(
    "UPDATE queue_slots SET task_id = :task_id"
    " WHERE user_id = :user_id AND pipeline = :pipeline AND slot = :slot"
)
_SQLITE_START = text(
    f"UPDATE tasks AS t SET {_START} WHERE t.id = :id AND t.status = 'init' RETURNING *"
)

#: Slot rows 0 .. Quota-1 for every (user, pipeline) with queued top-level tasks whose
#: slot Quota-1 is missing (slots are created in order, so then some are). Inserted in key
#: order, so that concurrent top-ups wait for each other instead of deadlocking.
_TOP_UP = text("""
WITH RECURSIVE pairs AS (
    SELECT DISTINCT t.user_id, t.pipeline FROM tasks AS t
    WHERE t.status = 'init' AND t.parent_id IS NULL
),
short AS (
    SELECT pairs.user_id, pairs.pipeline, COALESCE(p.quota, :default_quota) AS quota
    FROM pairs
    LEFT JOIN pipelines AS p ON p.user_id = pairs.user_id AND p.name = pairs.pipeline
    WHERE NOT EXISTS (
        SELECT 1 FROM queue_slots AS s
        WHERE s.user_id = pairs.user_id AND s.pipeline = pairs.pipeline
          AND s.slot = COALESCE(p.quota, :default_quota) - 1)
),
numbers(n) AS (
    SELECT 0 UNION ALL SELECT n + 1 FROM numbers WHERE n + 1 < (SELECT MAX(quota) FROM short)
)
INSERT INTO queue_slots (user_id, pipeline, slot, task_id)
SELECT short.user_id, short.pipeline, numbers.n, NULL
FROM short JOIN numbers ON numbers.n < short.quota
WHERE true
ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING""")

#: Slots held by tasks that have ended: none, unless a process of a version before the
#: slots (or a hand-made change) ended a task without giving its slot back. Only ended
#: tasks (succ, fail, del) count: they never run again, so freeing their slots cannot race
#: a claim that is taking one (a task still queued may be that claim's).
_REPAIR = text("""
UPDATE queue_slots SET task_id = NULL
WHERE task_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM tasks AS t
    WHERE t.task_id = queue_slots.task_id AND t.status IN ('succ', 'fail', 'del')
)""")

#: Whether any top-level task is queued (else a claim that found nothing has no slot to add).
_QUEUED = text("SELECT 1 FROM tasks WHERE status = 'init' AND parent_id IS NULL LIMIT 1")

_FREE = text(
    "UPDATE queue_slots SET task_id = NULL"
    " WHERE user_id = :user_id AND pipeline = :pipeline AND task_id = :task_id"
)
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")


# -- operations -----------------------------------------------------------------------


def claim(
    engine: Engine,
    owner: str,
    now: float,
    lease_seconds: float,
    rules: PipelineRules | None,
    task_types: frozenset[str] | None,
    pipelines: frozenset[str] | None,
    parent: str | None,
) -> Row[Any] | None:
    """Start the next task ``owner`` may run (see the module docstring); its ``tasks`` row
    as it now is, or None when nothing may start."""
    values: dict[str, Any] = {
        "owner": owner,
        "now": now,
        "expires": now + lease_seconds,
        "clock": day_seconds(now),
        "default_quota": rules.default_quota if rules is not None else 0,
        "parent": parent,
    }
    if task_types is not None:
        if not task_types:
            return None
        values["task_types"] = sorted(task_types)
    if pipelines is not None:
        if not pipelines:
            return None
        values["pipelines"] = sorted(pipelines)
    shape = (task_types is not None, pipelines is not None, parent is not None, rules is not None)
    # Slots are only taken (and so only topped up) by top-level tasks under rules.
    slots = rules is not None and parent is None
    if engine.dialect.name == "postgresql":
        return _claim_postgresql(engine, _claim_sql(*shape), values, slots)
    with engine.begin() as conn:
        return _claim_sqlite(conn, _sqlite_sql(*shape), values, slots)


def _claim_postgresql(
    engine: Engine, statement: TextClause, values: dict[str, Any], slots: bool
) -> Row[Any] | None:
    # Every statement is a transaction of its own (autocommit): no BEGIN and COMMIT to wait
    # for, no lock held between statements.
    topped_up = False
    tries = 0
    with single_statements(engine) as conn:
        while True:
            row = conn.execute(statement, values).one()
            if row.task_id is not None:
                return row
            tries += 1
            if row.candidates and tries < RETRIES:
                continue  # the candidate's free slots went to concurrent claimers
            if row.candidates or topped_up or not slots or not row.queued:
                return None
            topped_up = True
            if not _top_up(conn, values):
                return None


def _top_up(conn: Connection, values: dict[str, Any]) -> bool:
    """After a claim found nothing to start: create the missing slots and free those of
    ended tasks. Whether anything changed (then the claim is worth another try)."""
    added = conn.execute(_TOP_UP, values).rowcount
    freed = conn.execute(_REPAIR).rowcount
    return bool(added or freed)


def _claim_sqlite(
    conn: Connection, statement: TextClause, values: dict[str, Any], slots: bool
) -> Row[Any] | None:
    found = conn.execute(statement, values).first()
    if found is None and slots and conn.execute(_QUEUED).first() and _top_up(conn, values):
        found = conn.execute(statement, values).first()
    if found is None:
        return None
    row = conn.execute(_SQLITE_START, {**values, "id": found.id}).first()
    if row is not None and found.slot is not None:
        conn.execute(
            _SQLITE_TAKE,
            {
                "task_id": row.task_id,
                "user_id": row.user_id,
                "pipeline": row.pipeline,
                "slot": found.slot,
            },
        )
    return row


def single_statements(engine: Engine) -> Connection:
    """A connection whose statements each commit by themselves (PostgreSQL autocommit): for
    work done in one statement, it saves the round trips of BEGIN and COMMIT."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def ending(change: Update, postgresql: bool) -> Executable:
    """The statement that runs ``change``, an UPDATE of ``tasks`` that takes one running
    task out of ``exec`` (finished or requeued), for :func:`end` (build it once: building
    costs more than running it). On PostgreSQL, one statement also gives back the task's
    slot (an UPDATE of ``queue_slots`` in a CTE fed by the task's); on SQLite, :func:`end`
    runs a second one."""
    ended = change.returning(tasks.c.user_id, tasks.c.pipeline, tasks.c.task_id, tasks.c.parent_id)
    if not postgresql:
        return ended
    task = ended.cte("ended")
    freed = (
        update(queue_slots)
        .where(
            task.c.parent_id.is_(None),
            queue_slots.c.user_id == task.c.user_id,
            queue_slots.c.pipeline == task.c.pipeline,
            queue_slots.c.task_id == task.c.task_id,
        )
        .values(task_id=None)
        .returning(queue_slots.c.slot)
        .cte("freed")
    )
    return select(func.count()).select_from(task).add_cte(freed)


def end(conn: Connection, statement: Executable, values: dict[str, Any]) -> bool:
    """Run a statement of :func:`ending` and give back the slot the task held (none for
    parts, or for a task claimed without rules), in ``conn``'s transaction. Whether a task
    was ended (False: it was not running under the lease the statement names)."""
    if conn.dialect.name == "postgresql":
        return bool(conn.execute(statement, values).scalar())
    row = conn.execute(statement, values).first()
    if row is None:
        return False
    if row.parent_id is None:
        conn.execute(
            _FREE, {"user_id": row.user_id, "pipeline": row.pipeline, "task_id": row.task_id}
        )
    return True


def announce(conn: Connection) -> None:
    """Tell idle workers of every process that a task may start (PostgreSQL ``NOTIFY``,
    delivered when ``conn``'s transaction commits; nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY)
