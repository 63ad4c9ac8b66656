"""``openkvs`` processes of a fleet: an API-only ``serve --no-workers`` and ``openkvs worker``s.

    with ApiProcess(data_dir, env) as api, WorkerProcess(data_dir, env, "--concurrency", "1") as w:
        client = make_kvs_client(api.url, access_key, secret_key)
        row = w.row()                   # its registry row, as `workers --json` shows it
        w.terminate(); w.wait()         # SIGTERM: it drains, unregisters and exits

The environment is ``server.child_env`` (no inherited ``OPENKVS_*``, ``OPENKVS_DATA_DIR``
set). Each process logs into ``<data_dir>/<name>.log``. ``start()`` of an API returns once
it answers HTTP; of a worker, once its row is in the registry (read directly: polling
``openkvs workers`` would start a Python process per look).
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.support.server import child_env, cli, free_port

from openkvs import config
from openkvs.store.database import open_engine
from openkvs.store.workers import WorkerRegistry, lost_after

__all__ = ["ApiProcess", "WorkerProcess", "registry_rows", "workers_json"]

START_TIMEOUT = 30.0


def workers_json(data_dir: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """``openkvs workers --json`` with ``env``."""
    run = cli(data_dir, "workers", "--json", env=env)
    assert run.returncode == 0, run.stderr
    return list(json.loads(run.stdout))


def registry_rows(data_dir: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """What ``openkvs workers --json`` would print with ``env``, read in this process."""
    settings = config.load(child_env(Path(data_dir).resolve(), env))
    engine = open_engine(settings.sqlalchemy_url)
    try:
        now = time.time()
        found = WorkerRegistry(engine).list_workers(
            now, lost_after(settings.heartbeat_seconds, settings.lease_seconds)
        )
    finally:
        engine.dispose()
    return [worker.as_json(now) for worker in found]


class _Child:
    name = "openkvs"

    def __init__(self, data_dir: Path, env: Mapping[str, str], *args: str) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.env = dict(env)
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def _command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> _Child:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "openkvs", *self._command()],
            env=child_env(self.data_dir, self.env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            code = self.process.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError(f"{self._command()} did not start ({code}):\n{self.log()}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        raise NotImplementedError

    def terminate(self) -> None:
        """SIGTERM (returns at once; see ``wait``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self._close()
        return code

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.terminate()
        try:
            return self.wait()
        except subprocess.TimeoutExpired:
            return self.kill9()

    def kill9(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait()
        self._close()
        return code

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
        self._close()


class ApiProcess(_Child):
    """``openkvs serve --no-workers`` on a free local port."""

    name = "api"

    def __init__(self, data_dir: Path, env: Mapping[str, str], *args: str) -> None:
        super().__init__(data_dir, env, *args)
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return ["serve", "--no-workers", "--host", "127.0.0.1", "--port", str(self.port)]

    def _ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


class WorkerProcess(_Child):
    """``openkvs worker ARGS``; ``name`` names its log file."""

    def __init__(self, data_dir: Path, env: Mapping[str, str], *args: str, name: str) -> None:
        super().__init__(data_dir, env, *args)
        self.name = name

    def _command(self) -> list[str]:
        return ["worker", *self.args]

    def _ready(self) -> bool:
        return self.row() is not None

    def row(self) -> dict[str, Any] | None:
        """This process's registry row (as ``openkvs workers --json`` shows it), or None."""
        pid = self.pid
        found = [w for w in registry_rows(self.data_dir, self.env) if w["pid"] == pid]
        return found[0] if found else None
