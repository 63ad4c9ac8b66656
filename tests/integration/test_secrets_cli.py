"""Secrets at rest through the real CLI and server: revoking keys, webhook secrets, file
modes, and a wrong data key."""

from __future__ import annotations

import base64
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from tests.integration.conftest import Deployment
from tests.support import kvs_client
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.server import ServerProcess, ServerStartError, cli, create_keys

from openkvs.store.schema import access_keys, users
from openkvs.store.secrets import Sealer, new_key_text

TASK_ID = "0" * 40


def _client_error() -> type[Exception]:
    error: type[Exception] = kvs_client._import_kscore().exceptions.ClientError
    return error


def _error_code(call: Any) -> str:
    with pytest.raises(_client_error()) as info:
        call()
    return str(info.value.response["Error"]["Code"])  # type: ignore[attr-defined]


def test_a_revoked_key_is_refused(kvs: Deployment) -> None:
    ak, sk = create_keys(kvs.data_dir, user="revoker")
    client = make_kvs_client(kvs.server.url, ak, sk)
    try:
        client.get_task_by_task_id(TaskID=TASK_ID)  # accepted: no authentication error
        revoked = cli(kvs.data_dir, "keys", "revoke", ak)
        assert revoked.returncode == 0, revoked.stderr
        assert re.fullmatch(rf"{ak}\trevoked \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n", revoked.stdout)
        # A running server may reuse a key it looked up for OPENKVS_KEY_CACHE_SECONDS.
        deadline = time.monotonic() + 30
        while True:
            try:
                client.get_task_by_task_id(TaskID=TASK_ID)
            except _client_error() as exc:
                assert exc.response["Error"]["Code"] == "InvalidClientTokenId"  # type: ignore[attr-defined]
                break
            assert time.monotonic() < deadline, "the revoked key is still accepted"
            time.sleep(0.1)
        assert _error_code(lambda: client.get_task_by_task_id(TaskID=TASK_ID)) == (
            "InvalidClientTokenId"
        )
    finally:
        close_kvs_client(client)
    listed = cli(kvs.data_dir, "keys", "list").stdout.splitlines()
    assert f"revoker\t{ak}\t{revoked.stdout.split(chr(9))[1].strip()}" in listed
    assert f"default\t{kvs.access_key}" in listed  # others untouched
    again = cli(kvs.data_dir, "keys", "revoke", ak)
    assert again.returncode == 0 and again.stdout == revoked.stdout
    unknown = cli(kvs.data_dir, "keys", "revoke", "AKNOSUCHKEY000000000")
    assert unknown.returncode == 1 and "no access key AKNOSUCHKEY000000000" in unknown.stderr


def test_webhook_secret_is_printed_and_stable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "keys", "create", "--user", "hooks").returncode == 0
    first = cli(data, "keys", "webhook-secret", "--user", "hooks")
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=\n", first.stdout)
    assert len(base64.b64decode(first.stdout.strip().removeprefix("whsec_"))) == 32
    assert cli(data, "keys", "webhook-secret", "--user", "hooks").stdout == first.stdout
    assert cli(data, "keys", "create", "--user", "other").returncode == 0
    other = cli(data, "keys", "webhook-secret", "--user", "other").stdout
    assert other.startswith("whsec_") and other != first.stdout
    missing = cli(data, "keys", "webhook-secret", "--user", "nobody")
    assert missing.returncode == 1 and "no user nobody" in missing.stderr


def test_keys_create_on_a_fresh_data_folder_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    assert cli(data, "keys", "create").returncode == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (data, *data.iterdir())}
    assert modes["data"] == 0o700
    assert modes["openkvs.db"] == 0o600 and modes["openkvs.key"] == 0o600
    assert all(mode == 0o600 for name, mode in modes.items() if name.startswith("openkvs.db-"))


def test_a_wrong_data_key_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "keys", "create").returncode == 0
    wrong = {"OPENKVS_MASTER_KEY": new_key_text()}
    listed = cli(data, "keys", "list", env=wrong)
    assert listed.returncode == 1
    assert listed.stderr.startswith("Error: data key: the data key from OPENKVS_MASTER_KEY")
    assert "Traceback" not in listed.stderr
    (data / "openkvs.key").rename(tmp_path / "moved.key")
    lost = cli(data, "keys", "list")
    assert lost.returncode == 1 and "does not exist: restore it" in lost.stderr
    assert not (data / "openkvs.key").exists()
    with pytest.raises(ServerStartError, match="Error: data key: "):
        ServerProcess(data, wrong).start()


def test_a_secret_sealed_with_another_key_fails_on_use_as_internal_error(tmp_path: Path) -> None:
    """Keys of two hosts given different data keys: the server refuses, never accepts."""
    data = tmp_path / "data"
    good_ak, good_sk = create_keys(data, user="good")
    stray_ak, stray_sk = "AKSTRAY0000000000001", "stray-secret"
    engine = create_engine(f"sqlite:///{data / 'openkvs.db'}")
    with engine.begin() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.name == "good")).scalar_one()
        conn.execute(
            access_keys.insert().values(
                access_key_id=stray_ak,
                secret=Sealer(bytes(32)).seal(stray_sk, "access_key"),
                user_id=user_id,
                created_at=2e9,
            )
        )
    engine.dispose()
    with ServerProcess(data) as server:
        good = make_kvs_client(server.url, good_ak, good_sk)
        stray = make_kvs_client(server.url, stray_ak, stray_sk)
        try:
            good.get_task_by_task_id(TaskID=TASK_ID)
            assert _error_code(lambda: stray.get_task_by_task_id(TaskID=TASK_ID)) == (
                "InternalError"
            )
        finally:
            close_kvs_client(good)
            close_kvs_client(stray)
        log = server.log_path.read_text()
    assert "request_failed" in log and "does not open with this data key" in log
