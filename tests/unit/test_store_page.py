"""GetTaskList's store query (built once per combination of filters) on both databases."""

from __future__ import annotations

from sqlalchemy import Engine, update

from openkvs.model import NewTask, TaskRecord, TaskStatus
from openkvs.store.schema import tasks, users
from openkvs.store.tasks import TaskFilter, TaskStore

T0 = 1_700_000_000.0


def _setup(engine: Engine) -> tuple[TaskStore, int, int]:
    with engine.begin() as conn:
        alice = conn.execute(users.insert().values(name="alice", created_at=T0))
        bob = conn.execute(users.insert().values(name="bob", created_at=T0))
    assert alice.inserted_primary_key is not None and bob.inserted_primary_key is not None
    a, b = int(alice.inserted_primary_key[0]), int(bob.inserted_primary_key[0])
    store = TaskStore(engine)
    for n in range(12):
        store.create(
            NewTask(
                task_id=f"{n:040d}",
                user_id=a,
                action="CreateWaveTask" if n % 3 == 0 else "CreateTask",
                task_type="audiowave" if n % 3 == 0 else "avinfo",
                preset="p",
                pipeline="usual",
                is_top=False,
            ),
            T0 + n,
        )
    store.create(
        NewTask(
            task_id="b" * 40,
            user_id=b,
            action="CreateTask",
            task_type="avinfo",
            preset="p",
            pipeline="usual",
            is_top=False,
        ),
        T0,
    )
    with engine.begin() as conn:  # task 4 failed with 2058, task 5 was deleted
        conn.execute(
            update(tasks)
            .where(tasks.c.task_id == f"{4:040d}")
            .values(status="fail", error_code=2058)
        )
        conn.execute(update(tasks).where(tasks.c.task_id == f"{5:040d}").values(status="del"))
    return store, a, b


def _ids(found: list[TaskRecord]) -> list[int]:
    return [int(t.task_id) for t in found]


def test_pages_and_filters(engine: Engine) -> None:
    store, alice, bob = _setup(engine)
    everything = TaskFilter(T0, T0 + 100)
    total, first = store.page(alice, everything, 0, 4)
    assert total == 11 and _ids(first) == [11, 10, 9, 8]  # newest first, deleted hidden
    total, second = store.page(alice, everything, 4, 4)
    assert total == 11 and _ids(second) == [7, 6, 4, 3]
    assert store.page(alice, TaskFilter(T0 + 2, T0 + 6), 0, 10)[1][0].task_id == f"{4:040d}"
    assert _ids(store.page(alice, TaskFilter(T0 + 2, T0 + 6), 0, 10)[1]) == [4, 3, 2]
    failed = TaskFilter(T0, T0 + 100, status=TaskStatus.FAIL)
    assert store.page(alice, failed, 0, 10)[0] == 1
    assert _ids(store.page(alice, TaskFilter(T0, T0 + 100, error_code=2058), 0, 10)[1]) == [4]
    waves = TaskFilter(T0, T0 + 100, actions=("CreateWaveTask",))
    assert _ids(store.page(alice, waves, 0, 10)[1]) == [9, 6, 3, 0]
    both = TaskFilter(T0, T0 + 100, actions=("CreateWaveTask", "CreateTask"))
    assert store.page(alice, both, 0, 10)[0] == 11
    typed = TaskFilter(T0, T0 + 100, status=TaskStatus.INIT, task_type="avinfo")
    assert _ids(store.page(alice, typed, 0, 3)[1]) == [11, 10, 8]
    assert store.page(bob, everything, 0, 10)[0] == 1
