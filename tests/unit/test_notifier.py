"""Outbox delivery with scripted senders: retries, back-off, give-up, records, isolation,
the deadline, the per-host bound and the signature headers. No sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine
from standardwebhooks import Webhook

from openkvs.model import DeliveryState, NewTask
from openkvs.notify.notifier import Notifier
from openkvs.notify.retry import RetryPolicy
from openkvs.notify.sender import FakeSender, SendResult
from openkvs.service.ids import new_task_id
from openkvs.store import outbox as outbox_mod
from openkvs.store.database import open_engine
from openkvs.store.outbox import OutboxStore
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore

SEALER = Sealer(bytes(32))


@pytest.fixture
def users(engine: Engine) -> UserStore:
    return UserStore(engine, SEALER)


def _enqueue(engine: Engine, url: str = "http://127.0.0.1:9/cb", user: str = "alice") -> str:
    """A task of ``user`` and its callback to ``url``; returns the TaskID."""
    user_id = UserStore(engine, SEALER).ensure_user(user).id
    task_id = new_task_id(time.time())
    TaskStore(engine).create(
        NewTask(task_id, user_id, "CreateWaveTask", "audiowave", "wave", "usual", False),
        time.time(),
    )
    with engine.begin() as conn:
        outbox_mod.enqueue(
            conn, task_id=task_id, url=url, body={"TaskID": task_id}, now=time.time()
        )
    return task_id


_made: list[Notifier] = []


@pytest.fixture(autouse=True)
def _stop_notifiers() -> Iterator[None]:
    yield
    while _made:
        _made.pop().stop(grace=0)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only, for the tests of delivery logic (the SQL runs on both in the others)."""
    engine = open_engine(f"sqlite:///{tmp_path}/openkvs.db")
    yield engine
    engine.dispose()


def _notifier(
    engine: Engine, sender: object, backoff: tuple[float, ...], **kwargs: object
) -> Notifier:
    notifier = Notifier(
        OutboxStore(engine),
        sender,  # type: ignore[arg-type]
        RetryPolicy(backoff),
        secrets=UserStore(engine, SEALER).webhook_secret,
        **{"timeout": 1.0, **kwargs},  # type: ignore[arg-type]
    )
    _made.append(notifier)
    return notifier


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
    task_id = _enqueue(engine)
    sender = FakeSender(statuses=[500, 500, 200])
    store = OutboxStore(engine)
    _drain(_notifier(engine, sender, (0.05, 0.05, 0.05)), 1.0)
    [(callback, attempts)] = store.for_task(task_id)
    assert callback.state is DeliveryState.DELIVERED
    assert [a.http_status for a in attempts] == [500, 500, 200]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert len(sender.sent) == 3
    assert sender.sent[0][1] == f'{{"TaskID":"{task_id}"}}'.encode()


def test_gives_up_after_the_last_backoff(lite: Engine) -> None:
    task_id = _enqueue(lite)
    store = OutboxStore(lite)
    _drain(_notifier(lite, FakeSender(statuses=[503]), (0.01, 0.01)), 0.5)
    [(callback, attempts)] = store.for_task(task_id)
    assert callback.state is DeliveryState.FAILED
    assert len(attempts) == 3
    assert store.next_due_at() is None


def test_backoff_is_respected(lite: Engine) -> None:
    task_id = _enqueue(lite)
    store = OutboxStore(lite)
    _drain(_notifier(lite, FakeSender(statuses=[500, 200]), (30,)), 0.3)
    [(callback, attempts)] = store.for_task(task_id)
    assert callback.state is DeliveryState.PENDING and len(attempts) == 1
    due = store.next_due_at()
    assert due is not None and due > time.time() + 25


def test_take_due_leases_callbacks_with_their_user(engine: Engine, users: UserStore) -> None:
    _enqueue(engine, user="bob")
    store = OutboxStore(engine)
    now = time.time()
    [taken] = store.take_due(now, 40)
    bob = users.ensure_user("bob")
    assert taken.user_id == bob.id
    assert store.take_due(now + 1, 40) == []  # leased to the first taker
    assert len(store.take_due(now + 41, 40)) == 1  # that taker died: taken again


def test_take_due_passes_over_destinations_that_are_full(engine: Engine) -> None:
    busy = [_enqueue(engine, "http://busy.example/cb") for _ in range(5)]
    other = [_enqueue(engine, f"http://other{i}.example/cb") for i in range(3)]
    store = OutboxStore(engine)
    taken = store.take_due(time.time(), 40, 10, lambda url: "busy" not in url)
    assert [c.task_id for c in taken] == other
    # The busy host's callbacks were left untouched and are still due.
    assert [c.task_id for c in store.take_due(time.time(), 40, 10)] == busy


def test_a_send_error_of_any_kind_is_one_failed_attempt(lite: Engine) -> None:
    class Exploding(FakeSender):
        async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
            if "boom" in url:
                raise RuntimeError("the sender broke")
            return await super().send(url, body, headers)

    bad = [_enqueue(lite, f"http://boom{i}.example/cb") for i in range(9)]
    good = _enqueue(lite, "http://fine.example/cb")
    store = OutboxStore(lite)
    notifier = _notifier(lite, Exploding(), (30,))
    assert notifier.deliver_due() == 10  # one pass: nothing aborted it
    assert store.for_task(good)[0][0].state is DeliveryState.DELIVERED
    for task_id in bad:
        [(callback, [attempt])] = store.for_task(task_id)
        assert callback.state is DeliveryState.PENDING
        assert attempt.http_status is None and "the sender broke" in attempt.error


def test_an_unusable_url_fails_at_once(lite: Engine) -> None:
    """A URL that can never work (refused by the sender as final) is not retried."""

    class Refusing(FakeSender):
        async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
            return SendResult(None, "refused: the URL has no host", final=True)

    task_id = _enqueue(lite, "http:///nohost")
    _notifier(lite, Refusing(), (0.01, 0.01)).deliver_due()
    [(callback, [attempt])] = OutboxStore(lite).for_task(task_id)
    assert callback.state is DeliveryState.FAILED and "no host" in attempt.error


def test_the_deadline_ends_a_hanging_attempt_and_others_go_on(lite: Engine) -> None:
    hang = "http://hang.example/cb"
    stuck = _enqueue(lite, hang)
    fine = [_enqueue(lite, f"http://fine{i}.example/cb") for i in range(3)]
    store = OutboxStore(lite)
    notifier = _notifier(lite, FakeSender(hanging=frozenset({hang})), (30,), timeout=0.3)
    assert notifier.deliver_due() == 4
    for task_id in fine:
        assert store.for_task(task_id)[0][0].state is DeliveryState.DELIVERED
    [(callback, [attempt])] = store.for_task(stuck)
    assert callback.state is DeliveryState.PENDING
    assert attempt.http_status is None and "within 0.3 s" in attempt.error


def test_per_host_bound_leaves_room_for_other_hosts(lite: Engine) -> None:
    hang = "http://slow.example/cb"
    slow = [_enqueue(lite, hang) for _ in range(5)]
    fine = [_enqueue(lite, f"http://fine{i}.example/cb") for i in range(3)]
    store = OutboxStore(lite)
    sender = FakeSender(hanging=frozenset({hang}))
    notifier = _notifier(lite, sender, (30,), timeout=0.3, per_host=2, in_flight=5)
    # Five slots: two for the slow host (its bound), three for the others.
    assert notifier.deliver_due() == 5
    assert [len(store.for_task(t)[0][1]) for t in slow] == [1, 1, 0, 0, 0]
    assert all(store.for_task(t)[0][0].state is DeliveryState.DELIVERED for t in fine)


def test_attempts_run_concurrently_in_the_background(lite: Engine) -> None:
    hang = "http://hang.example/cb"
    stuck = [_enqueue(lite, hang) for _ in range(3)]
    sender = FakeSender(hanging=frozenset({hang}))
    notifier = _notifier(lite, sender, (30,), timeout=60, poll_seconds=0.05)
    store = OutboxStore(lite)
    notifier.start()
    try:
        fine = _enqueue(lite, "http://fine.example/cb")
        notifier.wake()
        deadline = time.time() + 10
        while (
            store.for_task(fine)[0][0].state is not DeliveryState.DELIVERED
            or [u for u, _ in sender.sent].count(hang) < 3
        ):
            assert time.time() < deadline, (sender.sent, store.for_task(fine))
            time.sleep(0.02)
        # ... while the three hanging attempts are still in flight, none recorded.
        assert all(store.for_task(t)[0][1] == [] for t in stuck)
    finally:
        notifier.stop(grace=0)


def test_callbacks_are_signed_with_the_users_secret(lite: Engine) -> None:
    users = UserStore(lite, SEALER)
    task_id = _enqueue(lite, user="carol")
    sender = FakeSender(statuses=[500, 200])
    _drain(_notifier(lite, sender, (0.01,)), 0.5)
    assert len(sender.headers) == 2
    first, second = sender.headers
    [(callback, _)] = OutboxStore(lite).for_task(task_id)
    assert first["webhook-id"] == second["webhook-id"] == f"msg_{task_id}_{callback.id}"
    assert abs(int(second["webhook-timestamp"]) - time.time()) < 60
    secret = users.webhook_secret(users.ensure_user("carol").id)
    body = sender.sent[1][1]
    assert Webhook(secret).verify(body, second) == {"TaskID": task_id}
    other = users.webhook_secret(users.ensure_user("dave").id)
    with pytest.raises(Exception, match="signature"):
        Webhook(other).verify(body, second)


def test_a_callback_without_its_task_is_a_failed_attempt(lite: Engine) -> None:
    with lite.begin() as conn:
        outbox_mod.enqueue(conn, task_id="gone", url="http://x.example/", body={}, now=time.time())
    sender = FakeSender()
    _notifier(lite, sender, (30,)).deliver_due()
    [(callback, [attempt])] = OutboxStore(lite).for_task("gone")
    assert callback.state is DeliveryState.PENDING and "no user" in attempt.error
    assert sender.sent == []


def test_the_fake_sender_hangs_until_cancelled() -> None:
    async def run() -> None:
        sender = FakeSender(hanging=frozenset({"u"}))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await sender.send("u", b"", {})

    asyncio.run(run())
