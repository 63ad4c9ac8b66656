"""A callback receiver that never answers: it reads each request and then hangs, or drips
an answer that never ends.

    with StallingReceiver(host="127.0.0.11", drip=0.5) as slow:
        ... CbUrl=slow.url ...
        slow.wait_for(1)            # the request arrived
        assert slow.open == 1       # and its connection is still held open

``drip=None``: accept, read the request, send nothing. ``drip=s``: send a status line and
then one more header byte every ``s`` seconds, never ending the headers. A connection
counts as open until the sender hangs up (detected by a read of EOF or a failed write).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

__all__ = ["StallingReceiver"]


class StallingReceiver:
    def __init__(self, host: str = "127.0.0.1", *, drip: float | None = None) -> None:
        self._host = host
        self._drip = drip
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self.requests: list[bytes] = []  # each request as read: head and body
        self.open = 0  # connections accepted and not yet closed by the sender
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/callback"

    def start(self) -> StallingReceiver:
        listener = socket.create_server((self._host, 0))
        listener.settimeout(0.05)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._spawn(self._accept_loop)
        return self

    def close(self) -> None:
        self._stopping.set()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(10)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> StallingReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` requests were read."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.url}: expected {count} request(s), got {len(self.requests)}"
                    )
                self._cond.wait(remaining)

    def wait_closed(self, timeout: float = 30.0) -> None:
        """Block until every connection was closed by the sender."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.open > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.url}: {self.open} connection(s) still open")
                self._cond.wait(remaining)

    # ---------------------------------------------------------------------------------------

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self._conns.append(conn)
                self.open += 1
                self._cond.notify_all()
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        try:
            self._read_request(conn)
            if self._drip is None:
                self._hold(conn)
            else:
                self._drip_forever(conn)
        finally:
            conn.close()
            with self._cond:
                self.open -= 1
                self._cond.notify_all()

    def _read_request(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._recv(conn)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = self._recv(conn)
            if not chunk:
                return
            body += chunk
        with self._cond:
            self.requests.append(head + b"\r\n\r\n" + body)
            self._cond.notify_all()

    def _recv(self, conn: socket.socket) -> bytes:
        """The next bytes, or b"" when the sender hung up or we are stopping."""
        while not self._stopping.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return b""
        return b""

    def _hold(self, conn: socket.socket) -> None:
        while self._recv(conn):
            pass  # whatever else arrives is ignored; b"" means the sender hung up

    def _drip_forever(self, conn: socket.socket) -> None:
        assert self._drip is not None
        pending = b"HTTP/1.1 200 OK\r\nX-Drip: "
        while not self._stopping.is_set():
            try:
                conn.sendall(pending[:1] if pending else b"z")
                pending = pending[1:]
                # A read of EOF tells that the sender hung up (a write may still succeed).
                conn.settimeout(self._drip)
                if conn.recv(1) == b"":
                    return
            except TimeoutError:
                continue
            except OSError:
                return
