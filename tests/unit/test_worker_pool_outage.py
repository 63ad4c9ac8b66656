"""The worker pool through a database outage, over a real SQLite store whose calls fail as
an unreachable PostgreSQL's do while the test says the database is down.

Claims wait quietly; a running task goes on although its lease cannot be renewed; a task
whose work ended during the outage is finished once the database is back (status and one
callback), never dropped and never taken back by its own pool; a task that another worker
took back meanwhile is not finished by the first. One warning, no traceback."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

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

LEASE = 0.6


class _Down(Exception):
    """The driver's error for a connection that failed."""


class FlakyTasks(TaskStore):
    """A TaskStore whose every call the pool makes fails while ``down`` is set (the way an
    unreachable database fails: SQLAlchemy's ``OperationalError``), counting the failures."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.down = threading.Event()
        self.failures: Counter[str] = Counter()

    def _gate(self, name: str) -> None:
        if self.down.is_set():
            self.failures[name] += 1
            raise sa_exc.OperationalError(name, {}, _Down("server closed the connection"))

    def claim(self, *args: Any, **kwargs: Any) -> TaskRecord | None:
        self._gate("claim")
        return super().claim(*args, **kwargs)

    def heartbeat(self, *args: Any, **kwargs: Any) -> bool | None:
        self._gate("heartbeat")
        return super().heartbeat(*args, **kwargs)

    def finish(self, *args: Any, **kwargs: Any) -> bool:
        self._gate("finish")
        return super().finish(*args, **kwargs)

    def release(self, *args: Any, **kwargs: Any) -> bool:
        self._gate("release")
        return super().release(*args, **kwargs)

    def expired(self, *args: Any, **kwargs: Any) -> list[TaskRecord]:
        self._gate("expired")
        return super().expired(*args, **kwargs)

    def held_under(self, *args: Any, **kwargs: Any) -> list[TaskRecord]:
        self._gate("held_under")
        return super().held_under(*args, **kwargs)


class Gated:
    """An executor that runs until the test opens its gate, then succeeds."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.runs = 0

    def run(self, job: Job) -> list[dict[str, Any]]:
        self.runs += 1
        self.started.set()
        assert self.gate.wait(30)
        return [{"dstpath": job.task.request["DstObjectKey"]}]


@pytest.fixture
def sqlite(tmp_path: Path) -> Engine:
    return open_engine(f"sqlite:///{tmp_path}/db.sqlite")


def _add(engine: Engine) -> str:
    user = UserStore(engine, Sealer(bytes(32))).ensure_user("u")
    task_id = new_task_id(time.time())
    request = {"CbUrl": "http://127.0.0.1:9/cb", "DstBucket": "b", "DstObjectKey": "k.json"}
    TaskStore(engine).create(
        NewTask(task_id, user.id, "CreateWaveTask", "audiowave", "wave", "usual", False, request),
        time.time(),
    )
    return task_id


def _pool(engine: Engine, tasks: TaskStore, executor: Gated, tmp_path: Path) -> WorkerPool:
    settings = PoolSettings(
        workers=1, lease_seconds=LEASE, max_attempts=3, poll_seconds=0.05, grace_seconds=0.2
    )
    jobs = JobMaker(LocalStorage(tmp_path / "buckets"), tmp_path / "scratch", 60)
    return WorkerPool(tasks, {"audiowave": executor}, settings, jobs=jobs)


def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _ended(engine: Engine, task_id: str) -> TaskRecord:
    store = TaskStore(engine)
    found: list[TaskRecord] = []

    def ended() -> bool:
        task = store.get(task_id)
        assert task is not None
        found[:] = [task]
        return task.status in (TaskStatus.SUCC, TaskStatus.FAIL)

    _until(ended)
    return found[0]


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback was logged, and the outage was one warning of the pool."""
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    warned = [r for r in caplog.records if r.getMessage() == "database_unavailable"]
    assert [getattr(r, "component", None) for r in warned] == ["workers"]


def test_a_result_ready_during_an_outage_is_finished_once_the_database_is_back(
    sqlite: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    task_id = _add(sqlite)
    tasks, executor = FlakyTasks(sqlite), Gated()
    pool = _pool(sqlite, tasks, executor, tmp_path)
    pool.start()
    try:
        assert executor.started.wait(10)
        tasks.down.set()
        _until(lambda: tasks.failures["heartbeat"] >= 2)  # the lease cannot be renewed
        executor.gate.set()  # the work ends while the database is away
        _until(lambda: tasks.failures["finish"] >= 2)  # its end is tried again...
        time.sleep(LEASE * 2)  # ...while its lease runs out
        assert pool.running() == 0
        tasks.down.clear()
        task = _ended(sqlite, task_id)
    finally:
        pool.stop()
    assert (task.status, task.attempts) == (TaskStatus.SUCC, 1)  # never taken back
    assert executor.runs == 1
    [(callback, _attempts)] = OutboxStore(sqlite).for_task(task_id)
    assert '"errnum":0' in callback.body
    _quiet(caplog)
    assert "task_write_done" in [r.getMessage() for r in caplog.records]


def test_claims_wait_out_an_outage_quietly(
    sqlite: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tasks, executor = FlakyTasks(sqlite), Gated()
    tasks.down.set()
    executor.gate.set()
    task_id = _add(sqlite)
    pool = _pool(sqlite, tasks, executor, tmp_path)
    pool.start()
    try:
        _until(lambda: tasks.failures["claim"] >= 3 and tasks.failures["expired"] >= 2)
        assert not executor.started.is_set()
        tasks.down.clear()
        task = _ended(sqlite, task_id)
    finally:
        pool.stop()
    assert task.status is TaskStatus.SUCC
    _quiet(caplog)
    assert "database_reachable" in [r.getMessage() for r in caplog.records]


def test_a_task_taken_back_during_the_outage_is_not_finished_by_its_first_worker(
    sqlite: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    task_id = _add(sqlite)
    tasks, executor = FlakyTasks(sqlite), Gated()
    pool = _pool(sqlite, tasks, executor, tmp_path)
    pool.start()
    try:
        assert executor.started.wait(10)
        tasks.down.set()
        first = TaskStore(sqlite).get(task_id)
        assert first is not None and first.lease_owner is not None
        # Another worker, which could still reach the database, took it back after the
        # lease ran out and is running it now.
        other = TaskStore(sqlite)
        assert other.release(task_id, first.lease_owner, time.time(), count_attempt=True)
        assert other.claim("other-worker", time.time(), 60) is not None
        executor.gate.set()
        _until(lambda: tasks.failures["finish"] >= 1)
        tasks.down.clear()
        _until(lambda: pool.running() == 0 and tasks.failures["finish"] >= 1)
        _until(lambda: "task_finish_settled" in [r.getMessage() for r in caplog.records])
        running = TaskStore(sqlite).get(task_id)
        assert running is not None
        assert (running.status, running.lease_owner) == (TaskStatus.EXEC, "other-worker")
        assert OutboxStore(sqlite).for_task(task_id) == []  # the first result went nowhere
    finally:
        pool.stop()
    _quiet(caplog)
