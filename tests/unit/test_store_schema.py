"""Migrating an empty database gives exactly the schema of ``store/schema.py``."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, inspect

from openkvs.store import schema
from openkvs.store.database import open_engine
from openkvs.store.migrations import LATEST, current_version, migrate


def _columns(engine: Engine) -> dict[str, set[str]]:
    insp = inspect(engine)
    return {
        name: {c["name"] for c in insp.get_columns(name)}
        for name in insp.get_table_names()
        if name != "schema_version"
    }


def test_migrated_schema_equals_declared_schema(engine: Engine) -> None:
    expected = {t.name: {c.name for c in t.columns} for t in schema.metadata.sorted_tables}
    assert _columns(engine) == expected
    with engine.connect() as conn:
        assert current_version(conn) == LATEST


def test_migrate_twice_is_a_no_op(engine: Engine) -> None:
    assert migrate(engine) == LATEST
    assert migrate(engine) == LATEST


def test_concurrent_first_start_migrates_once(db_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_engine(db_url).dispose()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    eng = open_engine(db_url, migrate_schema=False)
    with eng.connect() as conn:
        assert current_version(conn) == LATEST
    eng.dispose()


def test_upgrade_from_version_1_keeps_data(db_url: str) -> None:
    from sqlalchemy import select

    from openkvs.store import migrations

    eng = open_engine(db_url, migrate_schema=False)
    with eng.begin() as conn:
        migrations.current_version(conn)
        migrations.STEPS[0][2](conn)
        conn.execute(migrations.schema_version.insert().values(version=1))
        # a user as version 1 stored it (no webhook secret column yet)
        conn.execute(schema.users.insert().values(name="alice", created_at=0.0))
    assert migrate(eng) == LATEST
    expected = {t.name: {c.name for c in t.columns} for t in schema.metadata.sorted_tables}
    assert _columns(eng) == expected
    with eng.connect() as conn:
        assert conn.execute(select(schema.users.c.name)).scalars().all() == ["alice"]
    eng.dispose()
