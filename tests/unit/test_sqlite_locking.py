"""SQLite transactions: reads never take the write lock, writes and the claim always do."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from openkvs.model import NewTask
from openkvs.service.ids import new_task_id
from openkvs.store.database import open_engine
from openkvs.store.schema import tasks, users
from openkvs.store.tasks import TaskStore

T0 = 1_700_000_000.0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "openkvs.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    eng = open_engine(f"sqlite:///{db_path}")
    yield eng
    eng.dispose()


def _write_lock_is_free(db_path: Path) -> bool:
    """Whether another connection could take the write lock right now (no waiting)."""
    probe = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    else:
        probe.execute("ROLLBACK")
        return True
    finally:
        probe.close()


def test_a_read_transaction_leaves_the_write_lock_free(engine: Engine, db_path: Path) -> None:
    with engine.connect() as conn:
        conn.execute(select(users.c.id)).all()
        assert conn.in_transaction()
        assert _write_lock_is_free(db_path)


def test_a_write_transaction_holds_the_write_lock_from_its_start(
    engine: Engine, db_path: Path
) -> None:
    with engine.begin() as conn:
        assert not _write_lock_is_free(db_path)  # before any statement
        conn.execute(select(users.c.id)).all()
        assert not _write_lock_is_free(db_path)
    assert _write_lock_is_free(db_path)


def test_a_connection_that_starts_with_a_write_takes_the_lock(
    engine: Engine, db_path: Path
) -> None:
    with engine.connect() as conn:
        conn.execute(users.insert().values(name="bob", created_at=T0))
        assert not _write_lock_is_free(db_path)
        conn.execute(text("SELECT 1"))
        conn.commit()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # not a SELECT construct: treated as a write
        assert not _write_lock_is_free(db_path)


def test_a_write_after_a_read_on_the_same_pooled_connection_still_locks(
    engine: Engine, db_path: Path
) -> None:
    for _ in range(3):  # the pool hands the same DBAPI connection back each time
        with engine.connect() as conn:
            conn.execute(select(users.c.id)).all()
            assert _write_lock_is_free(db_path)
        with engine.begin() as conn:
            assert not _write_lock_is_free(db_path)


def test_a_long_read_does_not_block_a_claim(engine: Engine) -> None:
    store = TaskStore(engine)
    with engine.begin() as conn:
        user_id = conn.execute(users.insert().values(name="alice", created_at=T0)).lastrowid
    task_id = new_task_id(T0)
    new = NewTask(
        task_id=task_id,
        user_id=user_id,
        action="CreateTask",
        task_type="avinfo",
        preset="p",
        pipeline="usual",
        is_top=False,
    )
    store.create(new, T0)
    with engine.connect() as reader:
        seen = reader.execute(select(tasks.c.status).where(tasks.c.task_id == task_id)).scalar()
        # The read transaction stays open while the claim runs: under BEGIN IMMEDIATE for
        # every transaction this claim would wait for the busy timeout and then fail.
        claimed = store.claim("w", T0 + 1, 60)
        assert claimed is not None and claimed.task_id == task_id
        again = reader.execute(select(tasks.c.status).where(tasks.c.task_id == task_id)).scalar()
        assert seen == again == "init"  # the reader keeps its snapshot
    after = store.get(task_id)
    assert after is not None and after.status.value == "exec"


def test_writers_of_one_process_take_turns_and_failures_release_the_turn(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        conn.execute(users.insert().values(name="taken", created_at=T0))
    for _ in range(3):  # a failed write transaction gives its turn back
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(users.insert().values(name="taken", created_at=T0))
    with engine.connect() as conn:  # so does one rolled back without an error
        conn.execute(users.insert().values(name="rolled back", created_at=T0))
        conn.rollback()
        conn.execute(users.insert().values(name="kept", created_at=T0))
        conn.commit()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                with engine.begin() as conn:
                    conn.execute(users.insert().values(name=f"u{n}-{i}", created_at=T0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with engine.connect() as conn:
        names = set(conn.execute(select(users.c.name)).scalars())
    assert "rolled back" not in names and "kept" in names and len(names) == 2 + 8 * 20
