"""Lease owners that name their process: a pool takes back at once the tasks of this
machine's exited processes, and leaves live processes' and other machines' tasks alone.

Real processes (``sleep``) stand for other workers; the store runs on SQLite and
PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from openkvs.model import NewTask, TaskRecord, TaskStatus
from openkvs.service.ids import new_task_id
from openkvs.storage.local import LocalStorage
from openkvs.store.outbox import OutboxStore
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import Outcome, TaskStore
from openkvs.store.users import UserStore
from openkvs.worker.job import Job, JobMaker
from openkvs.worker.owner import ProcessIdentity, owner_gone, parse_owner, process_gone
from openkvs.worker.pool import PoolSettings, WorkerPool

LONG_LEASE = 600.0  # far longer than any test: a task taken back was not taken by expiry


def _start_time(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2 :].split()[19])


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process of this machine, standing for another worker."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def _exited() -> tuple[int, int]:
    """(pid, start time) of a process that ran on this machine and has exited (reaped)."""
    proc = subprocess.Popen(["sleep", "300"])
    start = _start_time(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, start


def _owner(pid: int, start: int, *, host: str | None = None, machine: str | None = None) -> str:
    me = ProcessIdentity.current()
    identity = ProcessIdentity(host or me.host, machine or me.machine, pid, start)
    return identity.owner("0f0f0f", "worker-0")


# -- the identity ------------------------------------------------------------------------


def test_this_process_is_named_and_alive() -> None:
    me = ProcessIdentity.current()
    assert me.checkable and len(me.machine) == 12
    owner = me.owner("abcdef", "worker-3")
    assert owner.startswith(me.machine_prefix) and owner.endswith(":abcdef:worker-3")
    assert parse_owner(owner) == me
    assert len(me.owner("abcdef", "worker-99")) <= 128  # the column's width
    assert not owner_gone(owner, me)
    assert not owner_gone(me.owner("123456", "worker-0"), me)  # another pool of this process


def test_an_exited_process_is_gone(sleeper: subprocess.Popen[bytes]) -> None:
    me = ProcessIdentity.current()
    start = _start_time(sleeper.pid)
    assert not process_gone(sleeper.pid, start)
    assert not owner_gone(_owner(sleeper.pid, start), me)
    sleeper.kill()
    sleeper.wait()
    assert process_gone(sleeper.pid, start)
    assert owner_gone(_owner(sleeper.pid, start), me)


def test_a_zombie_is_gone(sleeper: subprocess.Popen[bytes]) -> None:
    start = _start_time(sleeper.pid)
    sleeper.kill()
    while Path(f"/proc/{sleeper.pid}/stat").read_text().split(") ")[1][0] != "Z":
        time.sleep(0.01)  # killed, not reaped yet
    assert process_gone(sleeper.pid, start)


def test_a_live_pid_with_another_start_time_is_a_reused_pid(
    sleeper: subprocess.Popen[bytes],
) -> None:
    me = ProcessIdentity.current()
    start = _start_time(sleeper.pid)
    assert process_gone(sleeper.pid, start - 1)
    assert owner_gone(_owner(sleeper.pid, start + 1), me)
    assert owner_gone(_owner(me.pid, me.start - 1), me)  # our pid, an earlier process


def test_other_machines_and_unknown_owners_are_never_gone() -> None:
    me = ProcessIdentity.current()
    pid, start = _exited()
    assert owner_gone(_owner(pid, start), me)
    assert not owner_gone(_owner(pid, start, host="elsewhere"), me)
    assert not owner_gone(_owner(pid, start, machine="0123456789ab"), me)  # same name
    assert not owner_gone(f"{me.host}:{pid}:abcdef:worker-0", me)  # the format before
    assert not owner_gone("w1", me)
    assert not owner_gone(f"{me.machine_prefix}0:{start}:abcdef:worker-0", me)
    unknown = ProcessIdentity(me.host, "", me.pid, 0)  # no /proc: nothing is checked
    assert not owner_gone(_owner(pid, start), unknown)


# -- the pool ----------------------------------------------------------------------------


class Quick:
    """An executor that succeeds at once and counts its runs."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.lock = threading.Lock()

    def run(self, job: Job) -> list[dict[str, Any]]:
        task = job.task
        with self.lock:
            self.ran.append(task.task_id)
        return [{"dstpath": task.request["DstObjectKey"]}]


def _claimed(engine: Engine, owner: str) -> str:
    """A new task, claimed by ``owner`` with a long lease; returns its id."""
    user = UserStore(engine, Sealer(bytes(32))).ensure_user("u")
    task_id = new_task_id(time.time())
    store = TaskStore(engine)
    store.create(
        NewTask(
            task_id=task_id,
            user_id=user.id,
            action="CreateWaveTask",
            task_type="audiowave",
            preset="wave",
            pipeline="usual",
            is_top=False,
            request={
                "CbUrl": "http://127.0.0.1:9/cb",
                "DstBucket": "b",
                "DstObjectKey": f"{task_id}.json",
            },
        ),
        time.time(),
    )
    claimed = store.claim(owner, time.time(), LONG_LEASE)
    assert claimed is not None and claimed.task_id == task_id
    return task_id


def _pool(engine: Engine, executor: Quick, *, sweep: float = 10.0) -> WorkerPool:
    settings = PoolSettings(
        workers=2,
        lease_seconds=LONG_LEASE,
        max_attempts=3,
        poll_seconds=0.05,
        grace_seconds=0.2,
        sweep_seconds=sweep,
    )
    jobs = JobMaker(LocalStorage(_scratch(engine) / "buckets"), _scratch(engine), 60)
    return WorkerPool(TaskStore(engine), {"audiowave": executor}, settings, jobs=jobs)


def _wait_done(store: TaskStore, task_id: str) -> TaskRecord:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = store.get(task_id)
        assert task is not None
        if task.status in (TaskStatus.SUCC, TaskStatus.FAIL):
            return task
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not finish")


def _errnum(engine: Engine, task_id: str) -> int:
    [(callback, _)] = OutboxStore(engine).for_task(task_id)
    return int(json.loads(callback.body)["Details"]["errnum"])


def test_a_started_pool_takes_back_only_dead_local_owners(
    engine: Engine, sleeper: subprocess.Popen[bytes]
) -> None:
    store = TaskStore(engine)
    pid, start = _exited()
    dead = _claimed(engine, _owner(pid, start))
    reused = _claimed(engine, _owner(sleeper.pid, _start_time(sleeper.pid) + 1))
    live_owner = _owner(sleeper.pid, _start_time(sleeper.pid))
    live = _claimed(engine, live_owner)
    remote_owner = _owner(pid, start, host="elsewhere", machine="0123456789ab")
    remote = _claimed(engine, remote_owner)
    executor = Quick()
    pool = _pool(engine, executor)
    pool.start()
    try:
        for task_id in (dead, reused):
            task = _wait_done(store, task_id)
            assert (task.status, task.attempts) == (TaskStatus.SUCC, 2)
    finally:
        pool.stop()
    assert sorted(executor.ran) == sorted([dead, reused])
    for task_id, owner in ((live, live_owner), (remote, remote_owner)):
        task = store.get(task_id)
        assert task is not None
        assert (task.status, task.lease_owner, task.attempts) == (TaskStatus.EXEC, owner, 1)


def test_dead_owners_tasks_honour_delete_and_max_attempts(engine: Engine) -> None:
    store = TaskStore(engine)
    pid, start = _exited()
    owner = _owner(pid, start)
    deleted = _claimed(engine, owner)
    claimed = store.get(deleted)
    assert claimed is not None
    assert store.delete(deleted, claimed.user_id, time.time()) is Outcome.CANCELLING
    worn = _claimed(engine, owner)
    for _ in range(2):  # two more claims, each by a worker that died
        assert store.release(worn, owner, time.time(), count_attempt=True)
        assert store.claim(owner, time.time(), LONG_LEASE) is not None
    executor = Quick()
    pool = _pool(engine, executor)
    pool.start()
    pool.stop()
    assert executor.ran == []
    for task_id, code, attempts in ((deleted, 2005, 1), (worn, 2057, 3)):
        task = store.get(task_id)
        assert task is not None
        assert (task.status, task.error_code, task.attempts) == (TaskStatus.FAIL, code, attempts)
        assert _errnum(engine, task_id) == code


def test_a_running_pool_takes_back_a_neighbour_that_dies(
    engine: Engine, sleeper: subprocess.Popen[bytes]
) -> None:
    store = TaskStore(engine)
    task_id = _claimed(engine, _owner(sleeper.pid, _start_time(sleeper.pid)))
    executor = Quick()
    pool = _pool(engine, executor, sweep=0.2)
    pool.start()
    try:
        assert store.get(task_id).status is TaskStatus.EXEC  # type: ignore[union-attr]
        sleeper.kill()
        sleeper.wait()
        task = _wait_done(store, task_id)
    finally:
        pool.stop()
    assert (task.status, task.attempts) == (TaskStatus.SUCC, 2)


def _scratch(engine: Engine) -> Path:
    """A folder beside the test's SQLite file."""
    database = engine.url.database
    assert database is not None
    return Path(database).parent / "scratch"
