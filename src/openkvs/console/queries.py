"""The console's read-only queries: its task list (more filters than GetTaskList, and every
user's tasks for an admin) and a user's pipeline names. Tasks and pipelines are still
written only by their stores."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from openkvs.model import TaskRecord, TaskStatus
from openkvs.store.schema import pipelines, tasks
from openkvs.store.tasks import _record

#: Most rows on one page of the task list.
MAX_LIMIT = 100


@dataclass(frozen=True)
class TaskQuery:
    """The task list's filters; ``user_id`` None: every user's tasks (an admin's view)."""

    user_id: int | None
    status: TaskStatus | None = None
    task_type: str = ""
    pipeline: str = ""
    error_code: int | None = None
    since: float | None = None
    until: float | None = None
    offset: int = 0
    limit: int = 20


def list_tasks(engine: Engine, q: TaskQuery) -> tuple[int, list[TaskRecord]]:
    """(total matching, one page newest first); parts of split tasks are never listed."""
    where = [tasks.c.parent_id.is_(None), tasks.c.status != TaskStatus.DELETED.value]
    if q.user_id is not None:
        where.append(tasks.c.user_id == q.user_id)
    if q.status is not None:
        where.append(tasks.c.status == q.status.value)
    if q.task_type:
        where.append(tasks.c.task_type == q.task_type)
    if q.pipeline:
        where.append(tasks.c.pipeline == q.pipeline)
    if q.error_code is not None:
        where.append(tasks.c.error_code == q.error_code)
    if q.since is not None:
        where.append(tasks.c.created_at >= q.since)
    if q.until is not None:
        where.append(tasks.c.created_at < q.until)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(tasks).where(*where)).scalar()
        rows = conn.execute(
            select(tasks)
            .where(*where)
            .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
            .offset(q.offset)
            .limit(min(max(q.limit, 1), MAX_LIMIT))
        ).all()
    return int(total or 0), [_record(r) for r in rows]


def pipeline_names(engine: Engine, user_id: int) -> list[str]:
    """The user's stored pipelines, by name (``usual`` exists even when not stored)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(pipelines.c.name)
            .where(pipelines.c.user_id == user_id)
            .order_by(pipelines.c.name)
        ).all()
    return [r.name for r in rows]
