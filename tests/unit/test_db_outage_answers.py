"""A database outage is answered 503 ``ServiceUnavailable`` with ``Retry-After``, never 500
or 403: the mapping itself, which errors count as an outage, and the app on a real SQLite
store whose key lookup or task read fails as an unreachable PostgreSQL does. In-process
HTTP (httpx's ASGI transport), no sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from starlette.applications import Starlette

from openkvs.api import responses
from openkvs.api.app import create_app
from openkvs.api.keycache import KeyCache
from openkvs.api.sigv4 import presign_url
from openkvs.config import Settings
from openkvs.errors import DatabaseUnavailable, InvalidClientTokenId
from openkvs.model import User
from openkvs.runtime import open_services
from openkvs.service.context import Services
from openkvs.service.ids import new_task_id
from openkvs.store.outage import OutageWatch, unavailable

#: A well-formed TaskID that no task has.
TASK_ID = new_task_id(0)


class _DriverError(Exception):
    """Stands for the driver's own exception (psycopg's), wrapped by SQLAlchemy."""


def _outage() -> sa_exc.OperationalError:
    return sa_exc.OperationalError(
        "SELECT 1", {}, _DriverError("connection failed: server closed the connection")
    )


def _body(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.body if hasattr(response, "body") else response.content))


# -- which errors are an outage ----------------------------------------------------------


def test_connection_errors_are_an_outage() -> None:
    assert unavailable(_outage())
    assert unavailable(sa_exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"))
    assert unavailable(sqlite3.OperationalError("database is locked"))
    invalidated = sa_exc.DBAPIError("SELECT 1", {}, _DriverError("gone"))
    invalidated.connection_invalidated = True
    assert unavailable(invalidated)
    try:
        try:
            raise _outage()
        except sa_exc.OperationalError as exc:
            raise RuntimeError("looking up the key failed") from exc
    except RuntimeError as chained:
        assert unavailable(chained)


def test_other_errors_are_not_an_outage() -> None:
    assert not unavailable(sa_exc.IntegrityError("INSERT", {}, _DriverError("duplicate key")))
    assert not unavailable(sa_exc.ProgrammingError("SELEC", {}, _DriverError("syntax error")))
    assert not unavailable(ValueError("bad value"))
    assert not unavailable(InvalidClientTokenId())


# -- the mapping ---------------------------------------------------------------------------


def test_an_outage_is_answered_503_with_retry_after() -> None:
    response = responses.from_exception(_outage(), "req-1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(DatabaseUnavailable.retry_after)
    assert _body(response) == {
        "RequestId": "req-1",
        "Error": {
            "Type": "Receiver",
            "Code": "ServiceUnavailable",
            "Message": DatabaseUnavailable.default_message,
        },
    }


def test_a_bug_is_still_a_500_without_retry_after() -> None:
    response = responses.from_exception(RuntimeError("bug"), "req-2")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert _body(response)["Error"]["Code"] == "InternalError"


def test_too_many_connections_has_no_retry_after() -> None:
    from openkvs.errors import ServiceUnavailable

    response = responses.from_exception(ServiceUnavailable(), "req-3")
    assert response.status_code == 503
    assert "Retry-After" not in response.headers


def test_outage_watch_warns_once_and_says_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    watch = OutageWatch("test", clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="openkvs.store.outage")
    assert not watch.failed(ValueError("not an outage"))
    assert not watch.down
    for _ in range(5):
        assert watch.failed(_outage())
        now[0] += 4
    assert watch.down and watch.down_for() == 20
    assert watch.pause() == 5.0  # grows with the outage, up to 5 s
    watch.ok()
    watch.ok()
    assert watch.back_within(1) and not watch.back_within(0)
    events = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert events == [("WARNING", "database_unavailable"), ("INFO", "database_reachable")]
    assert not any(r.exc_info for r in caplog.records)
    assert watch.pause() == 0.25  # up again: a new outage starts with short pauses


def test_key_cache_lets_an_outage_through_and_remembers_nothing() -> None:
    calls: list[str] = []
    down = [True]
    alice = User(id=1, name="alice")

    def lookup(key_id: str) -> tuple[str, User] | None:
        calls.append(key_id)
        if down[0]:
            raise _outage()
        return "secret", alice

    cache = KeyCache(lookup, ttl=60)
    with pytest.raises(sa_exc.OperationalError):
        cache.get("AKLT1")
    down[0] = False
    assert cache.get("AKLT1") == ("secret", alice)
    assert cache.get("AKLT1") == ("secret", alice)
    assert calls == ["AKLT1", "AKLT1"]


# -- the app ---------------------------------------------------------------------------------


@pytest.fixture
def app_parts(tmp_path: Path) -> Iterator[tuple[Services, str, str]]:
    services, engine = open_services(Settings(data_dir=tmp_path / "data", key_cache_seconds=0))
    user = services.users.ensure_user("alice")
    access_key, secret = services.users.create_key(user)
    yield services, access_key, secret
    services.counter.close()
    engine.dispose()


def _get_task(app: Starlette, access_key: str, secret: str) -> httpx.Response:
    url = presign_url(
        "GET",
        f"http://testserver/?Action=GetTaskByTaskID&Version=2017-01-01&TaskID={TASK_ID}",
        access_key,
        secret,
        "cn-beijing-6",
        now=datetime.now(UTC),
    )

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(url)

    return asyncio.run(get())


def _failing(*_args: Any, **_kwargs: Any) -> Any:
    raise _outage()


def test_key_lookup_during_an_outage_is_503_not_403(
    app_parts: tuple[Services, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, access_key, secret = app_parts
    monkeypatch.setattr(services.users, "lookup_key", _failing)
    answer = _get_task(create_app(services), access_key, secret)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert _body(answer)["Error"]["Code"] == "ServiceUnavailable"


def test_an_action_during_an_outage_is_503_then_it_works_again(
    app_parts: tuple[Services, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, access_key, secret = app_parts
    app = create_app(services)
    with monkeypatch.context() as patched:
        patched.setattr(services.tasks, "get", _failing)
        answer = _get_task(app, access_key, secret)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    again = _get_task(app, access_key, secret)
    assert again.status_code == 200
    assert _body(again)["ErrNum"] == 1200  # no such task: the database answers again
