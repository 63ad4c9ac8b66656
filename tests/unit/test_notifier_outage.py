"""The notifier through a database outage, over a real SQLite outbox whose calls fail as an
unreachable PostgreSQL's do while the test says so, and a scripted sender. No sockets.

It keeps looking quietly and delivers what was queued once the database is back; an
attempt whose outcome cannot be recorded keeps it and records it later (the callback is
not sent twice); an attempt whose signing secret cannot be looked up waits for the
database instead of spending an attempt."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

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


class _Down(Exception):
    """The driver's error for a connection that failed."""


class Database:
    """Whether the test's database is reachable; counts the calls refused."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.failures: Counter[str] = Counter()

    def gate(self, name: str) -> None:
        if self.down.is_set():
            self.failures[name] += 1
            raise sa_exc.OperationalError(name, {}, _Down("server closed the connection"))


class FlakyOutbox(OutboxStore):
    def __init__(self, engine: Engine, database: Database) -> None:
        super().__init__(engine)
        self.database = database

    def take_due(self, *args: Any, **kwargs: Any) -> Any:
        self.database.gate("take_due")
        return super().take_due(*args, **kwargs)

    def next_due_at(self) -> float | None:
        self.database.gate("next_due_at")
        return super().next_due_at()

    def record_attempt(self, *args: Any, **kwargs: Any) -> DeliveryState:
        self.database.gate("record_attempt")
        return super().record_attempt(*args, **kwargs)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path}/openkvs.db")
    yield engine
    engine.dispose()


def _enqueue(engine: Engine) -> str:
    user_id = UserStore(engine, SEALER).ensure_user("alice").id
    task_id = new_task_id(time.time())
    TaskStore(engine).create(
        NewTask(task_id, user_id, "CreateWaveTask", "audiowave", "wave", "usual", False),
        time.time(),
    )
    with engine.begin() as conn:
        outbox_mod.enqueue(
            conn, task_id=task_id, url="http://127.0.0.1:9/cb", body={"TaskID": task_id},
            now=time.time(),
        )  # fmt: skip
    return task_id


def _notifier(engine: Engine, database: Database, sender: Any) -> Notifier:
    secrets = UserStore(engine, SEALER).webhook_secret

    def secret(user_id: int) -> str:
        database.gate("secret")
        return secrets(user_id)

    return Notifier(
        FlakyOutbox(engine, database),
        sender,
        RetryPolicy((0.05, 0.05)),
        timeout=2.0,
        secrets=secret,
        poll_seconds=0.05,
    )


def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _delivered(engine: Engine, task_id: str) -> Any:
    store = OutboxStore(engine)

    def delivered() -> bool:
        [(callback, _)] = store.for_task(task_id)
        return callback.state is DeliveryState.DELIVERED

    _until(delivered)
    [(_callback, attempts)] = store.for_task(task_id)
    return attempts


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    warned = [r for r in caplog.records if r.getMessage() == "database_unavailable"]
    assert [getattr(r, "component", None) for r in warned] == ["notifier"]


def test_callbacks_queued_during_an_outage_go_out_when_it_ends(
    lite: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    database, sender = Database(), FakeSender()
    task_id = _enqueue(lite)
    database.down.set()
    notifier = _notifier(lite, database, sender)
    notifier.start()
    try:
        _until(lambda: database.failures["take_due"] >= 3)
        assert sender.sent == []
        database.down.clear()
        attempts = _delivered(lite, task_id)
    finally:
        notifier.stop(grace=0)
    assert [a.attempt for a in attempts] == [1]
    assert len(sender.sent) == 1
    _quiet(caplog)


class CutAfterSending(FakeSender):
    """Delivers, then the database goes away before the attempt is recorded."""

    database: Database | None = None

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        result = await super().send(url, body, headers)
        assert self.database is not None
        self.database.down.set()
        return result


def test_a_delivery_recorded_after_the_outage_is_not_sent_again(
    lite: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    database, sender = Database(), CutAfterSending()
    sender.database = database
    task_id = _enqueue(lite)
    notifier = _notifier(lite, database, sender)
    notifier.start()
    try:
        _until(lambda: database.failures["record_attempt"] >= 2)
        database.down.clear()
        attempts = _delivered(lite, task_id)
    finally:
        notifier.stop(grace=0)
    assert [(a.attempt, a.http_status) for a in attempts] == [(1, 200)]
    assert len(sender.sent) == 1
    _quiet(caplog)


def test_a_secret_lookup_during_an_outage_spends_no_attempt(
    lite: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    database, sender = Database(), FakeSender()
    task_id = _enqueue(lite)
    notifier = _notifier(lite, database, sender)
    real_take = notifier._outbox.take_due

    def take_then_cut(*args: Any, **kwargs: Any) -> Any:
        taken = real_take(*args, **kwargs)
        if taken:
            database.down.set()  # gone between taking the callback and its secret
        return taken

    notifier._outbox.take_due = take_then_cut  # type: ignore[method-assign]
    notifier.start()
    try:
        _until(lambda: database.failures["secret"] >= 2)
        assert sender.sent == []
        database.down.clear()
        attempts = _delivered(lite, task_id)
    finally:
        notifier.stop(grace=0)
    assert [(a.attempt, a.http_status) for a in attempts] == [(1, 200)]
    _quiet(caplog)
