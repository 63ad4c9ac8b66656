"""A real ``openkvs serve`` on a random port, its keys, a bucket, and the official SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.server import ServerProcess, cli, create_keys

from openkvs.api.sigv4 import presign_url

#: Fast retries and leases so that failure paths finish in seconds.
FAST_ENV = {
    "OPENKVS_CALLBACK_BACKOFF": "0.2,0.2,0.2",
    "OPENKVS_LEASE_SECONDS": "3",
    "OPENKVS_POLL_SECONDS": "0.2",
    "OPENKVS_WORKERS": "2",
    # Test receivers listen on loopback, which callbacks may not reach by default.
    "OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8,::1/128",
}
BUCKET = "media"


@dataclass
class Deployment:
    server: ServerProcess
    data_dir: Path
    access_key: str
    secret_key: str
    client: Any

    def presigned(self, method: str, query: str, body: bytes = b"") -> str:
        """``/?<query>`` of this server as a URL signed in query form (SigV4, now)."""
        return presign_url(
            method,
            f"{self.server.url}/?{query}",
            self.access_key,
            self.secret_key,
            "cn-beijing-6",
            now=datetime.now(UTC),
            body=body,
        )

    def upload(self, path: Path, key: str) -> str:
        """Upload a local file with ``openkvs cp``; returns its ``/bucket/key`` path."""
        result = cli(self.data_dir, "cp", str(path), f"/{BUCKET}/{key}")
        assert result.returncode == 0, result.stderr
        return f"/{BUCKET}/{key}"

    def download(self, key: str, dest: Path) -> Path:
        result = cli(self.data_dir, "cp", f"/{BUCKET}/{key}", str(dest))
        assert result.returncode == 0, result.stderr
        return dest

    def create_wave(self, src: str, key: str, *, points: int = 10, **extra: Any) -> str:
        """A CreateWaveTask of ``src`` into ``media/key``; returns the TaskID."""
        reply = self.client.create_wave_task(
            Preset="wave",
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey=key,
            points=points,
            **extra,
        )
        assert reply["ErrNum"] == 0, reply
        return str(reply["TaskID"])

    def wait_task(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll GetTaskByTaskID until the task is finished; returns its TaskInfo."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
            if info["TaskStatus"] in ("succ", "fail") or time.monotonic() > deadline:
                return dict(info)
            time.sleep(0.05)


def deploy(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """Start a server in ``data_dir`` with a user, a key and the bucket ``media``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = create_keys(data_dir)
    assert cli(data_dir, "bucket", "create", BUCKET).returncode == 0
    with ServerProcess(data_dir, {**FAST_ENV, **(env or {})}) as server:
        client = make_kvs_client(server.url, access_key, secret_key)
        try:
            yield Deployment(server, data_dir, access_key, secret_key, client)
        finally:
            close_kvs_client(client)


@pytest.fixture(scope="session")
def kvs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One server shared by the tests that do not stop it."""
    yield from deploy(tmp_path_factory.mktemp("kvs"))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")
