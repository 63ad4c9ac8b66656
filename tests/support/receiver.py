"""A real local HTTP endpoint that records the callbacks the service sends.

    with CallbackReceiver(statuses=[500, 500, 200]) as rx:
        client.create_wave_task(..., CbUrl=rx.url)
        first, second, third = rx.wait_for(3, timeout=10)
        assert third.json["Status"] == 3

Every request, whatever its method or path, is recorded in arrival order and answered
with the next scripted status (the last one repeats; default 200) and a small JSON body.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["CallbackReceiver", "ReceiverTimeout", "Request"]


@dataclass(frozen=True)
class Request:
    """One request as received."""

    method: str
    path: str  # the raw request-target, query string included
    headers: dict[str, str]  # header names lower-cased; a repeated header keeps its last value
    body: bytes
    json: Any  # the body parsed as JSON, or None when it is not JSON
    time: float  # time.monotonic() when the request was fully read
    status: int  # the status it was answered with
    raw_headers: list[tuple[str, str]] = field(default_factory=list)  # as sent, in order


class ReceiverTimeout(AssertionError):
    """wait_for() ran out of time; the message lists what did arrive."""


class _Server(ThreadingHTTPServer):
    # Handler threads are joined by server_close(); close() first shuts down the sockets of
    # kept-alive connections so that join cannot hang on a client that never hangs up.
    daemon_threads = False
    block_on_close = True
    receiver: CallbackReceiver

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.closing = False

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def hang_up_all(self) -> None:
        self.closing = True
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.closing:  # errors from connections we cut ourselves are expected
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle kept-alive connection is dropped after this
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        receiver = self.server.receiver
        status, delay = receiver._next_answer()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        receiver._record(
            Request(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                json=parsed,
                time=time.monotonic(),
                status=status,
                raw_headers=list(self.headers.items()),
            )
        )
        if delay > 0:
            time.sleep(delay)
        answer = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return None


class CallbackReceiver:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (random port) run in a background thread.

    ``statuses``: the HTTP status of each successive answer; once used up, the last one
    repeats (``[500, 500, 200]`` fails twice, then succeeds forever). ``delay``: seconds to
    wait before answering (to exercise the sender's timeout); a sequence is consumed like
    ``statuses``. ``path`` is appended to ``url``. ``host``: another loopback address to
    listen on (any of 127.0.0.0/8), so that receivers count as different hosts. After
    ``close()`` the recorded requests, ``port`` and ``url`` stay readable; ``start()`` again
    listens on a new port.
    """

    def __init__(
        self,
        statuses: Iterable[int] = (200,),
        *,
        delay: float | Iterable[float] = 0.0,
        path: str = "/callback",
        host: str = "127.0.0.1",
    ) -> None:
        self._host = host
        self._statuses = list(statuses) or [200]
        self._delays = [float(delay)] if isinstance(delay, int | float) else list(delay) or [0.0]
        self._path = path
        self._requests: list[Request] = []
        self._answered = 0
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # lifecycle -------------------------------------------------------------------------

    def start(self) -> CallbackReceiver:
        if self._server is not None:
            raise RuntimeError("receiver already started")
        server = _Server((self._host, 0))
        server.receiver = self
        self._server = server
        self._port = int(server.server_port)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"callback-receiver-{server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        server.hang_up_all()
        server.server_close()  # joins the handler threads
        self._server = self._thread = None

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # what tests use --------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port; still answers after ``close()`` (for assertions on ``url``)."""
        if self._port is None:
            raise RuntimeError("receiver never started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}{self._path}"

    @property
    def requests(self) -> list[Request]:
        """A snapshot of everything received so far."""
        with self._cond:
            return list(self._requests)

    def set_statuses(self, statuses: Iterable[int]) -> None:
        """Replace the script; the next request gets its first status."""
        with self._cond:
            self._statuses = list(statuses) or [200]
            self._answered = 0

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        """Block until at least ``count`` requests arrived; return all of them (≥ count)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [(r.method, r.path, r.status, r.body[:200]) for r in self._requests]
                    raise ReceiverTimeout(
                        f"expected {count} request(s) within {timeout} s, got {len(got)}: {got}"
                    )
                self._cond.wait(remaining)
            return list(self._requests)

    def assert_quiet(self, seconds: float, *, count: int | None = None) -> None:
        """Assert that no more than ``count`` (default: those so far) arrive within ``seconds``."""
        with self._cond:
            expected = len(self._requests) if count is None else count
        time.sleep(seconds)
        got = self.requests
        if len(got) > expected:
            raise AssertionError(f"expected {expected} request(s), got {len(got)}: {got}")

    # called by the handler threads -----------------------------------------------------

    def _next_answer(self) -> tuple[int, float]:
        with self._cond:
            i = self._answered
            self._answered += 1
            status = self._statuses[min(i, len(self._statuses) - 1)]
            delay = self._delays[min(i, len(self._delays) - 1)]
            return status, delay

    def _record(self, request: Request) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
