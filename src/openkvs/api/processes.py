"""Several API processes on one port (``OPENKVS_API_PROCESSES``).

One Python process answers requests on one core at most (the interpreter lock), so
``serve`` can fork more API processes that accept connections on the same listening socket
(the kernel hands each new connection to one of them). The order in ``serve``:

1. bind the port, open and migrate the database, build the stores — no thread runs yet;
2. fork ``count - 1`` API processes; each drops the database connections it inherited and
   opens its own, then serves the shared socket until SIGTERM/SIGINT;
3. the first process starts the worker pool and the callback notifier (they run once, in
   it) and serves the socket too.

A task queued through another API process, or a running task cancelled through one, is told
to the first process through a pipe (:class:`WakePipe`), so its workers start or stop it at
once rather than at their next poll. Everything else the processes share lives in the
database: ClientTokens, task states, call counters (each process writes its counts every
second). Limits kept in memory apply per process: ``OPENKVS_MAX_CONNECTIONS``, the
FetchMetaInfo probe limits and the access-key cache. An API process that dies is not
replaced; the others go on serving, and ``serve`` stops them all when it stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from openkvs.runtime import Runtime
from openkvs.service.context import Services

log = logging.getLogger(__name__)

STOP_SECONDS = 15.0  # how long a stopping API process may take before it is killed
_PR_SET_PDEATHSIG = 1  # prctl(2)


class WakePipe:
    """API processes → the first process: "a task was queued", "stop this running task".

    Messages are single short lines (atomic pipe writes). A sender never blocks: when the
    pipe is full the message is dropped, and the workers find the task at their next poll
    (a cancellation at the next lease renewal) as they would without the pipe."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def queued(self) -> None:
        self._send(b"q\n")

    def cancelled(self, task_id: str) -> None:
        self._send(b"c" + task_id.encode("ascii", "replace")[:64] + b"\n")

    def _send(self, message: bytes) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._write, message)

    def close_reader(self) -> None:
        """In an API process: only the first process reads."""
        os.close(self._read)

    def listen(self, on_queued: Callable[[], None], on_cancelled: Callable[[str], None]) -> None:
        """In the first process: a thread that passes the messages on."""

        def loop() -> None:
            pending = b""
            while True:
                try:
                    chunk = os.read(self._read, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line == b"q":
                        on_queued()
                    elif line.startswith(b"c"):
                        on_cancelled(line[1:].decode("ascii", "replace"))

        threading.Thread(target=loop, name="api-wake-pipe", daemon=True).start()


@dataclass
class ApiProcesses:
    """The forked API processes of one ``serve``."""

    pids: list[int]

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM each (they finish the requests in flight), then SIGKILL after
        ``timeout`` seconds; reaps them all."""
        for pid in self.pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for pid in self.pids:
            while True:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    if os.waitstatus_to_exitcode(status) != 0:
                        log.warning("api_process_failed", extra={"pid": pid})
                    break
                if time.monotonic() > deadline:
                    _signal(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.05)
        self.pids = []


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def fork_api_processes(
    count: int, runtime: Runtime, serve: Callable[[Services], None]
) -> ApiProcesses:
    """Fork ``count`` API processes that each run ``serve(services)`` (which returns once
    the process was asked to stop). Call before any thread of ``runtime`` starts; the
    calling process then keeps the workers, and hears of tasks queued elsewhere."""
    pipe = WakePipe()
    services = replace(runtime.services, task_queued=pipe.queued, task_cancelled=pipe.cancelled)
    pids = []
    parent = os.getpid()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child (covered by integration tests)
            _run_child(parent, pipe, runtime, services, serve)
        pids.append(pid)
        log.info("api_process_started", extra={"pid": pid})
    pipe.listen(runtime.services.task_queued, runtime.services.task_cancelled)
    return ApiProcesses(pids)


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child
    """SIGTERM this process when ``serve`` dies, even by SIGKILL (Linux)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before the signal was armed
        raise SystemExit("serve is gone")


def _run_child(
    parent: int,
    pipe: WakePipe,
    runtime: Runtime,
    services: Services,
    serve: Callable[[Services], None],
) -> None:  # pragma: no cover - runs in the child
    code = 1
    try:
        _die_with_parent(parent)
        pipe.close_reader()
        # The parent's pooled connections are the parent's: open new ones here.
        runtime.engine.dispose(close=False)
        serve(services)
        code = 0
    except BaseException:
        log.exception("api_process_crashed")
    finally:
        try:
            services.counter.close()
            runtime.engine.dispose()
        finally:
            logging.shutdown()
            os._exit(code)
