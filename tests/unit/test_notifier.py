"""Outbox delivery with a scripted sender: retries, back-off, give-up, records."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from openkvs.model import DeliveryState
from openkvs.notify.notifier import Notifier
from openkvs.notify.retry import RetryPolicy
from openkvs.notify.sender import FakeSender
from openkvs.store import outbox as outbox_mod
from openkvs.store.outbox import OutboxStore


def _enqueue(engine: Engine, task_id: str) -> None:
    with engine.begin() as conn:
        outbox_mod.enqueue(
            conn,
            task_id=task_id,
            url="http://127.0.0.1:9/cb",
            body={"TaskID": task_id},
            now=time.time(),
        )


def _drain(notifier: Notifier, seconds: float = 3.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        notifier.deliver_due()
        time.sleep(0.01)


def test_retry_policy() -> None:
    policy = RetryPolicy((10, 60, 300))
    assert policy.max_attempts == 4
    assert [policy.next_delay(n) for n in range(0, 5)] == [None, 10, 60, 300, None]


def test_two_failures_then_delivery(engine: Engine) -> None:
    _enqueue(engine, "t1")
    sender = FakeSender(statuses=[500, 500, 200])
    store = OutboxStore(engine)
    notifier = Notifier(store, sender, RetryPolicy((0.05, 0.05, 0.05)), timeout=1)
    _drain(notifier, 1.0)
    [(callback, attempts)] = store.for_task("t1")
    assert callback.state is DeliveryState.DELIVERED
    assert [a.http_status for a in attempts] == [500, 500, 200]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert len(sender.sent) == 3 and sender.sent[0][1] == b'{"TaskID":"t1"}'


def test_gives_up_after_the_last_backoff(engine: Engine) -> None:
    _enqueue(engine, "t2")
    store = OutboxStore(engine)
    notifier = Notifier(store, FakeSender(statuses=[503]), RetryPolicy((0.01, 0.01)), timeout=1)
    _drain(notifier, 0.5)
    [(callback, attempts)] = store.for_task("t2")
    assert callback.state is DeliveryState.FAILED
    assert len(attempts) == 3
    assert store.next_due_at() is None


def test_backoff_is_respected(engine: Engine) -> None:
    _enqueue(engine, "t3")
    store = OutboxStore(engine)
    notifier = Notifier(store, FakeSender(statuses=[500, 200]), RetryPolicy((30,)), timeout=1)
    _drain(notifier, 0.3)
    [(callback, attempts)] = store.for_task("t3")
    assert callback.state is DeliveryState.PENDING and len(attempts) == 1
    due = store.next_due_at()
    assert due is not None and due > time.time() + 25


def test_take_due_leases_callbacks(engine: Engine) -> None:
    _enqueue(engine, "t4")
    store = OutboxStore(engine)
    now = time.time()
    assert len(store.take_due(now, 40)) == 1
    assert store.take_due(now + 1, 40) == []  # leased to the first taker
    assert len(store.take_due(now + 41, 40)) == 1  # that taker died: taken again
