"""The TCP proxy test helper cuts and restores connections as the outage tests rely on.

(It opens local sockets: it is a test of a test tool, kept next to the other unit tests.)
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from tests.support.tcpproxy import TcpProxy


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A local server that sends back what it receives."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    def answer(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(4096):
                    conn.sendall(data)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[:2]
    server.close()


def _roundtrip(port: int, payload: bytes = b"ping", timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(4096)


def _ended(sock: socket.socket) -> bool:
    """Whether the peer closed or reset ``sock`` (rather than answering)."""
    try:
        sock.sendall(b"x")
        return sock.recv(16) == b""
    except OSError:
        return True


def _refused(port: int) -> bool:
    """Whether a new connection is reset at once (possibly before ``connect`` returns)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            return _ended(sock)
    except (ConnectionError, BrokenPipeError):
        return True


def test_forwards_cuts_and_restores(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy:
        assert _roundtrip(proxy.port) == b"ping"
        open_conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        open_conn.sendall(b"a")
        assert open_conn.recv(16) == b"a"

        proxy.cut()
        assert _ended(open_conn)  # the open connection ends
        open_conn.close()
        with pytest.raises(TimeoutError):  # blackholed: accepted, never answered
            _roundtrip(proxy.port, timeout=0.3)
        proxy.cut(blackhole=False)
        assert _refused(proxy.port)  # refused: reset at once

        proxy.restore()
        assert _roundtrip(proxy.port, b"again") == b"again"
        assert proxy.forwarded == 3 and proxy.turned_away == 2
