"""A pool's row in the worker registry, and its drain, with a scripted executor over SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from openkvs import __version__
from openkvs.errors import TaskError
from openkvs.model import NewTask, TaskStatus
from openkvs.service.ids import new_task_id
from openkvs.storage.local import LocalStorage
from openkvs.store.database import open_engine
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore
from openkvs.store.workers import WorkerRecord, WorkerRegistry, WorkerState
from openkvs.worker.job import Job, JobMaker
from openkvs.worker.pool import PoolSettings, WorkerPool
from openkvs.worker.registry import Membership


class Held:
    """Runs each task until the test lets it go (``done``) or the pool cancels it."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.done = threading.Event()

    def run(self, job: Job) -> list[dict[str, Any]]:
        self.started.release()
        while not self.done.is_set():
            if job.cancel.wait(0.02):
                raise TaskError(2005, "cancelled")
        return [{"dstpath": "k.json"}]


@pytest.fixture
def sqlite(tmp_path: Path) -> Engine:
    return open_engine(f"sqlite:///{tmp_path}/db.sqlite")


def _add(engine: Engine, pipeline: str = "usual") -> str:
    user = UserStore(engine, Sealer(bytes(32))).ensure_user("u")
    task_id = new_task_id(time.time())
    TaskStore(engine).create(
        NewTask(
            task_id=task_id,
            user_id=user.id,
            action="CreateWaveTask",
            task_type="audiowave",
            preset="wave",
            pipeline=pipeline,
            is_top=False,
            request={"DstBucket": "b", "DstObjectKey": "k.json"},
        ),
        time.time(),
    )
    return task_id


def _pool(engine: Engine, executor: Held, **settings: Any) -> WorkerPool:
    folder = Path(str(engine.url.database)).parent
    return WorkerPool(
        TaskStore(engine),
        {"audiowave": executor},
        PoolSettings(
            **{
                "workers": 2,
                "lease_seconds": 1.5,
                "max_attempts": 3,
                "poll_seconds": 0.05,
                "heartbeat_seconds": 0.2,
                **settings,
            }
        ),
        jobs=JobMaker(LocalStorage(folder / "buckets"), folder / "scratch", 60),
        registry=WorkerRegistry(engine),
    )


def _rows(engine: Engine) -> list[WorkerRecord]:
    return WorkerRegistry(engine).list_workers(time.time(), 3600)


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_pool_registers_shows_its_tasks_drains_and_unregisters(sqlite: Engine) -> None:
    executor = Held()
    pool = _pool(sqlite, executor, pipelines=frozenset({"fast"}), grace_seconds=60)
    pool.start()
    [row] = _rows(sqlite)
    assert (row.id, row.pipelines, row.task_types, row.concurrency) == (
        pool.worker_id,
        ("fast",),
        ("audiowave",),
        2,
    )
    assert (row.state, row.running, row.version) == (WorkerState.ALIVE, (), __version__)
    task_id = _add(sqlite, "fast")
    assert executor.started.acquire(timeout=10)
    claimed = TaskStore(sqlite).get(task_id)
    assert claimed is not None and (claimed.lease_owner or "").startswith(pool.worker_id + ":")
    _until(lambda: _rows(sqlite)[0].running == (task_id,))

    stopping = threading.Thread(target=pool.stop)
    stopping.start()
    _until(lambda: _rows(sqlite)[0].state is WorkerState.DRAINING)
    assert _rows(sqlite)[0].running == (task_id,)
    # The drain outlasts two leases: the lease keeper goes on renewing the task's lease.
    time.sleep(3.0)
    assert TaskStore(sqlite).expired(time.time()) == []
    queued = _add(sqlite, "fast")  # a draining pool claims nothing more
    executor.done.set()
    stopping.join(30)
    assert not stopping.is_alive()
    done = TaskStore(sqlite).get(task_id)
    assert done is not None and (done.status, done.attempts) == (TaskStatus.SUCC, 1)
    left = TaskStore(sqlite).get(queued)
    assert left is not None and left.status is TaskStatus.INIT
    assert _rows(sqlite) == []


def test_tasks_over_the_grace_time_go_back_to_the_queue(sqlite: Engine) -> None:
    executor = Held()
    pool = _pool(sqlite, executor, grace_seconds=0.2)
    pool.start()
    task_id = _add(sqlite)
    assert executor.started.acquire(timeout=10)
    pool.stop()
    task = TaskStore(sqlite).get(task_id)
    assert task is not None
    assert (task.status, task.attempts, task.lease_owner) == (TaskStatus.INIT, 0, None)
    assert _rows(sqlite) == []


def test_a_pool_claims_only_tasks_of_its_pipelines(sqlite: Engine) -> None:
    other = _add(sqlite, "usual")  # older: a pool ignoring the filter would take it first
    mine = _add(sqlite, "fast")
    executor = Held()
    executor.done.set()
    pool = _pool(sqlite, executor, workers=1, pipelines=frozenset({"fast"}))
    pool.start()
    try:
        _until(lambda: getattr(TaskStore(sqlite).get(mine), "status", None) is TaskStatus.SUCC)
        left = TaskStore(sqlite).get(other)
        assert left is not None and (left.status, left.attempts) == (TaskStatus.INIT, 0)
    finally:
        pool.stop()


def test_a_missing_row_is_written_again_at_the_next_heartbeat(sqlite: Engine) -> None:
    registry = WorkerRegistry(sqlite)
    worker = WorkerRecord(
        id="h:m:1:2:abcdef",
        host="h",
        pid=1,
        pipelines=(),
        task_types=("avinfo",),
        concurrency=1,
        version="v",
        state=WorkerState.ALIVE,
        running=(),
        started_at=0.0,
        heartbeat_at=0.0,
    )
    membership = Membership(registry, worker, heartbeat_seconds=10)
    membership.join(100.0)
    registry.unregister(worker.id)  # pruned, or deleted by hand
    membership.beat(101.0, ["t1"], draining=False)  # the running set changed: written now
    [row] = registry.list_workers(101.0, 30)
    assert (row.running, row.started_at, row.heartbeat_at) == (("t1",), 100.0, 101.0)
    membership.beat(102.0, ["t1"], draining=False)  # nothing changed, not due: no write
    assert registry.list_workers(102.0, 30)[0].heartbeat_at == 101.0
    membership.beat(111.0, ["t1"], draining=False)  # due
    assert registry.list_workers(111.0, 30)[0].heartbeat_at == 111.0
    membership.leave()
    assert registry.list_workers(111.0, 30) == []
