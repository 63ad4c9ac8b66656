"""The queue on PostgreSQL across processes: claimer processes keep every pipeline's Quota
and never share a task; an idle ``openkvs worker`` is woken by LISTEN/NOTIFY when another
process queues a task; the listener survives a broken connection."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from tests.support.server import child_env

from openkvs.model import NewTask, Pipeline, PipelineState, TaskStatus
from openkvs.service.ids import new_task_id
from openkvs.store.database import open_engine
from openkvs.store.pipelines import PipelineStore
from openkvs.store.queue import CHANNEL, PipelineRules
from openkvs.store.schema import tasks, users
from openkvs.store.tasks import TaskStore
from openkvs.store.wakeups import TaskWakeups

#: (user, pipeline) → Quota; "usual" has no row: the default Quota of the rules.
QUOTAS = {(0, "a"): 2, (0, "b"): 3, (1, "usual"): 2}
DEFAULT_QUOTA = 2
TASKS_PER_PIPELINE = 15
CLAIMERS = 8  # more than the 7 slots in all: some claimer always waits for one
HOLD = 0.05  # seconds a claimer keeps a task running


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    eng = open_engine(pg_url)
    yield eng
    eng.dispose()


def _user(engine: Engine, name: str) -> int:
    with engine.begin() as conn:
        row = conn.execute(users.insert().values(name=name, created_at=time.time()))
    assert row.inserted_primary_key is not None
    return int(row.inserted_primary_key[0])


def _queue(store: TaskStore, user_id: int, pipeline: str, **request: Any) -> str:
    task_id = new_task_id(time.time())
    store.create(
        NewTask(
            task_id=task_id,
            user_id=user_id,
            action="CreateTask",
            task_type="avinfo",
            preset="info",
            pipeline=pipeline,
            is_top=False,
            request=request,
        ),
        time.time(),
    )
    return task_id


def _claimer(url: str, start: Any, results: Any) -> None:
    """Claim, hold, finish until the queue is empty; report (task, user, pipeline, claimed
    at, released at, running tasks of that pipeline seen right after the claim)."""
    engine = open_engine(url, migrate_schema=False)
    store = TaskStore(engine)
    rules = PipelineRules(default_quota=DEFAULT_QUOTA)
    held: list[tuple[str, int, str, float, float, int]] = []
    start.wait()
    while True:
        task = store.claim(f"claimer-{id(held)}", time.time(), 60, rules, frozenset({"avinfo"}))
        if task is None:
            if store.queued_count() == 0:
                break
            time.sleep(0.005)
            continue
        claimed = time.time()
        with engine.connect() as conn:
            running = conn.execute(
                select(func.count()).where(
                    tasks.c.status == TaskStatus.EXEC.value,
                    tasks.c.user_id == task.user_id,
                    tasks.c.pipeline == task.pipeline,
                )
            ).scalar()
        time.sleep(HOLD)
        released = time.time()
        assert task.lease_owner is not None
        assert store.finish(
            task.task_id,
            task.lease_owner,
            status=TaskStatus.SUCC,
            error_code=0,
            error_msg="",
            result=[],
            callback=None,
            now=time.time(),
        )
        held.append((task.task_id, task.user_id, task.pipeline, claimed, released, running or 0))
    results.put(held)
    engine.dispose()


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_claimer_processes_keep_every_quota_and_never_share_a_task(
    pg_url: str, pg_engine: Engine
) -> None:
    store = TaskStore(pg_engine)
    pipelines = PipelineStore(pg_engine)
    ids = [_user(pg_engine, "alice"), _user(pg_engine, "bob")]
    queued = set()
    for (user, name), quota in QUOTAS.items():
        if name != "usual":
            pipelines.put(ids[user], Pipeline(name, PipelineState.ACTIVE, "", "", 0, quota), 0)
    for n in range(TASKS_PER_PIPELINE):
        for user, name in QUOTAS:
            queued.add(_queue(store, ids[user], name, n=n))

    # Forked (no second import of everything): the parent's pooled connections are closed
    # first, so that no child inherits one.
    pg_engine.dispose()
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(pg_url, start, results)) for _ in range(CLAIMERS)]
    for proc in procs:
        proc.start()
    start.set()
    reports = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0

    held = [item for report in reports for item in report]
    claimed = [item[0] for item in held]
    assert len(claimed) == len(set(claimed)) == len(queued)  # each task once, none lost
    assert set(claimed) == queued
    for (user, name), quota in QUOTAS.items():
        mine = [h for h in held if h[1] == ids[user] and h[2] == name]
        # Seen by the claimers (a span is inside the time the task really ran) ...
        assert _most_at_once([(h[3], h[4]) for h in mine]) == quota, (user, name)
        # ... and by the database, right after each claim.
        assert max(h[5] for h in mine) <= quota, (user, name)
    with pg_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM queue_slots WHERE task_id IS NOT NULL")
            ).scalar()
            == 0
        )


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def _listeners(engine: Engine) -> list[int]:
    """Backend pids of the sessions listening on the queue's channel (their last query)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query = :listen"
                ),
                {"listen": f"LISTEN {CHANNEL}"},
            ).scalars()
        )


@pytest.mark.slow
def test_an_idle_worker_starts_a_task_queued_by_another_process_at_once(
    tmp_path: Path, pg_url: str, pg_engine: Engine
) -> None:
    """Its poll is 60 s: only the notification can make it start the task within 10 s."""
    store = TaskStore(pg_engine)
    user_id = _user(pg_engine, "alice")
    env = child_env(
        tmp_path,
        {"OPENKVS_DATABASE_URL": pg_url, "OPENKVS_POLL_SECONDS": "60", "OPENKVS_WORKERS": "1"},
    )
    log = (tmp_path / "worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "openkvs", "worker"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert _wait(lambda: _listeners(pg_engine), 30), (tmp_path / "worker.log").read_text()
        time.sleep(1.0)  # its first claims are over: it waits for its next poll, 60 s on
        task_id = _queue(
            store,
            user_id,
            "usual",
            SrcInfo=[{"path": "/no-such-bucket/in.mp4", "index": 0}],
            source={"bucket": "no-such-bucket", "key": "in.mp4"},
            preset={"name": "info", "type": "avinfo", "param": {}},
        )

        def started() -> bool:
            task = store.get(task_id)
            return task is not None and task.started_at is not None

        assert _wait(started, 10), (tmp_path / "worker.log").read_text()
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()


def test_the_listener_wakes_on_notify_and_comes_back_after_its_connection_dies(
    pg_url: str, pg_engine: Engine
) -> None:
    wakes = threading.Semaphore(0)
    listener = TaskWakeups(pg_url, wakes.release)
    listener.start()
    try:
        assert listener.connected.wait(10)
        assert wakes.acquire(timeout=5)  # one wake-up on connecting: a task may wait
        store = TaskStore(pg_engine)
        user_id = _user(pg_engine, "alice")
        _queue(store, user_id, "usual")
        assert wakes.acquire(timeout=10)
        [pid] = _listeners(pg_engine)
        with pg_engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert _wait(lambda: _listeners(pg_engine) not in ([], [pid]), 30)
        assert wakes.acquire(timeout=10)  # reconnected: it wakes the pool once more
        _queue(store, user_id, "usual")
        assert wakes.acquire(timeout=10)
        assert not wakes.acquire(timeout=0.5)  # one wake-up per notification
        # A task put back in the queue, and a changed pipeline, wake workers too.
        task = store.claim("w", time.time(), 60, PipelineRules(default_quota=2))
        assert task is not None and not wakes.acquire(timeout=0.5)  # a claim does not
        assert store.release(task.task_id, "w", time.time(), count_attempt=False)
        assert wakes.acquire(timeout=10)
        PipelineStore(pg_engine).put(
            user_id, Pipeline("usual", PipelineState.ACTIVE, "", "", 0, 5), time.time()
        )
        assert wakes.acquire(timeout=10)
    finally:
        listener.stop()
    assert _listeners(pg_engine) == []


def test_the_listener_does_nothing_on_sqlite(tmp_path: Path) -> None:
    listener = TaskWakeups(f"sqlite:///{tmp_path}/openkvs.db", lambda: None)
    listener.start()
    assert not listener.enabled and not listener.connected.is_set()
    listener.stop()
