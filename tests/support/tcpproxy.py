"""A TCP proxy on a random local port that a test can cut and restore (a network outage).

    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/db"
        ...
        proxy.cut()      # every connection closed; new ones held without an answer
        proxy.restore()  # new connections reach the target again

``cut()`` closes every forwarded connection (both sides, so each peer sees its connection
end) and from then on treats new connections as a dead network would: with
``blackhole=True`` (the default) they are accepted but get no byte back (the client waits for
its connect timeout); with ``blackhole=False`` they are reset at once (as a refused
connection). ``restore()`` resets the held connections and forwards new ones again.
One thread accepts; each forwarded connection has two pumping threads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

__all__ = ["TcpProxy"]

_BUFFER = 64 * 1024


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (no lingering FIN handshake)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.target = target
        self._listener = socket.create_server((host, 0))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._held: list[socket.socket] = []
        self._cut = False
        self._blackhole = True
        self._closed = False
        self._thread: threading.Thread | None = None
        #: Connections forwarded, and connections refused or held while cut, so far.
        self.forwarded = 0
        self.turned_away = 0

    # -- control -----------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread = threading.Thread(target=self._accept, name="tcpproxy", daemon=True)
        self._thread.start()
        return self

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self, *, blackhole: bool = True) -> None:
        """Close every forwarded connection; turn new ones away until :meth:`restore`."""
        with self._lock:
            self._cut, self._blackhole = True, blackhole
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)

    def restore(self) -> None:
        """Forward new connections again (the held ones are reset: their clients retry)."""
        with self._lock:
            self._cut = False
            held, self._held = self._held, []
        for sock in held:
            _reset(sock)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.cut()
        self.restore()
        with contextlib.suppress(OSError):
            self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- forwarding ----------------------------------------------------------------------
    def _accept(self) -> None:
        self._listener.settimeout(0.2)  # so that close() is noticed
        while True:
            with self._lock:
                if self._closed:
                    return
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                cut, blackhole = self._cut, self._blackhole
                if cut:
                    self.turned_away += 1
                    if blackhole:
                        self._held.append(client)
            if cut:
                if not blackhole:
                    _reset(client)
                continue
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        pair = (client, upstream)
        with self._lock:
            if self._cut:  # cut while connecting
                self.turned_away += 1
                _reset(client)
                _reset(upstream)
                return
            self._pairs.append(pair)
            self.forwarded += 1
        ended = threading.Barrier(2, action=lambda: self._end(pair))
        for source, sink in (pair, pair[::-1]):
            threading.Thread(
                target=self._pump, args=(source, sink, ended), name="tcpproxy-pump", daemon=True
            ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, ended: threading.Barrier) -> None:
        try:
            while True:
                data = source.recv(_BUFFER)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the end on; the other direction may go on
        with contextlib.suppress(threading.BrokenBarrierError):
            ended.wait()

    def _end(self, pair: tuple[socket.socket, socket.socket]) -> None:
        """Both directions of ``pair`` have ended: close it."""
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.close()
