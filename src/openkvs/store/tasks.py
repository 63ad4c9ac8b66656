"""Tasks, which are also the queue: every statement on the ``tasks`` table but the claim's
(``store/queue.py``).

The life of a row: ``create`` (status init) → ``claim`` (exec, with a lease, and a slot of
its pipeline's quota) → ``heartbeat`` while it runs → ``finish`` (succ/fail, its slot freed
and its callback into the outbox in the same transaction). A worker that dies stops
renewing its lease; ``expired`` finds such rows and the worker layer either ``release``s
them or finishes them with 2057 (``held_under`` finds the rows of one machine's processes,
so a restarted worker takes back its dead predecessor's tasks without waiting for their
leases). Every write by a worker names the lease owner, so a worker that lost its lease
can never overwrite the row. ``finish`` and ``release`` are the only ways out of ``exec``:
both free the task's slot in their transaction.

Parts (rows with a ``parent_id``: the chunks of a split task) are internal: GetTaskList,
the statistics and ``queued_count`` never count them.
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Integer,
    Row,
    Select,
    bindparam,
    func,
    select,
    update,
)

from openkvs.model import NewTask, TaskRecord, TaskStatus
from openkvs.store import outbox, queue
from openkvs.store.client_tokens import ClientTokens
from openkvs.store.queue import PipelineRules
from openkvs.store.schema import tasks

#: What a worker pool hands to :meth:`TaskStore.claim`: the pipeline rules it enforces.
Blocker = PipelineRules


class Outcome(enum.Enum):
    """What a top or delete request did."""

    DONE = "done"  # topped, or removed from the queue
    CANCELLING = "cancelling"  # running: its worker was asked to stop
    FINISHED = "finished"  # already succ/fail (or deleted): nothing to do
    MISSING = "missing"  # no such task for this user


@dataclass(frozen=True)
class TaskFilter:
    """GetTaskList's filters: creation time in [since, until), status, error code, action."""

    since: float
    until: float
    status: TaskStatus | None = None
    error_code: int | None = None
    actions: tuple[str, ...] = ()
    task_type: str | None = None


_EXEC = TaskStatus.EXEC.value
_INIT = TaskStatus.INIT.value
_STATUSES = {s.value: s for s in TaskStatus}  # a dict lookup costs less than TaskStatus(v)

# GetTaskByTaskID's statements, built once: building a statement on the 23 columns of
# ``tasks`` and computing its cache key costs more than running it.
_GET = select(tasks).where(
    tasks.c.task_id == bindparam("task_id"), tasks.c.status != TaskStatus.DELETED.value
)
_GET_OWN = _GET.where(tasks.c.user_id == bindparam("user_id"))
_INSERT = tasks.insert()
_QUEUED = (
    select(func.count())
    .select_from(tasks)
    .where(tasks.c.status == _INIT, tasks.c.parent_id.is_(None))
)


@functools.lru_cache(maxsize=32)
def _page_statements(
    status: bool, error_code: bool, actions: bool, task_type: bool
) -> tuple[Select[Any], Select[Any]]:
    """GetTaskList's count and page statements for one combination of filters, built once:
    the values are bound (``user_id``, ``since``, ``until``, ``status``, ``error_code``,
    ``actions``, ``task_type``, ``offset``, ``limit``)."""
    where = [
        tasks.c.user_id == bindparam("user_id"),
        tasks.c.parent_id.is_(None),
        tasks.c.status != TaskStatus.DELETED.value,
        tasks.c.created_at >= bindparam("since"),
        tasks.c.created_at < bindparam("until"),
    ]
    if status:
        where.append(tasks.c.status == bindparam("status"))
    if error_code:
        where.append(tasks.c.error_code == bindparam("error_code"))
    if actions:
        where.append(tasks.c.action.in_(bindparam("actions", expanding=True)))
    if task_type:
        where.append(tasks.c.task_type == bindparam("task_type"))
    count = select(func.count()).select_from(tasks).where(*where)
    rows = (
        select(tasks)
        .where(*where)
        .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    return count, rows


def _held(ownerless: bool, expired: bool) -> list[Any]:
    """WHERE clauses: the task (``held_task_id``) runs under the lease of ``owner`` (and it ran
    out before ``expired_before``)."""
    clauses = [
        tasks.c.task_id == bindparam("held_task_id"),
        tasks.c.lease_owner.is_(None) if ownerless else tasks.c.lease_owner == bindparam("owner"),
        tasks.c.status == _EXEC,
    ]
    if expired:
        clauses.append(tasks.c.lease_expires_at < bindparam("expired_before"))
    return clauses


@functools.lru_cache(maxsize=8)
def _finish_statement(ownerless: bool, expired: bool, postgresql: bool) -> Executable:
    """``finish``'s statement, built once (see ``store/queue.py`` ``ending``)."""
    change = (
        update(tasks)
        .where(*_held(ownerless, expired))
        .values(
            status=bindparam("new_status"),
            error_code=bindparam("new_error_code"),
            error_msg=bindparam("new_error_msg"),
            result=bindparam("new_result"),
            progress=func.coalesce(bindparam("new_progress", type_=Integer), tasks.c.progress),
            lease_owner=None,
            lease_expires_at=None,
            finished_at=bindparam("now"),
            updated_at=bindparam("now"),
        )
    )
    return queue.ending(change, postgresql)


@functools.lru_cache(maxsize=8)
def _release_statement(count_attempt: bool, expired: bool, postgresql: bool) -> Executable:
    """``release``'s statement, built once: back to ``init``, the attempt given back unless
    it counts."""
    change = (
        update(tasks)
        .where(*_held(False, expired))
        .values(
            status=_INIT,
            lease_owner=None,
            lease_expires_at=None,
            progress=0,
            updated_at=bindparam("now"),
            attempts=tasks.c.attempts if count_attempt else tasks.c.attempts - 1,
        )
    )
    return queue.ending(change, postgresql)


def _record(row: Row) -> TaskRecord:
    return TaskRecord(
        task_id=row.task_id,
        user_id=row.user_id,
        action=row.action,
        task_type=row.task_type,
        preset=row.preset,
        pipeline=row.pipeline,
        is_top=bool(row.is_top),
        status=_STATUSES.get(row.status) or TaskStatus(row.status),
        request=json.loads(row.request),
        error_code=row.error_code,
        error_msg=row.error_msg,
        result=None if row.result is None else json.loads(row.result),
        progress=row.progress,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        lease_owner=row.lease_owner,
        cancel_requested=bool(row.cancel_requested),
        parent_id=row.parent_id,
    )


class TaskStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._tokens = ClientTokens()

    def create(self, new: NewTask, now: float, *, client_token: str = "") -> str:
        """Queue ``new``; returns its TaskID. With a ``client_token`` the user already used
        in the last 24 hours, nothing is stored and the TaskID of that first request is
        returned instead (see ``store/client_tokens.py``)."""
        with self._engine.begin() as conn:
            if client_token:
                held = self._tokens.reserve(conn, new.user_id, client_token, new.task_id, now)
                if held != new.task_id:
                    return held
            conn.execute(
                _INSERT,  # one statement object: its compiled form is cached
                {
                    "task_id": new.task_id,
                    "user_id": new.user_id,
                    "action": new.action,
                    "task_type": new.task_type,
                    "preset": new.preset,
                    "pipeline": new.pipeline,
                    "is_top": int(new.is_top),
                    "top_at": now if new.is_top else None,
                    "status": _INIT,
                    "request": new.request_json(),
                    "error_code": 0,
                    "error_msg": "",
                    "progress": 0,
                    "attempts": 0,
                    "cancel_requested": 0,
                    "created_at": now,
                    "updated_at": now,
                    "parent_id": new.parent_id,
                },
            )
            queue.announce(conn)
        return new.task_id

    def get(self, task_id: str, user_id: int | None = None) -> TaskRecord | None:
        """The task, or None when it does not exist, is deleted, or is another user's."""
        query, values = _GET, {"task_id": task_id, "user_id": user_id}
        if user_id is not None:
            query = _GET_OWN
        with self._engine.connect() as conn:
            row = conn.execute(query, values).first()
        return None if row is None else _record(row)

    def claim(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        blocked: PipelineRules | None = None,
        task_types: frozenset[str] | None = None,
        *,
        pipelines: frozenset[str] | None = None,
        parent: str | None = None,
    ) -> TaskRecord | None:
        """Take the next queued task for ``owner``, or None when nothing may start.

        Parts of split tasks go first, then top-level tasks by (top flag, time topped,
        age). With ``blocked`` (the pipeline rules), a top-level task starts only if its
        pipeline is Active, inside its daily window, and has a free slot below its Quota,
        which the task then holds until it ends; without, any queued task starts. With
        ``task_types``, only tasks of those kinds (the ones the worker has executors for)
        are candidates; with ``pipelines``, only tasks of pipelines of those names (a
        worker started with ``--pipelines``); with ``parent``, only the parts of that task
        (a split task's worker runs its own parts while it waits for them). See
        ``store/queue.py`` for how the claim is made on each database.
        """
        row = queue.claim(
            self._engine, owner, now, lease_seconds, blocked, task_types, pipelines, parent
        )
        return None if row is None else _record(row)

    def heartbeat(
        self, task_id: str, owner: str, now: float, lease_seconds: float, progress: int | None
    ) -> bool | None:
        """Renew the lease. Returns whether cancellation was asked for, or None when the
        lease was lost (the task was taken back or finished by someone else)."""
        values: dict[str, Any] = {"lease_expires_at": now + lease_seconds, "updated_at": now}
        if progress is not None:
            values["progress"] = progress
        with self._engine.begin() as conn:
            row = conn.execute(
                update(tasks)
                .where(
                    tasks.c.task_id == task_id,
                    tasks.c.lease_owner == owner,
                    tasks.c.status == _EXEC,
                )
                .values(**values)
                .returning(tasks.c.cancel_requested)
            ).first()
        return None if row is None else bool(row.cancel_requested)

    def finish(
        self,
        task_id: str,
        owner: str | None,
        *,
        status: TaskStatus,
        error_code: int,
        error_msg: str,
        result: list[dict[str, Any]] | None,
        callback: tuple[str, dict[str, Any]] | None,
        now: float,
        expired_before: float | None = None,
    ) -> bool:
        """End a running task held by ``owner`` and enqueue its callback (url, body), all in
        one transaction. False (and nothing written) when ``owner`` no longer holds it.
        With ``expired_before``, only if the lease ran out before that time (recovery)."""
        values: dict[str, Any] = {
            "held_task_id": task_id,
            "owner": owner,
            "expired_before": expired_before,
            "new_status": status.value,
            "new_error_code": error_code,
            "new_error_msg": error_msg,
            "new_result": None if result is None else json.dumps(result, ensure_ascii=False),
            "new_progress": 100 if status is TaskStatus.SUCC else None,
            "now": now,
        }
        postgresql = self._engine.dialect.name == "postgresql"
        statement = _finish_statement(owner is None, expired_before is not None, postgresql)
        if callback is None and postgresql:
            with queue.single_statements(self._engine) as conn:  # one statement does it all
                return queue.end(conn, statement, values)
        with self._engine.begin() as conn:
            if not queue.end(conn, statement, values):
                return False
            if callback is not None:
                url, body = callback
                outbox.enqueue(conn, task_id=task_id, url=url, body=body, now=now)
        return True

    def release(
        self,
        task_id: str,
        owner: str,
        now: float,
        *,
        count_attempt: bool,
        expired_before: float | None = None,
    ) -> bool:
        """Put a running task back in the queue (a clean shutdown, or a lost worker); its
        slot is freed and idle workers of every process are told."""
        values = {
            "held_task_id": task_id,
            "owner": owner,
            "expired_before": expired_before,
            "now": now,
        }
        postgresql = self._engine.dialect.name == "postgresql"
        statement = _release_statement(count_attempt, expired_before is not None, postgresql)
        with self._engine.begin() as conn:
            if not queue.end(conn, statement, values):
                return False
            queue.announce(conn)
        return True

    def expired(self, now: float, limit: int = 20) -> list[TaskRecord]:
        """Running tasks whose lease ran out: their worker died or hangs."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(tasks)
                .where(tasks.c.status == _EXEC, tasks.c.lease_expires_at < now)
                .order_by(tasks.c.lease_expires_at)
                .limit(limit)
            ).all()
        return [_record(r) for r in rows]

    def held_under(self, owner_prefix: str, limit: int = 100) -> list[TaskRecord]:
        """Running tasks whose lease owner starts with ``owner_prefix``: the tasks held by
        the processes of one machine, whatever their leases say (the worker layer then
        takes back those whose process is gone). ``%`` and ``_`` in the prefix are
        literal. A handful of rows: only running tasks are looked at."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(tasks)
                .where(
                    tasks.c.status == _EXEC,
                    tasks.c.lease_owner.startswith(owner_prefix, autoescape=True),
                )
                .order_by(tasks.c.id)
                .limit(limit)
            ).all()
        return [_record(r) for r in rows]

    def queued_count(self) -> int:
        """Top-level tasks waiting to start (parts are not counted)."""
        with self._engine.connect() as conn:
            return int(conn.execute(_QUEUED).scalar() or 0)

    # -- management (GetTaskList, TopTaskByTaskID, DelTaskByTaskID, statistics) -------

    def page(
        self, user_id: int, f: TaskFilter, offset: int, limit: int
    ) -> tuple[int, list[TaskRecord]]:
        """(total matching, one page newest first)."""
        count, rows_query = _page_statements(
            f.status is not None, f.error_code is not None, bool(f.actions), f.task_type is not None
        )
        values: dict[str, Any] = {
            "user_id": user_id,
            "since": f.since,
            "until": f.until,
            "status": None if f.status is None else f.status.value,
            "error_code": f.error_code,
            "actions": list(f.actions),
            "task_type": f.task_type,
        }
        with self._engine.connect() as conn:
            total = conn.execute(count, values).scalar()
            rows = conn.execute(rows_query, {**values, "offset": offset, "limit": limit}).all()
        return int(total or 0), [_record(r) for r in rows]

    def status_counts(
        self, user_id: int, since: float, *, pipeline: str | None = None, preset: str | None = None
    ) -> dict[TaskStatus, int]:
        """How many of the user's tasks created since ``since`` are in each status."""
        query = (
            select(tasks.c.status, func.count())
            .where(
                tasks.c.user_id == user_id,
                tasks.c.created_at >= since,
                tasks.c.parent_id.is_(None),
            )
            .group_by(tasks.c.status)
        )
        if pipeline is not None:
            query = query.where(tasks.c.pipeline == pipeline)
        if preset is not None:
            query = query.where(tasks.c.preset == preset)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return {TaskStatus(r[0]): int(r[1]) for r in rows}

    def finished_between(
        self, user_id: int, task_types: tuple[str, ...], start: float, end: float
    ) -> list[TaskRecord]:
        """Successful tasks of ``task_types`` that finished in [start, end)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(tasks).where(
                    tasks.c.user_id == user_id,
                    tasks.c.parent_id.is_(None),
                    tasks.c.status == TaskStatus.SUCC.value,
                    tasks.c.task_type.in_(task_types),
                    tasks.c.finished_at >= start,
                    tasks.c.finished_at < end,
                )
            ).all()
        return [_record(r) for r in rows]

    def _status_of(self, conn: Connection, task_id: str, user_id: int) -> str | None:
        return conn.execute(
            select(tasks.c.status).where(tasks.c.task_id == task_id, tasks.c.user_id == user_id)
        ).scalar()

    def top(self, task_id: str, user_id: int, now: float) -> Outcome:
        """Put a queued task ahead of every non-top task (top tasks stay FIFO)."""
        with self._engine.begin() as conn:
            status = self._status_of(conn, task_id, user_id)
            if status is None or status == TaskStatus.DELETED.value:
                return Outcome.MISSING
            if status != _INIT:
                return Outcome.FINISHED
            conn.execute(
                update(tasks)
                .where(tasks.c.task_id == task_id)
                .values(is_top=1, top_at=now, updated_at=now)
            )
        return Outcome.DONE

    def delete(self, task_id: str, user_id: int, now: float) -> Outcome:
        """Remove a queued task, or ask the worker of a running one to stop it."""
        with self._engine.begin() as conn:
            status = self._status_of(conn, task_id, user_id)
            if status is None or status == TaskStatus.DELETED.value:
                return Outcome.MISSING
            if status == _INIT:
                conn.execute(
                    update(tasks)
                    .where(tasks.c.task_id == task_id)
                    .values(status=TaskStatus.DELETED.value, updated_at=now, finished_at=now)
                )
                return Outcome.DONE
            if status == _EXEC:
                conn.execute(
                    update(tasks)
                    .where(tasks.c.task_id == task_id)
                    .values(cancel_requested=1, updated_at=now)
                )
                return Outcome.CANCELLING
        return Outcome.FINISHED
