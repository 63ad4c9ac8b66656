"""A real ``openkvs serve`` process on a random local port, and the ``openkvs`` CLI.

    access_key, secret_key = create_keys(data_dir)
    assert cli(data_dir, "bucket", "create", "media").returncode == 0
    with ServerProcess(data_dir, {"OPENKVS_WORKERS": "2"}) as server:
        client = make_kvs_client(server.url, access_key, secret_key)

Child environment (``child_env``): ``os.environ`` without proxy variables (the server calls
back to 127.0.0.1), without ``KS_*``/``KSC_CONFIG`` (SDK settings) and without inherited
``OPENKVS_*`` settings except ``OPENKVS_TEST_*`` (so a developer's shell cannot change what a
test runs), plus ``PYTHONUNBUFFERED=1`` and ``OPENKVS_DATA_DIR=<data_dir>``, then the
caller's overrides. Server output goes to ``<data_dir>/server.log`` (appended across
restarts).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = [
    "LOG_NAME",
    "ServerProcess",
    "ServerStartError",
    "child_env",
    "cli",
    "create_keys",
    "free_port",
]

LOG_NAME = "server.log"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 120.0

_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}


class ServerStartError(RuntimeError):
    """The server did not answer HTTP in time or exited; the message ends with its log."""


def child_env(data_dir: Path | str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for an ``openkvs`` child process (see the module docstring)."""
    result: dict[str, str] = {}
    for key, value in os.environ.items():
        if key.lower() in _PROXY_VARS or key.startswith("KS_") or key == "KSC_CONFIG":
            continue
        if key.startswith("OPENKVS_") and not key.startswith("OPENKVS_TEST_"):
            continue
        result[key] = value
    result["PYTHONUNBUFFERED"] = "1"
    result["OPENKVS_DATA_DIR"] = str(data_dir)
    result.update(env or {})
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _answers_http(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """``python -m openkvs serve`` in ``data_dir``; ``env`` overrides settings (see above).

    ``start()`` returns once the server answers HTTP on ``/`` (any status) and raises
    ``ServerStartError`` with the log tail if that takes over 30 s or the process exits.
    ``stop()`` sends SIGTERM and waits (then SIGKILL after 15 s); ``kill9()`` SIGKILLs.
    ``start()`` again after either reuses the port when it is still free.
    """

    def __init__(self, data_dir: Path | str, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.env = dict(env or {})
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    # -- information -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("server not running")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        if self.running:
            raise RuntimeError("server already running")
        self._reap()
        if self.starts and not _port_is_free(self.port):
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"\n--- start #{self.starts + 1} on port {self.port} ---\n".encode())
        self._log.flush()
        self.starts += 1
        command = [
            sys.executable, "-m", "openkvs", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            env=child_env(self.data_dir, self.env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not _answers_http(self.port):
            code = self.process.poll()
            if code is not None:
                self._reap()
                raise ServerStartError(
                    f"openkvs serve exited with {code} before answering on port "
                    f"{self.port}; log {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerStartError(
                    f"openkvs serve did not answer HTTP on port {self.port} within "
                    f"{timeout:g} s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        code = process.returncode
        self._reap()
        return code

    def kill9(self) -> int | None:
        """SIGKILL at once (a crash: no clean-up runs); returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
            process.wait()
        code = process.returncode
        self._reap()
        return code

    def _reap(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            self.process = None
        if self.process is None and self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def cli(
    data_dir: Path | str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m openkvs <args>`` for ``data_dir``; output captured as text.

    Never raises on a non-zero exit: check ``returncode``/``stderr`` yourself.
    """
    return subprocess.run(
        [sys.executable, "-m", "openkvs", *args],
        env=child_env(Path(data_dir).resolve(), env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )


def create_keys(
    data_dir: Path | str, user: str = "default", *, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """``openkvs keys create --user USER --json``: returns (AccessKeyId, SecretAccessKey)."""
    result = cli(data_dir, "keys", "create", "--user", user, "--json", env=env)
    if result.returncode != 0:
        raise RuntimeError(f"openkvs keys create failed ({result.returncode}): {result.stderr}")
    try:
        pair = json.loads(result.stdout)
        return str(pair["AccessKeyId"]), str(pair["SecretAccessKey"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"unexpected output of openkvs keys create: {result.stdout!r}") from exc
