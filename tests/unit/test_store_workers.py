"""The worker registry on SQLite and PostgreSQL: rows, heartbeats, computed states."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine

from openkvs.store.workers import (
    PRUNE_AFTER,
    WorkerRecord,
    WorkerRegistry,
    WorkerState,
    lost_after,
)

T0 = 1_700_000_000.0
LOST_AFTER = 30.0


def _worker(worker_id: str, **changes: object) -> WorkerRecord:
    base = WorkerRecord(
        id=worker_id,
        host="host-a",
        pid=4321,
        pipelines=("fast",),
        task_types=("avinfo", "audiowave"),
        concurrency=2,
        version="1.2.3",
        state=WorkerState.ALIVE,
        running=(),
        started_at=T0,
        heartbeat_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def registry(engine: Engine) -> WorkerRegistry:
    return WorkerRegistry(engine)


def test_registered_workers_are_listed_as_written(registry: WorkerRegistry) -> None:
    registry.register(_worker("w1"))
    registry.register(_worker("w2", host="host-b", pipelines=(), concurrency=8))
    one, two = registry.list_workers(T0 + 1, LOST_AFTER)
    assert one == replace(_worker("w1"), task_types=("audiowave", "avinfo"))  # sorted
    assert (two.id, two.host, two.pipelines, two.concurrency) == ("w2", "host-b", (), 8)
    assert one.as_json(T0 + 1.5)["heartbeat_age"] == 1.5


def test_heartbeat_renews_running_tasks_and_state(registry: WorkerRegistry) -> None:
    registry.register(_worker("w1"))
    assert registry.heartbeat("w1", T0 + 5, ["t2", "t1"], WorkerState.ALIVE)
    [found] = registry.list_workers(T0 + 5, LOST_AFTER)
    assert (found.running, found.heartbeat_at, found.state) == (
        ("t2", "t1"),
        T0 + 5,
        WorkerState.ALIVE,
    )
    assert registry.heartbeat("w1", T0 + 6, ["t1"], WorkerState.DRAINING)
    [found] = registry.list_workers(T0 + 6, LOST_AFTER)
    assert (found.running, found.state) == (("t1",), WorkerState.DRAINING)
    assert found.started_at == T0  # a heartbeat keeps the start time


def test_heartbeat_of_an_unknown_worker_says_so(registry: WorkerRegistry) -> None:
    assert not registry.heartbeat("nobody", T0, [], WorkerState.ALIVE)
    assert registry.list_workers(T0, LOST_AFTER) == []
    with pytest.raises(ValueError, match="lost"):
        registry.heartbeat("nobody", T0, [], WorkerState.LOST)


def test_a_silent_worker_is_lost_whatever_its_row_says(registry: WorkerRegistry) -> None:
    registry.register(_worker("alive"))
    registry.register(_worker("draining", state=WorkerState.DRAINING))
    at_threshold = {w.id: w.state for w in registry.list_workers(T0 + LOST_AFTER, LOST_AFTER)}
    assert at_threshold == {"alive": WorkerState.ALIVE, "draining": WorkerState.DRAINING}
    later = T0 + LOST_AFTER + 0.5
    assert {w.state for w in registry.list_workers(later, LOST_AFTER)} == {WorkerState.LOST}
    registry.heartbeat("alive", later, [], WorkerState.ALIVE)  # it came back
    states = {w.id: w.state for w in registry.list_workers(later, LOST_AFTER)}
    assert states == {"alive": WorkerState.ALIVE, "draining": WorkerState.LOST}


def test_unregister_and_register_again(registry: WorkerRegistry) -> None:
    registry.register(_worker("w1"))
    registry.register(_worker("w1", concurrency=5))  # the same id replaces its row
    assert [w.concurrency for w in registry.list_workers(T0, LOST_AFTER)] == [5]
    registry.unregister("w1")
    registry.unregister("w1")  # nothing left: no error
    assert registry.list_workers(T0, LOST_AFTER) == []


def test_prune_deletes_only_workers_silent_for_a_day(registry: WorkerRegistry) -> None:
    registry.register(_worker("old", heartbeat_at=T0 - PRUNE_AFTER - 1))
    registry.register(_worker("recently-lost", heartbeat_at=T0 - 3600))
    registry.register(_worker("alive"))
    assert registry.prune(T0) == 1
    assert {w.id for w in registry.list_workers(T0, LOST_AFTER)} == {"recently-lost", "alive"}


def test_lost_after_is_three_heartbeats_and_never_shorter_than_the_lease() -> None:
    assert lost_after(10, 60) == 60
    assert lost_after(30, 60) == 90
    assert lost_after(0.2, 1) == 1
