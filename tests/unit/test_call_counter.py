"""API call counters: counted in memory, visible to readers at once, written in batches."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from openkvs.store.counters import PERIOD, CallCounter
from openkvs.store.schema import api_calls, users

T0 = 1_700_000_100.0  # inside a 5-minute period


def _user(engine: Engine, name: str = "alice") -> int:
    with engine.begin() as conn:
        result = conn.execute(users.insert().values(name=name, created_at=T0))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(api_calls.c.count), 0))).scalar())


def test_counts_are_kept_in_memory_until_a_flush(engine: Engine) -> None:
    user = _user(engine)
    counter = CallCounter(engine, flush_seconds=3600)  # no background flush in this test
    try:
        for _ in range(5):
            counter.count(user, "GetTaskList", T0)
        counter.count(user, "CreateTask", T0 + PERIOD)
        assert _stored(engine) == 0  # no database write per call
        start = int(T0) // PERIOD * PERIOD
        assert counter.between(user, start, start + 2 * PERIOD) == [
            (start, "GetTaskList", 5),
            (start + PERIOD, "CreateTask", 1),
        ]  # a reader sees them: between() flushes first
        assert _stored(engine) == 6
    finally:
        counter.close()


def test_processes_add_up_and_close_writes_the_rest(engine: Engine) -> None:
    user = _user(engine)
    first, second = CallCounter(engine, 3600), CallCounter(engine, 3600)
    first.count(user, "GetTaskList", T0)
    second.count(user, "GetTaskList", T0)
    second.count(user, "GetTaskList", T0)
    first.close()
    second.close()
    start = int(T0) // PERIOD * PERIOD
    reader = CallCounter(engine)
    assert reader.between(user, start, start + PERIOD) == [(start, "GetTaskList", 3)]
    reader.close()


def test_the_background_thread_writes_counts(engine: Engine) -> None:
    user = _user(engine)
    counter = CallCounter(engine, flush_seconds=0.01)
    try:
        counter.count(user, "QueryPipeline", T0)
        deadline = time.monotonic() + 30  # a guard against hanging, not a speed target
        while _stored(engine) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _stored(engine) == 1  # written by the thread: nothing read the counters
    finally:
        counter.close()


def test_a_failed_flush_keeps_the_counts(engine: Engine) -> None:
    user = _user(engine)
    counter = CallCounter(engine, flush_seconds=3600)
    counter.count(user, "GetTaskList", T0)
    counter.count(9_999_999, "GetTaskList", T0)  # no such user: the foreign key refuses it
    with pytest.raises(IntegrityError):
        counter.flush()
    assert _stored(engine) == 0  # one transaction: nothing was written
    with engine.begin() as conn:
        conn.execute(users.insert().values(id=9_999_999, name="late", created_at=T0))
    counter.close()  # writes what the failed flush kept
    start = int(T0) // PERIOD * PERIOD
    reader = CallCounter(engine)
    assert reader.between(user, start, start + PERIOD) == [(start, "GetTaskList", 1)]
    assert reader.between(9_999_999, start, start + PERIOD) == [(start, "GetTaskList", 1)]
    reader.close()
