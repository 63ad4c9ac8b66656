"""What ``/metrics`` and ``/readyz`` read from the database at each scrape: queue depth and
the oldest waiting task per pipeline, running tasks, workers' heartbeats, and a ping."""

from __future__ import annotations

import json

from sqlalchemy import Engine, func, select, text

from openkvs.metrics import QueueFacts, WorkerFacts
from openkvs.model import TaskStatus
from openkvs.store.schema import tasks, users, workers


def ping(engine: Engine) -> None:
    """Raise when the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def queue_facts(engine: Engine, now: float) -> list[QueueFacts]:
    """Waiting and running tasks per (user, pipeline); parts of split tasks not counted."""
    waiting = TaskStatus.INIT.value
    running = TaskStatus.EXEC.value
    query = (
        select(
            users.c.name,
            tasks.c.pipeline,
            tasks.c.status,
            func.count(),
            func.min(tasks.c.created_at),
        )
        .join(users, users.c.id == tasks.c.user_id)
        .where(tasks.c.status.in_([waiting, running]), tasks.c.parent_id.is_(None))
        .group_by(users.c.name, tasks.c.pipeline, tasks.c.status)
    )
    found: dict[tuple[str, str], list[float]] = {}
    with engine.connect() as conn:
        for user, pipeline, status, count, oldest in conn.execute(query):
            entry = found.setdefault((user, pipeline), [0, 0.0, 0])
            if status == waiting:
                entry[0] = count
                entry[1] = max(0.0, now - float(oldest or now))
            else:
                entry[2] = count
    return [
        QueueFacts(user, pipeline, int(q), age, int(r))
        for (user, pipeline), (q, age, r) in sorted(found.items())
    ]


def worker_facts(engine: Engine, now: float) -> list[WorkerFacts]:
    """Every registered worker's heartbeat age and running count."""
    with engine.connect() as conn:
        rows = conn.execute(select(workers.c.id, workers.c.heartbeat_at, workers.c.running))
        out = []
        for worker_id, beat, running in rows:
            try:
                count = len(json.loads(running or "[]"))
            except ValueError:
                count = 0
            out.append(WorkerFacts(worker_id, max(0.0, now - float(beat)), count))
    return out
