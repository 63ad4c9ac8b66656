"""ExtParam ClientToken in the store: one task per (user, token) for 24 hours, races included."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, func, select, text

from openkvs.errors import ApiError
from openkvs.model import NewTask
from openkvs.service.ids import new_task_id
from openkvs.service.submission import client_token
from openkvs.store.client_tokens import TTL, ClientTokens
from openkvs.store.schema import client_tokens, tasks, users
from openkvs.store.tasks import TaskStore

T0 = 1_700_000_000.0


@pytest.fixture
def store(engine: Engine) -> TaskStore:
    return TaskStore(engine)


def _user(engine: Engine, name: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(users.insert().values(name=name, created_at=T0))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])


def _new(user_id: int, now: float) -> NewTask:
    return NewTask(
        task_id=new_task_id(now),
        user_id=user_id,
        action="CreateTask",
        task_type="avinfo",
        preset="p",
        pipeline="usual",
        is_top=False,
    )


def _task_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())


def test_a_repeated_token_returns_the_first_task(engine: Engine, store: TaskStore) -> None:
    alice = _user(engine, "alice")
    first = _new(alice, T0)
    assert store.create(first, T0, client_token="job-1") == first.task_id
    again = _new(alice, T0 + 60)
    assert store.create(again, T0 + 60, client_token="job-1") == first.task_id
    assert store.get(again.task_id) is None
    assert _task_count(engine) == 1
    other = _new(alice, T0 + 61)
    assert store.create(other, T0 + 61, client_token="job-2") == other.task_id
    plain = _new(alice, T0 + 62)
    assert store.create(plain, T0 + 62) == plain.task_id
    assert _task_count(engine) == 3


def test_tokens_belong_to_their_user(engine: Engine, store: TaskStore) -> None:
    alice, bob = _user(engine, "alice"), _user(engine, "bob")
    a, b = _new(alice, T0), _new(bob, T0)
    assert store.create(a, T0, client_token="same") == a.task_id
    assert store.create(b, T0, client_token="same") == b.task_id


def test_a_token_is_forgotten_after_a_day(engine: Engine, store: TaskStore) -> None:
    alice = _user(engine, "alice")
    first = _new(alice, T0)
    store.create(first, T0, client_token="daily")
    just_before = _new(alice, T0 + TTL - 1)
    assert store.create(just_before, T0 + TTL - 1, client_token="daily") == first.task_id
    later = _new(alice, T0 + TTL + 1)
    assert store.create(later, T0 + TTL + 1, client_token="daily") == later.task_id
    repeat = _new(alice, T0 + TTL + 2)
    assert store.create(repeat, T0 + TTL + 2, client_token="daily") == later.task_id


def test_expired_tokens_are_purged(engine: Engine) -> None:
    alice = _user(engine, "alice")
    TaskStore(engine).create(_new(alice, T0), T0, client_token="old")
    TaskStore(engine).create(_new(alice, T0 + 10), T0 + 10, client_token="recent")
    fresh = TaskStore(engine)  # a new process: purges at its first token
    fresh.create(_new(alice, T0 + TTL + 5), T0 + TTL + 5, client_token="new")
    with engine.connect() as conn:
        left = set(conn.execute(select(client_tokens.c.token)).scalars())
    assert left == {"recent", "new"}


def test_concurrent_requests_with_one_token_make_one_task(engine: Engine, store: TaskStore) -> None:
    alice = _user(engine, "alice")
    barrier = threading.Barrier(6)
    got: list[str] = []
    errors: list[BaseException] = []

    def request(n: int) -> None:
        try:
            barrier.wait()
            got.append(store.create(_new(alice, T0 + n), T0 + n, client_token="race"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(got) == 6 and len(set(got)) == 1
    assert _task_count(engine) == 1


def _wait_until_blocked(engine: Engine) -> None:
    """On PostgreSQL: until another session of this database waits for a lock."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the second request never waited for the first")


@pytest.mark.parametrize("first_commits", [True, False])
def test_a_request_waits_for_the_outcome_of_one_holding_its_token(
    engine: Engine, store: TaskStore, first_commits: bool
) -> None:
    alice = _user(engine, "alice")
    first = _new(alice, T0)
    second = _new(alice, T0 + 1)
    got: list[str] = []
    with engine.connect() as holder:
        trans = holder.begin()
        assert ClientTokens().reserve(holder, alice, "held", first.task_id, T0) == first.task_id
        thread = threading.Thread(
            target=lambda: got.append(store.create(second, T0 + 1, client_token="held"))
        )
        thread.start()
        _wait_until_blocked(engine)
        if first_commits:
            trans.commit()
        else:
            trans.rollback()
        thread.join()
    assert got == [first.task_id if first_commits else second.task_id]
    assert (store.get(second.task_id) is None) is first_commits


@pytest.mark.parametrize(
    ("ext", "expected"),
    [({}, ""), ({"ClientToken": ""}, ""), ({"ClientToken": "a" * 64}, "a" * 64),
     ({"ClientToken": "order 42/~"}, "order 42/~")],
)  # fmt: skip
def test_client_token_values(ext: dict[str, object], expected: str) -> None:
    assert client_token(ext) == expected


@pytest.mark.parametrize(
    "value", ["a" * 65, "caf\u00e9", "tab\there", "nul\x00", 42, ["x"], {"a": 1}, True]
)
def test_bad_client_tokens_are_1018(value: object) -> None:
    with pytest.raises(ApiError) as caught:
        client_token({"ClientToken": value})
    assert caught.value.code == 1018
