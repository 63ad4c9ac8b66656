"""Opening a data folder: owner-only files, the data key checked, plain secrets sealed."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from openkvs.config import Settings
from openkvs.runtime import open_services
from openkvs.store.database import open_engine
from openkvs.store.schema import access_keys, users
from openkvs.store.secrets import SecretsError, is_sealed, load_key, new_key_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_folder_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    services, engine = open_services(Settings(data_dir=data))
    try:
        services.users.create_key(services.users.ensure_user("alice"))
        db = data / "openkvs.db"
        wal, shm = data / "openkvs.db-wal", data / "openkvs.db-shm"
        assert wal.exists() and shm.exists()  # checked while the engine holds them open
        assert _mode(data) == 0o700
        assert {_mode(p) for p in (db, wal, shm, data / "openkvs.key")} == {0o600}
    finally:
        engine.dispose()


def test_an_existing_open_data_folder_is_kept_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    key_file = data / "openkvs.key"
    key_file.write_text(new_key_text() + "\n")
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        _, engine = open_services(Settings(data_dir=data))
    engine.dispose()
    warned = {r.path for r in caplog.records if r.getMessage() == "insecure_permissions"}  # type: ignore[attr-defined]
    assert warned == {str(data), str(key_file)}
    assert _mode(data) == 0o755 and _mode(key_file) == 0o644
    assert _mode(data / "openkvs.db") == 0o600  # what openkvs creates is still owner-only


def test_a_lost_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services, engine = open_services(Settings(data_dir=data))
    services.users.create_key(services.users.ensure_user("alice"))
    engine.dispose()
    (data / "openkvs.key").rename(tmp_path / "kept.key")
    with pytest.raises(SecretsError, match=r"openkvs\.key does not exist: restore it"):
        open_services(Settings(data_dir=data))
    assert not (data / "openkvs.key").exists()
    # restored, it works again
    (tmp_path / "kept.key").rename(data / "openkvs.key")
    _, engine = open_services(Settings(data_dir=data))
    engine.dispose()


def test_a_wrong_master_key_is_refused_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    right = new_key_text()
    services, engine = open_services(Settings(data_dir=data, master_key=right))
    key_id, secret = services.users.create_key(services.users.ensure_user("alice"))
    engine.dispose()
    assert not (data / "openkvs.key").exists()  # the key came from the variable only
    with pytest.raises(SecretsError, match="OPENKVS_MASTER_KEY does not open the secrets"):
        open_services(Settings(data_dir=data, master_key=new_key_text()))
    with pytest.raises(SecretsError, match="must be 32 bytes"):
        open_services(Settings(data_dir=data, master_key="c2hvcnQ"))
    services, engine = open_services(Settings(data_dir=data, master_key=right))
    found = services.users.lookup_key(key_id)
    engine.dispose()
    assert found is not None and found[0] == secret


def test_plain_secrets_of_an_older_version_are_sealed_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    engine = open_engine(f"sqlite:///{data / 'openkvs.db'}")
    with engine.begin() as conn:
        user = conn.execute(users.insert().values(name="old", created_at=1.0))
        conn.execute(
            access_keys.insert().values(
                access_key_id="AKLEGACY000000000001",
                secret="legacy-plain-secret",
                user_id=user.inserted_primary_key[0],  # type: ignore[index]
                created_at=1.0,
            )
        )
    engine.dispose()
    with caplog.at_level(logging.INFO):
        services, engine = open_services(Settings(data_dir=data))
    try:
        with engine.connect() as conn:
            assert is_sealed(conn.execute(select(access_keys.c.secret)).scalar_one())
        found = services.users.lookup_key("AKLEGACY000000000001")
        assert found is not None and found[0] == "legacy-plain-secret"
    finally:
        engine.dispose()
    assert [r.count for r in caplog.records if r.getMessage() == "secrets_sealed"] == [1]  # type: ignore[attr-defined]


def test_a_new_key_file_is_owner_only_and_bad_ones_are_clear(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "openkvs.key"
    key = load_key("", key_file)
    assert len(key) == 32 and load_key("", key_file) == key
    assert _mode(key_file) == 0o600 and _mode(key_file.parent) == 0o700
    assert list(key_file.parent.iterdir()) == [key_file]  # no temporary file left behind
    key_file.write_bytes(b"\xff\xfe not a key")
    with pytest.raises(SecretsError, match="not URL-safe base64"):
        load_key("", key_file)
    with pytest.raises(SecretsError, match="does not exist"):
        load_key("", tmp_path / "missing.key", create=False)
