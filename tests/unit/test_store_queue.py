"""The tasks table as a queue: claim order, leases, finishing with the outbox."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from openkvs.model import DeliveryState, NewTask, TaskStatus
from openkvs.service.ids import new_task_id
from openkvs.store.outbox import OutboxStore
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore

T0 = 1_700_000_000.0
SEALER = Sealer(bytes(32))


@pytest.fixture
def store(engine: Engine) -> TaskStore:
    return TaskStore(engine)


@pytest.fixture
def user_id(engine: Engine) -> int:
    return UserStore(engine, SEALER).ensure_user("alice").id


def _add(
    store: TaskStore, user_id: int, now: float, *, top: bool = False, pipeline: str = "usual"
) -> str:
    task_id = new_task_id(now)
    store.create(
        NewTask(
            task_id=task_id,
            user_id=user_id,
            action="CreateWaveTask",
            task_type="audiowave",
            preset="wave",
            pipeline=pipeline,
            is_top=top,
            request={"CbUrl": "http://127.0.0.1:9/cb"},
        ),
        now,
    )
    return task_id


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
    from openkvs.model import Pipeline, PipelineState
    from openkvs.service.pipelines import blocked
    from openkvs.store.pipelines import PipelineStore

    other = UserStore(engine, SEALER).ensure_user("bob").id
    pipelines = PipelineStore(engine)
    pipelines.put(user_id, Pipeline("night", PipelineState.PAUSED, "", "", 0, 10), T0)
    pipelines.put(user_id, Pipeline("usual", PipelineState.ACTIVE, "", "", 0, 1), T0)
    paused = _add(store, user_id, T0, pipeline="night")
    first = _add(store, user_id, T0 + 1, pipeline="usual")
    second = _add(store, user_id, T0 + 2, pipeline="usual")
    bobs = _add(store, other, T0 + 3, pipeline="usual")

    def rule(stored: list, running: dict) -> set:  # type: ignore[type-arg]
        return blocked(stored, running, T0, 10)

    got = store.claim("w1", T0 + 10, 60, rule)
    assert got is not None and got.task_id == first
    # alice's usual has Quota 1 and one running: bob's task goes next, not alice's second
    got = store.claim("w2", T0 + 10, 60, rule)
    assert got is not None and got.task_id == bobs
    assert store.claim("w3", T0 + 10, 60, rule) is None
    assert store.finish(
        first,
        "w1",
        status=TaskStatus.SUCC,
        error_code=0,
        error_msg="",
        result=[],
        callback=None,
        now=T0 + 11,
    )
    got = store.claim("w3", T0 + 12, 60, rule)
    assert got is not None and got.task_id == second
    pipelines.put(user_id, Pipeline("night", PipelineState.ACTIVE, "", "", 0, 10), T0 + 13)
    got = store.claim("w4", T0 + 14, 60, rule)
    assert got is not None and got.task_id == paused
