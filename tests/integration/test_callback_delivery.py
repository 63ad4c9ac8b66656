"""The notifier with the real HTTP sender and real receivers on loopback, in this process.

The deadline cuts off a receiver that drips its answer; URLs poisoned by an older version
sit in the outbox beside good ones without holding them back; a host name is connected
through the address it was checked at, with its name kept in the ``Host`` header.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from sqlalchemy import Engine
from standardwebhooks import Webhook
from tests.support.receiver import CallbackReceiver
from tests.support.stalling import StallingReceiver

from openkvs.model import DeliveryState, NewTask
from openkvs.notify.notifier import Notifier
from openkvs.notify.policy import AddressPolicy, IPAddress
from openkvs.notify.retry import RetryPolicy
from openkvs.notify.sender import HttpSender
from openkvs.service.ids import new_task_id
from openkvs.store import outbox as outbox_mod
from openkvs.store.database import open_engine
from openkvs.store.outbox import OutboxStore
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore

LOOPBACK = AddressPolicy((ip_network("127.0.0.0/8"),))
SEALER = Sealer(bytes(32))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = open_engine(f"sqlite:///{tmp_path}/openkvs.db")
    yield eng
    eng.dispose()


def _task(engine: Engine) -> str:
    user_id = UserStore(engine, SEALER).ensure_user("alice").id
    task_id = new_task_id(time.time())
    TaskStore(engine).create(
        NewTask(task_id, user_id, "CreateWaveTask", "audiowave", "wave", "usual", False),
        time.time(),
    )
    return task_id


def _enqueue(engine: Engine, url: str, task_id: str | None = None) -> str:
    """A callback to ``url`` written straight into the outbox (as any version would have)."""
    task_id = task_id or _task(engine)
    with engine.begin() as conn:
        outbox_mod.enqueue(
            conn, task_id=task_id, url=url, body={"TaskID": task_id}, now=time.time()
        )
    return task_id


def _notifier(engine: Engine, *, deadline: float, policy: AddressPolicy = LOOPBACK) -> Notifier:
    # The sender's own per-step timeout is far beyond the deadline: the deadline must act.
    return Notifier(
        OutboxStore(engine),
        HttpSender(policy, timeout=300),
        RetryPolicy((60,)),
        timeout=deadline,
        secrets=UserStore(engine, SEALER).webhook_secret,
        poll_seconds=0.05,
    )


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_dripping_or_silent_receiver_is_cut_off_at_the_deadline(engine: Engine) -> None:
    with StallingReceiver(drip=0.2) as dripping, StallingReceiver() as silent:
        drip_task = _enqueue(engine, dripping.url)
        silent_task = _enqueue(engine, silent.url)
        notifier = _notifier(engine, deadline=1.5)
        store = OutboxStore(engine)
        notifier.start()
        try:
            _wait(
                lambda: all(store.for_task(t)[0][1] for t in (drip_task, silent_task)),
                "the attempts did not end",
            )
        finally:
            notifier.stop(grace=0)
        for task_id in (drip_task, silent_task):
            [(callback, [attempt])] = store.for_task(task_id)
            assert callback.state is DeliveryState.PENDING  # to be tried again later
            assert attempt.http_status is None
            assert attempt.error == "no complete answer within 1.5 s"
        # Both got the whole request, and the sender hung up on them.
        assert len(dripping.requests) == len(silent.requests) == 1
        dripping.wait_closed()
        silent.wait_closed()


POISONED = [
    "http://127.0.0.1:1/cb\r\nX-Injected: yes",
    "http://127.0.0.1:1/c b",
    "http://[::1",
    "ftp://127.0.0.1/cb",
    "http://user:pw@127.0.0.1:1/cb",
    "http:///cb",
    "http://127.0.0.1:99999/cb",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://169.254.169.254/latest/meta-data/",
]


def test_poisoned_urls_in_the_outbox_do_not_hold_back_good_ones(engine: Engine) -> None:
    """Callbacks stored by an older version that validated less: each is one failed
    attempt of its own, and the good callback behind them is delivered."""
    bad = [_enqueue(engine, url) for url in POISONED]
    with CallbackReceiver() as receiver:
        good = _enqueue(engine, receiver.url)
        notifier = _notifier(engine, deadline=30)
        notifier.start()
        try:
            [request] = receiver.wait_for(1, timeout=30)
            store = OutboxStore(engine)
            _wait(lambda: all(store.for_task(t)[0][1] for t in bad), "poisoned not attempted")
        finally:
            notifier.stop(grace=0)
    assert request.json == {"TaskID": good}
    secret = UserStore(engine, SEALER).webhook_secret(
        UserStore(engine, SEALER).ensure_user("alice").id
    )
    assert Webhook(secret).verify(request.body, request.headers) == {"TaskID": good}
    for task_id, url in zip(bad, POISONED, strict=True):
        [(callback, [attempt])] = store.for_task(task_id)
        assert attempt.http_status is None and attempt.error.startswith("refused:"), url
        # Unusable forms fail for good at once; refused destinations are tried again.
        unusable = "metadata" not in url and "169.254" not in url
        expected = DeliveryState.FAILED if unusable else DeliveryState.PENDING
        assert callback.state is expected, (url, callback.state)


def test_a_name_is_connected_through_its_checked_address() -> None:
    """The sender resolves the name, checks the address and connects to it; the receiver
    sees the name in ``Host``. Under the default policy the same name is refused."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        assert host == "receiver.test"
        return [ip_address("127.0.0.1")]

    async def send(sender: HttpSender, url: str) -> tuple[int | None, str]:
        try:
            result = await sender.send(url, b"{}", {"webhook-id": "msg_x"})
        finally:
            await sender.aclose()
        return result.http_status, result.error

    with CallbackReceiver() as receiver:
        url = f"http://receiver.test:{receiver.port}/cb"
        allowed = HttpSender(LOOPBACK, timeout=10, resolve=resolve)
        assert asyncio.run(send(allowed, url)) == (200, "")
        [request] = receiver.requests
        assert request.headers["host"] == f"receiver.test:{receiver.port}"
        assert request.headers["webhook-id"] == "msg_x"
        refused = HttpSender(AddressPolicy(), timeout=10, resolve=resolve)
        status, error = asyncio.run(send(refused, url))
        assert status is None and "receiver.test resolves to 127.0.0.1" in error
        assert len(receiver.requests) == 1
