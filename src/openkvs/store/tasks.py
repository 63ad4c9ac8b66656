"""Tasks, which are also the queue: every statement on the ``tasks`` table.

The life of a row: ``create`` (status init) → ``claim`` (exec, with a lease) → ``heartbeat``
while it runs → ``finish`` (succ/fail, and its callback into the outbox in the same
transaction). A worker that dies stops renewing its lease; ``expired`` finds such rows and
the worker layer either ``requeue``s them or finishes them with 2057. Every write by a
worker names the lease owner, so a worker that lost its lease can never overwrite the row.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, Row, func, select, update

from openkvs.model import NewTask, TaskRecord, TaskStatus
from openkvs.store import outbox
from openkvs.store.schema import tasks

_EXEC = TaskStatus.EXEC.value
_INIT = TaskStatus.INIT.value


def _record(row: Row) -> TaskRecord:
    return TaskRecord(
        task_id=row.task_id,
        user_id=row.user_id,
        action=row.action,
        task_type=row.task_type,
        preset=row.preset,
        pipeline=row.pipeline,
        is_top=bool(row.is_top),
        status=TaskStatus(row.status),
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

    def create(self, new: NewTask, now: float) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                tasks.insert().values(
                    task_id=new.task_id,
                    user_id=new.user_id,
                    action=new.action,
                    task_type=new.task_type,
                    preset=new.preset,
                    pipeline=new.pipeline,
                    is_top=int(new.is_top),
                    top_at=now if new.is_top else None,
                    status=_INIT,
                    request=new.request_json(),
                    error_code=0,
                    error_msg="",
                    progress=0,
                    attempts=0,
                    cancel_requested=0,
                    created_at=now,
                    updated_at=now,
                )
            )

    def get(self, task_id: str, user_id: int | None = None) -> TaskRecord | None:
        """The task, or None when it does not exist, is deleted, or is another user's."""
        query = select(tasks).where(
            tasks.c.task_id == task_id, tasks.c.status != TaskStatus.DELETED.value
        )
        if user_id is not None:
            query = query.where(tasks.c.user_id == user_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def claim(self, owner: str, now: float, lease_seconds: float) -> TaskRecord | None:
        """Take the next queued task for ``owner``, or None when the queue is empty.

        The candidate is the first ``init`` row by (top flag, time topped, age). On
        PostgreSQL ``FOR UPDATE SKIP LOCKED`` makes concurrent claimers pass over rows
        another transaction is taking; on SQLite the whole transaction holds the write
        lock (``BEGIN IMMEDIATE``), so the SELECT and UPDATE are atomic anyway and
        SQLAlchemy renders no locking clause.
        """
        candidate = (
            select(tasks.c.id)
            .where(tasks.c.status == _INIT)
            .order_by(tasks.c.is_top.desc(), tasks.c.top_at, tasks.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as conn:
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

    def queued_count(self) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(tasks).where(tasks.c.status == _INIT)
                ).scalar()
                or 0
            )
