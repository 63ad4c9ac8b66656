"""moto's S3 server on a random local port, for tests of the S3 storage.

    def test_x(moto_s3: MotoS3) -> None:
        storage = S3Storage(moto_s3.config(bucket_prefix="t1-"))
        env = moto_s3.env(bucket_prefix="t1-")          # OPENKVS_* settings of a server
        moto_s3.client().list_buckets()                  # boto3, to look behind openkvs

One ``python -m moto.server`` process serves the whole test session (it takes seconds to
start); tests keep apart by giving each its own bucket prefix (:func:`unique_prefix`). The
process is tied to the test process (``setpriv --pdeathsig``, when available) and stopped at
exit. moto accepts any credentials and does not check signatures: access refusals are tested
through the error translation (``storage.s3.translate``) instead.
"""

from __future__ import annotations

import atexit
import http.client
import itertools
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.server import free_port

from openkvs.storage.s3 import S3Config

__all__ = ["MotoS3", "moto_s3", "unique_prefix"]

ACCESS_KEY = "testing-key-id"
SECRET_KEY = "testing-secret"
REGION = "us-east-1"
START_TIMEOUT = 60.0

_counter = itertools.count(1)


def unique_prefix() -> str:
    """A bucket prefix no other test of this session uses (``t<n><random>-``)."""
    return f"t{next(_counter)}{uuid.uuid4().hex[:6]}-"


class MotoS3:
    """A running moto server: its URL and what a client needs to use it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoS3:
        guard = shutil.which("setpriv")
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        if guard:
            command = [guard, "--pdeathsig", "KILL", "--", *command]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto's S3 server did not start on port {self.port}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def config(self, *, endpoint_url: str = "", **overrides: Any) -> S3Config:
        """An :class:`S3Config` for this server (path-style, its credentials)."""
        values: dict[str, Any] = {
            "endpoint_url": endpoint_url or self.url,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "addressing_style": "path",
            "timeout": 10.0,
            **overrides,
        }
        return S3Config(**values)

    def env(self, *, bucket_prefix: str, endpoint_url: str = "") -> dict[str, str]:
        """The ``OPENKVS_*`` settings of an openkvs process that uses this server."""
        return {
            "OPENKVS_STORAGE": "s3",
            "OPENKVS_S3_ENDPOINT_URL": endpoint_url or self.url,
            "OPENKVS_S3_REGION": REGION,
            "OPENKVS_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "OPENKVS_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "OPENKVS_S3_ADDRESSING_STYLE": "path",
            "OPENKVS_S3_BUCKET_PREFIX": bucket_prefix,
        }

    def client(self) -> Any:
        """A boto3 client of this server, to check what openkvs stored."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )


_shared: MotoS3 | None = None


def _shared_server() -> MotoS3:
    """The session's server, started on first use and stopped when the process exits."""
    global _shared
    if _shared is None or _shared.process is None or _shared.process.poll() is not None:
        _shared = MotoS3().start()
        atexit.register(_shared.stop)
    return _shared


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server, shared by the session (import this fixture into a test module)."""
    yield _shared_server()
