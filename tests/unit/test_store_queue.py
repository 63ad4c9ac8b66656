"""The tasks table as a queue: claim order, leases, finishing with the outbox, and the
queue's rules (store/queue.py): pipeline state, windows and quota slots, the worker's
filters, parts of split tasks; on SQLite, reads that never stall a claim."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text, update

from openkvs.model import (
    DeliveryState,
    NewTask,
    Pipeline,
    PipelineState,
    TaskRecord,
    TaskStatus,
)
from openkvs.service.ids import CST, new_task_id
from openkvs.service.pipelines import window_open
from openkvs.store import migrations
from openkvs.store.database import open_engine
from openkvs.store.outbox import OutboxStore
from openkvs.store.pipelines import PipelineStore
from openkvs.store.queue import _OPEN_QUOTA, PipelineRules, day_seconds
from openkvs.store.schema import queue_slots, tasks, users
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import Outcome, TaskFilter, TaskStore
from openkvs.store.users import UserStore

T0 = 1_700_000_000.0
SEALER = Sealer(bytes(32))
RULES = PipelineRules(default_quota=10)


@pytest.fixture
def store(engine: Engine) -> TaskStore:
    return TaskStore(engine)


@pytest.fixture
def user_id(engine: Engine) -> int:
    return UserStore(engine, SEALER).ensure_user("alice").id


def _add(
    store: TaskStore,
    user_id: int,
    now: float,
    *,
    top: bool = False,
    pipeline: str = "usual",
    task_type: str = "audiowave",
    parent: str | None = None,
) -> str:
    task_id = new_task_id(now)
    store.create(
        NewTask(
            task_id=task_id,
            user_id=user_id,
            action="CreateWaveTask",
            task_type=task_type,
            preset="wave",
            pipeline=pipeline,
            is_top=top,
            request={"CbUrl": "http://127.0.0.1:9/cb"},
            parent_id=parent,
        ),
        now,
    )
    return task_id


def _finish(store: TaskStore, task_id: str, owner: str | None, now: float, **kw: Any) -> bool:
    return store.finish(
        task_id,
        owner,
        status=TaskStatus.SUCC,
        error_code=0,
        error_msg="",
        result=[],
        callback=None,
        now=now,
        **kw,
    )


def test_claim_order_is_top_first_then_age(store: TaskStore, user_id: int) -> None:
    a = _add(store, user_id, T0)
    b = _add(store, user_id, T0 + 1)
    c = _add(store, user_id, T0 + 2, top=True)
    d = _add(store, user_id, T0 + 3, top=True)
    order = []
    while (task := store.claim("w", T0 + 10, 60)) is not None:
        order.append(task.task_id)
    assert order == [c, d, a, b]


def test_claim_sets_lease_and_counts_attempts(store: TaskStore, user_id: int) -> None:
    task_id = _add(store, user_id, T0)
    task = store.claim("w1", T0 + 1, 30)
    assert task is not None and task.task_id == task_id
    assert task.status is TaskStatus.EXEC and task.attempts == 1 and task.lease_owner == "w1"
    assert store.claim("w2", T0 + 1, 30) is None
    assert store.expired(T0 + 30) == []
    assert [t.task_id for t in store.expired(T0 + 32)] == [task_id]


def test_concurrent_claims_never_hand_out_a_task_twice(store: TaskStore, user_id: int) -> None:
    ids = {_add(store, user_id, T0 + n) for n in range(30)}
    got: list[str] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        while (task := store.claim(f"w{n}", T0 + 100, 60)) is not None:
            with lock:
                got.append(task.task_id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_heartbeat_renews_and_detects_lost_lease(store: TaskStore, user_id: int) -> None:
    task_id = _add(store, user_id, T0)
    store.claim("w1", T0, 10)
    assert store.heartbeat(task_id, "w1", T0 + 5, 10, None) is False
    assert store.expired(T0 + 12) == []  # renewed until T0 + 15
    assert store.heartbeat(task_id, "intruder", T0 + 5, 10, None) is None


def test_finish_writes_callback_in_same_transaction(
    engine: Engine, store: TaskStore, user_id: int
) -> None:
    task_id = _add(store, user_id, T0)
    store.claim("w1", T0, 10)
    body = {"TaskID": task_id, "Status": 3}
    assert not store.finish(
        task_id,
        "other",
        status=TaskStatus.SUCC,
        error_code=0,
        error_msg="",
        result=[],
        callback=("http://x/cb", body),
        now=T0 + 1,
    )
    outbox = OutboxStore(engine)
    assert outbox.for_task(task_id) == []
    assert store.finish(
        task_id,
        "w1",
        status=TaskStatus.SUCC,
        error_code=0,
        error_msg="",
        result=[{"dstpath": "k"}],
        callback=("http://x/cb", body),
        now=T0 + 1,
    )
    task = store.get(task_id)
    assert task is not None and task.status is TaskStatus.SUCC and task.progress == 100
    assert task.result == [{"dstpath": "k"}]
    [(callback, attempts)] = outbox.for_task(task_id)
    assert callback.state is DeliveryState.PENDING and attempts == []
    # A second finish (a worker that lost its lease) changes nothing.
    assert not store.finish(
        task_id,
        "w1",
        status=TaskStatus.FAIL,
        error_code=2001,
        error_msg="x",
        result=None,
        callback=("http://x/cb", body),
        now=T0,
    )
    assert len(outbox.for_task(task_id)) == 1


def test_release_and_recovery_guard(store: TaskStore, user_id: int) -> None:
    task_id = _add(store, user_id, T0)
    store.claim("w1", T0, 10)
    # Not expired yet: recovery must not take it.
    assert not store.release(task_id, "w1", T0 + 5, count_attempt=True, expired_before=T0 + 5)
    assert store.release(task_id, "w1", T0 + 11, count_attempt=True, expired_before=T0 + 11)
    again = store.claim("w2", T0 + 12, 10)
    assert again is not None and again.attempts == 2
    assert store.release(task_id, "w2", T0 + 13, count_attempt=False)
    third = store.claim("w3", T0 + 14, 10)
    assert third is not None and third.attempts == 2


def test_get_is_scoped_to_user(engine: Engine, store: TaskStore, user_id: int) -> None:
    other = UserStore(engine, SEALER).ensure_user("bob").id
    task_id = _add(store, user_id, T0)
    assert store.get(task_id, user_id) is not None
    assert store.get(task_id, other) is None


def test_claim_skips_blocked_pipelines(engine: Engine, store: TaskStore, user_id: int) -> None:
    other = UserStore(engine, SEALER).ensure_user("bob").id
    pipelines = PipelineStore(engine)
    pipelines.put(user_id, Pipeline("night", PipelineState.PAUSED, "", "", 0, 10), T0)
    pipelines.put(user_id, Pipeline("usual", PipelineState.ACTIVE, "", "", 0, 1), T0)
    paused = _add(store, user_id, T0, pipeline="night")
    first = _add(store, user_id, T0 + 1, pipeline="usual")
    second = _add(store, user_id, T0 + 2, pipeline="usual")
    bobs = _add(store, other, T0 + 3, pipeline="usual")

    got = store.claim("w1", T0 + 10, 60, RULES)
    assert got is not None and got.task_id == first
    # alice's usual has Quota 1 and one running: bob's task goes next, not alice's second
    got = store.claim("w2", T0 + 10, 60, RULES)
    assert got is not None and got.task_id == bobs
    assert store.claim("w3", T0 + 10, 60, RULES) is None
    assert _finish(store, first, "w1", T0 + 11)
    got = store.claim("w3", T0 + 12, 60, RULES)
    assert got is not None and got.task_id == second
    pipelines.put(user_id, Pipeline("night", PipelineState.ACTIVE, "", "", 0, 10), T0 + 13)
    got = store.claim("w4", T0 + 14, 60, RULES)
    assert got is not None and got.task_id == paused


# -- the queue's rules (store/queue.py) --------------------------------------------------


def _held_slots(engine: Engine) -> dict[str, int]:
    """TaskID → slot number, for every slot held."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(queue_slots.c.task_id, queue_slots.c.slot).where(
                queue_slots.c.task_id.is_not(None)
            )
        ).all()
    return {r.task_id: r.slot for r in rows}


WINDOWS = {  # pipeline → (RegularStart, RegularDuration)
    "none": ("", 0),
    "no-length": ("01:00:00", 0),
    "whole-day": ("01:00:00", 86400),
    "night": ("01:00:00", 14400),
    "across-midnight": ("22:30:15", 14400),
}


def test_the_window_in_sql_is_window_open(engine: Engine, store: TaskStore, user_id: int) -> None:
    """The claim's SQL form of the daily window agrees with ``window_open`` all day."""
    pipelines = PipelineStore(engine)
    for name, (start, duration) in WINDOWS.items():
        pipelines.put(user_id, Pipeline(name, PipelineState.ACTIVE, "", start, duration, 7), T0)
        _add(store, user_id, T0, pipeline=name)
    sql = text(f"SELECT t.pipeline, {_OPEN_QUOTA} AS quota FROM tasks AS t")
    midnight = datetime(2026, 11, 24, tzinfo=CST).timestamp()
    with engine.connect() as conn:
        for minute in range(0, 24 * 60, 7):
            for second in (0, 59):
                now = midnight + minute * 60 + second
                values = {"clock": day_seconds(now), "default_quota": 3}
                got = {r.pipeline: r.quota for r in conn.execute(sql, values)}
                expected = {
                    name: 7 if window_open(start, duration, now) else 0
                    for name, (start, duration) in WINDOWS.items()
                }
                assert got == expected, (minute, second)


def test_a_paused_pipeline_opens_no_quota_and_a_missing_one_has_the_default(
    engine: Engine, store: TaskStore, user_id: int
) -> None:
    PipelineStore(engine).put(user_id, Pipeline("held", PipelineState.PAUSED, "", "", 0, 5), T0)
    _add(store, user_id, T0, pipeline="held")
    _add(store, user_id, T0 + 1, pipeline="other")
    sql = text(f"SELECT t.pipeline, {_OPEN_QUOTA} AS quota FROM tasks AS t")
    with engine.connect() as conn:
        got = {r.pipeline: r.quota for r in conn.execute(sql, {"clock": 0, "default_quota": 3})}
    assert got == {"held": 0, "other": 3}


def test_quota_changes_take_effect_at_the_next_claim(
    engine: Engine, store: TaskStore, user_id: int
) -> None:
    pipelines = PipelineStore(engine)
    pipelines.put(user_id, Pipeline("p", PipelineState.ACTIVE, "", "", 0, 1), T0)
    ids = [_add(store, user_id, T0 + n, pipeline="p") for n in range(4)]
    first = store.claim("w", T0 + 10, 60, RULES)
    assert first is not None and first.task_id == ids[0]
    assert store.claim("w", T0 + 10, 60, RULES) is None  # Quota 1, one running
    pipelines.put(user_id, Pipeline("p", PipelineState.ACTIVE, "", "", 0, 3), T0 + 11)
    claimed = [store.claim("w", T0 + 12, 60, RULES) for _ in range(3)]
    assert [t.task_id for t in claimed if t is not None] == ids[1:3]  # 3 running now
    assert claimed[2] is None
    pipelines.put(user_id, Pipeline("p", PipelineState.ACTIVE, "", "", 0, 1), T0 + 13)
    assert _finish(store, ids[0], "w", T0 + 14)
    assert store.claim("w", T0 + 15, 60, RULES) is None  # 2 still run: over the new Quota
    assert _finish(store, ids[1], "w", T0 + 16)
    assert _finish(store, ids[2], "w", T0 + 16)
    last = store.claim("w", T0 + 17, 60, RULES)
    assert last is not None and last.task_id == ids[3]
    assert set(_held_slots(engine)) == {ids[3]}


def test_the_default_quota_is_the_rules_one(engine: Engine, store: TaskStore, user_id: int) -> None:
    ids = [_add(store, user_id, T0 + n) for n in range(3)]
    one = PipelineRules(default_quota=1)
    assert store.claim("w", T0 + 10, 60, one) is not None
    assert store.claim("w", T0 + 10, 60, one) is None
    two = PipelineRules(default_quota=2)  # a restart with another OPENKVS_PIPELINE_QUOTA
    got = store.claim("w", T0 + 10, 60, two)
    assert got is not None and got.task_id == ids[1]
    assert store.claim("w", T0 + 10, 60, two) is None


def test_filters_by_task_type_and_pipeline(engine: Engine, store: TaskStore, user_id: int) -> None:
    wave = _add(store, user_id, T0, task_type="audiowave", pipeline="a")
    info = _add(store, user_id, T0 + 1, task_type="avinfo", pipeline="a")
    other = _add(store, user_id, T0 + 2, task_type="avinfo", pipeline="b")
    assert store.claim("w", T0 + 10, 60, RULES, frozenset({"avtrans"})) is None
    assert store.claim("w", T0 + 10, 60, RULES, frozenset()) is None
    got = store.claim("w", T0 + 10, 60, RULES, frozenset({"avinfo"}), pipelines=frozenset("b"))
    assert got is not None and got.task_id == other
    got = store.claim("w", T0 + 10, 60, None, frozenset({"avinfo", "snapshot"}))
    assert got is not None and got.task_id == info
    assert store.claim("w", T0 + 10, 60, RULES, pipelines=frozenset({"b", "c"})) is None
    got = store.claim("w", T0 + 10, 60, RULES, pipelines=frozenset({"a"}))
    assert got is not None and got.task_id == wave


def test_parts_go_first_bypass_the_rules_and_take_no_slot(
    engine: Engine, store: TaskStore, user_id: int
) -> None:
    pipelines = PipelineStore(engine)
    pipelines.put(user_id, Pipeline("p", PipelineState.ACTIVE, "", "", 0, 1), T0)
    parent = _add(store, user_id, T0, pipeline="p")
    waiting = _add(store, user_id, T0 + 1, pipeline="p", top=True)
    got = store.claim("w", T0 + 10, 60, RULES)
    assert got is not None and got.task_id == waiting  # top first (no parts yet)
    pipelines.put(user_id, Pipeline("p", PipelineState.PAUSED, "", "", 0, 1), T0 + 11)
    assert store.claim("w", T0 + 12, 60, RULES) is None  # paused, and at its Quota
    parts = [
        _add(store, user_id, T0 + 20 + n, pipeline="p", parent=parent, task_type="avtrans")
        for n in range(3)
    ]
    other_parent = _add(store, user_id, T0 + 30, pipeline="q", parent="x" * 40)
    # A split task's worker claims its own parts only.
    got = store.claim("w", T0 + 40, 60, RULES, parent=parent)
    assert got is not None and got.task_id == parts[0] and got.parent_id == parent
    assert store.claim("w", T0 + 40, 60, RULES, frozenset({"audiowave"}), parent=parent) is None
    # Any worker claims parts before top-level tasks, whatever the pipeline's state.
    got = store.claim("w", T0 + 41, 60, RULES, frozenset({"avtrans"}))
    assert got is not None and got.task_id == parts[1]
    got = store.claim("w", T0 + 41, 60, None)
    assert got is not None and got.task_id == parts[2]
    got = store.claim("w", T0 + 41, 60, RULES)
    assert got is not None and got.task_id == other_parent
    assert store.claim("w", T0 + 41, 60, RULES) is None
    assert set(_held_slots(engine)) == {waiting}  # parts take no slot
    for part in parts:
        assert _finish(store, part, "w", T0 + 50)
    assert set(_held_slots(engine)) == {waiting}


def test_parts_are_hidden_from_lists_statistics_and_the_queue_count(
    engine: Engine, store: TaskStore, user_id: int
) -> None:
    parent = _add(store, user_id, T0)
    parts = [_add(store, user_id, T0 + 1 + n, parent=parent) for n in range(2)]
    assert store.queued_count() == 1
    total, found = store.page(user_id, TaskFilter(T0 - 1, T0 + 100), 0, 10)
    assert total == 1 and [t.task_id for t in found] == [parent]
    assert store.status_counts(user_id, T0 - 1) == {TaskStatus.INIT: 1}
    for part in parts:
        assert store.claim("w", T0 + 10, 60, RULES, parent=parent) is not None
        assert _finish(store, part, "w", T0 + 11)
    assert store.status_counts(user_id, T0 - 1) == {TaskStatus.INIT: 1}
    assert store.finished_between(user_id, ("audiowave",), T0, T0 + 100) == []
    assert store.get(parts[0]) is not None  # the parent's worker reads its parts


def test_every_way_out_of_exec_frees_the_slot(
    engine: Engine, store: TaskStore, user_id: int
) -> None:
    PipelineStore(engine).put(user_id, Pipeline("p", PipelineState.ACTIVE, "", "", 0, 1), T0)
    for n in range(7):
        _add(store, user_id, T0 + n, pipeline="p")

    def claim(now: float, lease: float = 60) -> str:
        got = store.claim("w", now, lease, RULES)
        assert got is not None
        assert store.claim("other", now, lease, RULES) is None  # Quota 1: held
        assert set(_held_slots(engine)) == {got.task_id}
        return got.task_id

    def freed() -> None:
        assert _held_slots(engine) == {}

    t = claim(T0 + 10)
    assert _finish(store, t, "w", T0 + 11)  # success
    freed()
    t = claim(T0 + 12)
    assert store.finish(  # failure, with a callback (a transaction with the outbox)
        t,
        "w",
        status=TaskStatus.FAIL,
        error_code=3150,
        error_msg="bad",
        result=None,
        callback=("http://127.0.0.1:9/cb", {"TaskID": t}),
        now=T0 + 13,
    )
    freed()
    t = claim(T0 + 14)
    assert store.release(t, "w", T0 + 15, count_attempt=False)  # a clean shutdown
    freed()
    t = claim(T0 + 16, lease=1)
    assert store.release(t, "w", T0 + 18, count_attempt=True, expired_before=T0 + 18)  # lease
    freed()
    t = claim(T0 + 19, lease=1)
    assert _finish(store, t, "w", T0 + 21, expired_before=T0 + 21)  # 2057 after attempts
    freed()
    t = claim(T0 + 22)
    assert store.delete(t, user_id, T0 + 23) is Outcome.CANCELLING  # running: asks its worker
    assert set(_held_slots(engine)) == {t}
    assert _finish(store, t, "w", T0 + 24)  # ... which ends it with 2005
    freed()
    # A finish or release by a worker that lost the lease changes nothing.
    t = claim(T0 + 25)
    assert not _finish(store, t, "intruder", T0 + 26)
    assert not store.release(t, "intruder", T0 + 26, count_attempt=True)
    assert set(_held_slots(engine)) == {t}


def test_a_slot_left_held_by_an_ended_task_is_freed(
    engine: Engine, store: TaskStore, user_id: int
) -> None:
    """A worker of a version before the slots ends a task without freeing its slot: the
    pipeline is not blocked for good (the next claim that finds nothing frees it)."""
    PipelineStore(engine).put(user_id, Pipeline("p", PipelineState.ACTIVE, "", "", 0, 1), T0)
    first = _add(store, user_id, T0, pipeline="p")
    second = _add(store, user_id, T0 + 1, pipeline="p")
    assert store.claim("w", T0 + 10, 60, RULES) is not None
    with engine.begin() as conn:  # what an older openkvs's finish did
        conn.execute(
            update(tasks).where(tasks.c.task_id == first).values(status="succ", lease_owner=None)
        )
    assert set(_held_slots(engine)) == {first}
    got = store.claim("w", T0 + 11, 60, RULES)
    assert got is not None and got.task_id == second
    assert set(_held_slots(engine)) == {second}


def test_concurrent_claimers_keep_the_quota(engine: Engine, store: TaskStore) -> None:
    users = UserStore(engine, SEALER)
    pipelines = PipelineStore(engine)
    owners = [users.ensure_user(f"u{n}").id for n in range(2)]
    for uid in owners:
        pipelines.put(uid, Pipeline("p", PipelineState.ACTIVE, "", "", 0, 2), T0)
        for n in range(6):
            _add(store, uid, T0 + n, pipeline="p")
    got: list[TaskRecord] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        for _ in range(4):
            task = store.claim(f"w{n}", T0 + 100, 60, RULES)
            if task is not None:
                with lock:
                    got.append(task)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(t.user_id for t in got) == sorted(owners * 2)  # 2 each, never more
    assert len({t.task_id for t in got}) == 4
    assert sorted(_held_slots(engine)) == sorted(t.task_id for t in got)


def test_a_task_running_across_the_upgrade_holds_a_slot(db_url: str) -> None:
    """Schema 5 gives the tasks running during the upgrade slots, so quotas count them."""
    eng = open_engine(db_url, migrate_schema=False)
    try:
        with eng.begin() as conn:
            migrations.current_version(conn)
            for _number, _title, step in migrations.STEPS[:4]:
                step(conn)
            conn.execute(migrations.schema_version.insert().values(version=4))
            uid = conn.execute(users.insert().values(name="alice", created_at=T0))
            assert uid.inserted_primary_key is not None
            for n, status in enumerate(("exec", "exec", "init", "succ")):
                conn.execute(
                    text(
                        "INSERT INTO tasks (task_id, user_id, action, task_type, preset,"
                        " pipeline, is_top, status, request, error_code, error_msg, progress,"
                        " attempts, cancel_requested, created_at, updated_at, lease_owner)"
                        " VALUES (:task_id, :uid, 'CreateTask', 'avinfo', 'p', 'usual', 0,"
                        " :status, '{}', 0, '', 0, 1, 0, :now, :now, 'w')"
                    ),
                    {
                        "task_id": f"{n:040d}",
                        "uid": uid.inserted_primary_key[0],
                        "status": status,
                        "now": T0 + n,
                    },
                )
        assert migrations.migrate(eng) == migrations.LATEST
        assert _held_slots(eng) == {f"{0:040d}": 0, f"{1:040d}": 1}
        store = TaskStore(eng)
        two = PipelineRules(default_quota=2)
        assert store.claim("w2", T0 + 10, 60, two) is None  # both slots held
        assert _finish(store, f"{0:040d}", "w", T0 + 11)
        got = store.claim("w2", T0 + 12, 60, two)
        assert got is not None and got.task_id == f"{2:040d}"
    finally:
        eng.dispose()


# -- SQLite: reads never stall a claim -------------------------------------------------


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    eng = open_engine(f"sqlite:///{tmp_path}/openkvs.db")
    yield eng
    eng.dispose()


@pytest.mark.parametrize("read", ["page", "queued_count", "status_counts", "finished_between"])
def test_a_claim_goes_on_while_a_read_holds_its_transaction_open(
    sqlite_engine: Engine, read: str
) -> None:
    """Each store read runs a claim (in another thread, to its end) while its own read
    transaction is open, right after its first SELECT. Were the read holding SQLite's
    write lock, the claim would wait for it and this read would never end."""
    engine = sqlite_engine
    store = TaskStore(engine)
    uid = UserStore(engine, SEALER).ensure_user("alice").id
    task_id = _add(store, uid, T0)
    claimed: list[TaskRecord | None] = []
    in_read: list[bool] = []

    reader = threading.current_thread()

    def during_read(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread() is not reader or in_read:
            return  # the claim's own statements, or the read's later ones
        in_read.append(conn.in_transaction())
        worker = threading.Thread(
            target=lambda: claimed.append(store.claim("w", T0 + 1, 60, RULES)), daemon=True
        )
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive(), "the claim waited for the read"

    calls = {
        "page": lambda: store.page(uid, TaskFilter(T0 - 1, T0 + 100), 0, 10),
        "queued_count": store.queued_count,
        "status_counts": lambda: store.status_counts(uid, T0 - 1),
        "finished_between": lambda: store.finished_between(uid, ("avinfo",), T0, T0 + 9),
    }
    event.listen(engine, "after_cursor_execute", during_read)
    try:
        calls[read]()
    finally:
        event.remove(engine, "after_cursor_execute", during_read)
    assert in_read == [True]
    assert [t.task_id if t else None for t in claimed] == [task_id]
