"""The worker pool with fake executors over a real SQLite store."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from openkvs.errors import TaskError
from openkvs.model import NewTask, TaskRecord, TaskStatus
from openkvs.service.ids import new_task_id
from openkvs.storage.local import LocalStorage
from openkvs.store.database import open_engine
from openkvs.store.outbox import OutboxStore
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore
from openkvs.worker.job import Job, JobMaker
from openkvs.worker.pool import PoolSettings, WorkerPool


class Scripted:
    """An executor whose behaviour is chosen per task by ``request["do"]``."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def run(self, job: Job) -> list[dict[str, Any]]:
        task, cancel = job.task, job.cancel
        self.started.set()
        action = task.request["do"]
        if action == "ok":
            return [{"dstpath": task.request["DstObjectKey"]}]
        if action == "fail":
            raise TaskError(3150, "bad input")
        if action == "crash":
            raise RuntimeError("bug")
        # "block": run until cancelled
        cancel.wait(30)
        raise TaskError(2005, "cancelled")


@pytest.fixture
def sqlite(tmp_path: Path) -> Engine:
    return open_engine(f"sqlite:///{tmp_path}/db.sqlite")


def _add(engine: Engine, do: str) -> str:
    user = UserStore(engine, Sealer(bytes(32))).ensure_user("u")
    task_id = new_task_id(time.time())
    TaskStore(engine).create(
        NewTask(
            task_id=task_id,
            user_id=user.id,
            action="CreateWaveTask",
            task_type="audiowave",
            preset="wave",
            pipeline="usual",
            is_top=False,
            request={
                "do": do,
                "CbUrl": "http://127.0.0.1:9/cb",
                "DstBucket": "b",
                "DstObjectKey": "k.json",
            },
        ),
        time.time(),
    )
    return task_id


def _pool(engine: Engine, executor: Scripted, **kw: Any) -> WorkerPool:
    settings = PoolSettings(
        workers=2,
        lease_seconds=kw.get("lease", 5),
        max_attempts=3,
        poll_seconds=0.05,
        grace_seconds=kw.get("grace", 0.2),
    )
    jobs = JobMaker(LocalStorage(_scratch(engine) / "buckets"), _scratch(engine), 60)
    return WorkerPool(TaskStore(engine), {"audiowave": executor}, settings, jobs=jobs)


def _wait_done(store: TaskStore, task_id: str, timeout: float = 10) -> TaskRecord:
    deadline = time.time() + timeout
    while time.time() < deadline:
        task = store.get(task_id)
        assert task is not None
        if task.status in (TaskStatus.SUCC, TaskStatus.FAIL):
            return task
        time.sleep(0.02)
    raise AssertionError("task did not finish")


def _recover_with_pool(engine: Engine, task_id: str) -> TaskRecord:
    """Run a pool with short leases until ``task_id`` has finished."""
    pool = _pool(engine, Scripted(), lease=0.3)
    pool.start()
    try:
        return _wait_done(TaskStore(engine), task_id)
    finally:
        pool.stop()


def _callback_body(engine: Engine, task_id: str) -> dict[str, Any]:
    [(callback, _)] = OutboxStore(engine).for_task(task_id)
    return dict(json.loads(callback.body))


def test_success_failure_and_crash_end_with_callbacks(sqlite: Engine) -> None:
    ok, bad, crash = _add(sqlite, "ok"), _add(sqlite, "fail"), _add(sqlite, "crash")
    pool = _pool(sqlite, Scripted())
    pool.start()
    try:
        store = TaskStore(sqlite)
        assert _wait_done(store, ok).status is TaskStatus.SUCC
        failed = _wait_done(store, bad)
        assert (failed.status, failed.error_code) == (TaskStatus.FAIL, 3150)
        crashed = _wait_done(store, crash)
        assert (crashed.error_code, crashed.error_msg) == (2001, "Unknown Error")
    finally:
        pool.stop()
    assert _callback_body(sqlite, ok)["Details"]["items"] == [{"dstpath": "k.json"}]
    assert _callback_body(sqlite, bad)["Details"]["errnum"] == 3150
    assert _callback_body(sqlite, crash)["Status"] == 4


def test_shutdown_releases_a_running_task_without_counting_it(sqlite: Engine) -> None:
    task_id = _add(sqlite, "block")
    executor = Scripted()
    pool = _pool(sqlite, executor)
    pool.start()
    assert executor.started.wait(5)
    pool.stop()
    task = TaskStore(sqlite).get(task_id)
    assert task is not None
    assert (task.status, task.attempts, task.lease_owner) == (TaskStatus.INIT, 0, None)
    assert OutboxStore(sqlite).for_task(task_id) == []


def test_dead_workers_task_is_requeued_then_abandoned_with_2057(sqlite: Engine) -> None:
    task_id = _add(sqlite, "ok")
    store = TaskStore(sqlite)
    past = time.time() - 100
    # Three workers took it and died (leases of 1 s, long expired).
    for n in range(3):
        claimed = store.claim(f"dead-{n}", past + n * 10, 1)
        assert claimed is not None and claimed.attempts == n + 1
        if n < 2:
            assert store.release(
                task_id,
                f"dead-{n}",
                past + n * 10 + 5,
                count_attempt=True,
                expired_before=past + n * 10 + 5,
            )
    task = _recover_with_pool(sqlite, task_id)
    assert (task.status, task.error_code) == (TaskStatus.FAIL, 2057)
    assert task.error_msg.startswith("slave fail to report")
    assert _callback_body(sqlite, task_id)["Details"]["errnum"] == 2057


def test_dead_workers_task_with_attempts_left_runs_again(sqlite: Engine) -> None:
    task_id = _add(sqlite, "ok")
    store = TaskStore(sqlite)
    assert store.claim("dead", time.time() - 50, 1) is not None
    task = _recover_with_pool(sqlite, task_id)
    assert (task.status, task.attempts) == (TaskStatus.SUCC, 2)


def test_task_deleted_while_its_worker_was_dead_is_not_run_again(sqlite: Engine) -> None:
    task_id = _add(sqlite, "ok")
    store = TaskStore(sqlite)
    owner = store.claim("dead", time.time() - 50, 1)
    assert owner is not None
    user_id = owner.user_id
    from openkvs.store.tasks import Outcome

    assert store.delete(task_id, user_id, time.time()) is Outcome.CANCELLING
    task = _recover_with_pool(sqlite, task_id)
    assert (task.status, task.error_code, task.attempts) == (TaskStatus.FAIL, 2005, 1)
    assert _callback_body(sqlite, task_id)["Details"]["errmsg"] == "task shutdown by user"


def _scratch(engine: Engine) -> Path:
    """A folder beside the test's SQLite file."""
    database = engine.url.database
    assert database is not None
    return Path(database).parent / "scratch"
