"""The worker registry (``workers``): which processes run tasks, and whether they live.

Each process with a worker pool (``openkvs worker``, the pool of ``openkvs serve``) writes
its row when it starts, renews ``heartbeat_at`` while it lives (with the TaskIDs it runs
and whether it is draining), and deletes the row when it stops cleanly. A process that dies
without stopping (``kill -9``, a power cut, a lost network) leaves its row behind: the row
is shown as *lost* once its heartbeat is older than :func:`lost_after`, and deleted by the
next process that starts (or by a running one, hourly) a day after its last heartbeat.

The registry only shows: it takes nothing back. A lost worker's tasks come back through
their leases, as any dead worker's do (``worker/pool.py``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update

from openkvs.store.schema import workers

#: A lost worker's row is deleted this long after its last heartbeat.
PRUNE_AFTER = 24 * 3600.0
#: A worker is shown lost after this many of its heartbeats were missed (see lost_after).
MISSED_HEARTBEATS = 3


class WorkerState(enum.StrEnum):
    ALIVE = "alive"  # heartbeating and claiming tasks
    DRAINING = "draining"  # stopping (SIGTERM): claims nothing, lets its tasks finish
    LOST = "lost"  # never stored: its heartbeat is older than lost_after()


def lost_after(heartbeat_seconds: float, lease_seconds: float) -> float:
    """Seconds without a heartbeat after which a worker is shown lost:
    :data:`MISSED_HEARTBEATS` heartbeats, and never less than the lease (a lost worker's
    tasks are then being taken back, or have been)."""
    return max(MISSED_HEARTBEATS * heartbeat_seconds, lease_seconds)


@dataclass(frozen=True)
class WorkerRecord:
    """One worker process as registered (``state`` as stored, or LOST when listed)."""

    id: str  # lease owners of its threads start with it (worker/owner.py)
    host: str
    pid: int
    pipelines: tuple[str, ...]  # names it takes tasks from; () = every pipeline
    task_types: tuple[str, ...]  # the task kinds it has executors for
    concurrency: int  # tasks it runs at once
    version: str  # openkvs version
    state: WorkerState
    running: tuple[str, ...]  # TaskIDs it ran at its last heartbeat
    started_at: float
    heartbeat_at: float

    def as_json(self, now: float) -> dict[str, object]:
        """The record for ``openkvs workers --json`` (times as Unix seconds)."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "state": self.state.value,
            "pipelines": list(self.pipelines),
            "task_types": list(self.task_types),
            "concurrency": self.concurrency,
            "running": list(self.running),
            "version": self.version,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
            "heartbeat_age": round(max(0.0, now - self.heartbeat_at), 3),
        }


def _names(raw: str) -> tuple[str, ...]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


class WorkerRegistry:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, worker: WorkerRecord) -> None:
        """Write ``worker``'s row (replacing one of the same id)."""
        with self._engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.id == worker.id))
            conn.execute(
                workers.insert().values(
                    id=worker.id,
                    host=worker.host,
                    pid=worker.pid,
                    pipelines=json.dumps(sorted(worker.pipelines)),
                    task_types=json.dumps(sorted(worker.task_types)),
                    concurrency=worker.concurrency,
                    version=worker.version,
                    state=worker.state.value,
                    running=json.dumps(list(worker.running)),
                    started_at=worker.started_at,
                    heartbeat_at=worker.heartbeat_at,
                )
            )

    def heartbeat(
        self, worker_id: str, now: float, running: Iterable[str], state: WorkerState
    ) -> bool:
        """Renew the row: the time, the running TaskIDs, the state (alive or draining).
        False when there is no such row (pruned, or deleted by hand): register again."""
        if state is WorkerState.LOST:
            raise ValueError("lost is not a state a worker reports")
        with self._engine.begin() as conn:
            result = conn.execute(
                update(workers)
                .where(workers.c.id == worker_id)
                .values(heartbeat_at=now, running=json.dumps(list(running)), state=state.value)
            )
        return result.rowcount > 0

    def unregister(self, worker_id: str) -> None:
        """Delete the row: the process stopped cleanly."""
        with self._engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.id == worker_id))

    def list_workers(self, now: float, lost_after: float) -> list[WorkerRecord]:
        """Every registered worker, by host and start time; a worker whose heartbeat is
        more than ``lost_after`` seconds old is LOST whatever its row says."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(workers).order_by(workers.c.host, workers.c.started_at, workers.c.id)
            ).all()
        found = []
        for row in rows:
            stored = WorkerState.DRAINING if row.state == "draining" else WorkerState.ALIVE
            found.append(
                WorkerRecord(
                    id=row.id,
                    host=row.host,
                    pid=row.pid,
                    pipelines=_names(row.pipelines),
                    task_types=_names(row.task_types),
                    concurrency=row.concurrency,
                    version=row.version,
                    state=WorkerState.LOST if row.heartbeat_at < now - lost_after else stored,
                    running=_names(row.running),
                    started_at=row.started_at,
                    heartbeat_at=row.heartbeat_at,
                )
            )
        return found

    def prune(self, now: float, older_than: float = PRUNE_AFTER) -> int:
        """Delete the rows of workers silent for ``older_than`` seconds; how many."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(workers).where(workers.c.heartbeat_at < now - older_than))
        return result.rowcount
