"""Tasks, which are also the queue: every statement on the ``tasks`` table.

The life of a row: ``create`` (status init) → ``claim`` (exec, with a lease) → ``heartbeat``
while it runs → ``finish`` (succ/fail, and its callback into the outbox in the same
transaction). A worker that dies stops renewing its lease; ``expired`` finds such rows and
the worker layer either ``release``s them or finishes them with 2057 (``held_under`` finds
the rows of one machine's processes, so a restarted worker takes back its dead
predecessor's tasks without waiting for their leases). Every write by a worker names the
lease owner, so a worker that lost its lease can never overwrite the row.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    bindparam,
    func,
    select,
    text,
    tuple_,
    update,
)

from openkvs.model import NewTask, Pipeline, TaskRecord, TaskStatus
from openkvs.store import outbox
from openkvs.store.client_tokens import ClientTokens
from openkvs.store.schema import pipelines, tasks

#: (user id, pipeline name) → running tasks; pipelines → the pairs that may not start now.
Running = dict[tuple[int, str], int]
Blocker = Callable[[list[tuple[int, Pipeline]], Running], set[tuple[int, str]]]


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


@functools.lru_cache(maxsize=32)
def _page_statements(
    status: bool, error_code: bool, actions: bool, task_type: bool
) -> tuple[Select[Any], Select[Any]]:
    """GetTaskList's count and page statements for one combination of filters, built once:
    the values are bound (``user_id``, ``since``, ``until``, ``status``, ``error_code``,
    ``actions``, ``task_type``, ``offset``, ``limit``)."""
    where = [
        tasks.c.user_id == bindparam("user_id"),
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
                },
            )
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
        blocked: Blocker | None = None,
        task_types: frozenset[str] | None = None,
    ) -> TaskRecord | None:
        """Take the next queued task for ``owner``, or None when nothing may start.

        With ``task_types``, only tasks of those kinds (the ones the worker has executors
        for) are candidates.

        The candidate is the first ``init`` row by (top flag, time topped, age) whose
        (user, pipeline) is not in ``blocked(pipelines, running counts)``: paused, outside
        its daily window, or at its quota. The claim is serialised: on SQLite the
        transaction holds the write lock from its start (``BEGIN IMMEDIATE``); on
        PostgreSQL an advisory lock, so that the running counts the quota is checked
        against cannot change under the claim (``FOR UPDATE SKIP LOCKED`` still keeps a
        claimer off rows another transaction has locked).
        """
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7350913)"))
            candidate = (
                select(tasks.c.id)
                .where(tasks.c.status == _INIT)
                .order_by(tasks.c.is_top.desc(), tasks.c.top_at, tasks.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if task_types is not None:
                candidate = candidate.where(tasks.c.task_type.in_(sorted(task_types)))
            if blocked is not None:
                closed = blocked(self._pipelines(conn), self._running(conn))
                if closed:
                    candidate = candidate.where(
                        tuple_(tasks.c.user_id, tasks.c.pipeline).not_in(sorted(closed))
                    )
            task_pk = conn.execute(candidate).scalar()
            if task_pk is None:
                return None
            row = conn.execute(
                update(tasks)
                .where(tasks.c.id == task_pk, tasks.c.status == _INIT)
                .values(
                    status=_EXEC,
                    lease_owner=owner,
                    lease_expires_at=now + lease_seconds,
                    attempts=tasks.c.attempts + 1,
                    started_at=func.coalesce(tasks.c.started_at, now),
                    updated_at=now,
                )
                .returning(*tasks.c)
            ).first()
        return None if row is None else _record(row)

    @staticmethod
    def _pipelines(conn: Connection) -> list[tuple[int, Pipeline]]:
        from openkvs.store.pipelines import _pipeline

        return [(r.user_id, _pipeline(r)) for r in conn.execute(select(pipelines))]

    @staticmethod
    def _running(conn: Connection) -> Running:
        rows = conn.execute(
            select(tasks.c.user_id, tasks.c.pipeline, func.count())
            .where(tasks.c.status == _EXEC)
            .group_by(tasks.c.user_id, tasks.c.pipeline)
        ).all()
        return {(r[0], r[1]): int(r[2]) for r in rows}

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
        with self._engine.begin() as conn:
            done = conn.execute(
                update(tasks)
                .where(*self._held(task_id, owner, expired_before))
                .values(
                    status=status.value,
                    error_code=error_code,
                    error_msg=error_msg,
                    result=None if result is None else json.dumps(result, ensure_ascii=False),
                    progress=100 if status is TaskStatus.SUCC else tasks.c.progress,
                    lease_owner=None,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                )
            ).rowcount
            if done != 1:
                return False
            if callback is not None:
                url, body = callback
                outbox.enqueue(conn, task_id=task_id, url=url, body=body, now=now)
        return True

    @staticmethod
    def _held(task_id: str, owner: str | None, expired_before: float | None) -> list[Any]:
        """WHERE clauses: the task runs under ``owner``'s lease (and it ran out)."""
        clauses = [
            tasks.c.task_id == task_id,
            tasks.c.lease_owner == owner,
            tasks.c.status == _EXEC,
        ]
        if expired_before is not None:
            clauses.append(tasks.c.lease_expires_at < expired_before)
        return clauses

    def release(
        self,
        task_id: str,
        owner: str,
        now: float,
        *,
        count_attempt: bool,
        expired_before: float | None = None,
    ) -> bool:
        """Put a running task back in the queue (a clean shutdown, or a lost worker)."""
        values: dict[str, Any] = {
            "status": _INIT,
            "lease_owner": None,
            "lease_expires_at": None,
            "progress": 0,
            "updated_at": now,
        }
        if not count_attempt:
            values["attempts"] = tasks.c.attempts - 1
        with self._engine.begin() as conn:
            done = conn.execute(
                update(tasks).where(*self._held(task_id, owner, expired_before)).values(**values)
            ).rowcount
        return done == 1

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
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(tasks).where(tasks.c.status == _INIT)
                ).scalar()
                or 0
            )

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
            .where(tasks.c.user_id == user_id, tasks.c.created_at >= since)
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
