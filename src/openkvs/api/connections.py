"""Bounding what idle and surplus connections cost: a header-read timeout and a cap.

uvicorn has neither. Its keep-alive timeout only runs while a connection is idle between
requests and stops at the first byte received, so a client that sends one byte of a request
line, or a header every few seconds, holds its connection (and a file descriptor) for ever.
Its ``limit_concurrency`` is no connection cap either: it answers a plain-text 503 to a
request whose headers are complete while open connections *or* running requests exceed the
limit, but it never refuses or closes the surplus connections themselves.

:class:`ConnectionGuard` is mixed into uvicorn's HTTP protocol classes (h11 and httptools
alike; :func:`guarded_protocol`):

* **Header timeout**: a connection must deliver a request's complete headers within
  ``header_timeout`` seconds of being opened, and again after each response when it is
  kept alive; otherwise it is closed without an answer. The time a request takes to be
  handled or to send its body is not limited by this.
* **Connection cap**: a connection accepted while ``max_connections`` are already open
  (idle keep-alive ones and ones still sending headers count too) has every request on it
  answered by ``busy_app`` (a 503 ``ServiceUnavailable`` in the gateway's error format,
  closing the connection), instead of the API.

Both use only what the two protocol classes share: ``connection_made``,
``on_response_complete``, ``connection_lost``, and the attributes ``loop``, ``transport``,
``connections``, ``app`` and ``cycle`` (the current request, replaced when a new request's
headers are complete).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp


class ConnectionGuard(asyncio.Protocol):
    """Header-read timeout and connection cap for a uvicorn HTTP protocol (see module)."""

    #: Seconds a connection has to complete a request's headers.
    header_timeout: float = 10.0
    #: Open connections beyond which new ones are answered by :attr:`busy_app`.
    max_connections: int | None = None
    busy_app: ASGIApp | None = None

    # Set by uvicorn's protocol classes.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    connections: set[Any]
    app: ASGIApp
    cycle: Any

    _header_timer: asyncio.TimerHandle | None = None
    _waiting_since: float = 0.0
    _waiting_cycle: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if (
            self.max_connections is not None
            and self.busy_app is not None
            and len(self.connections) > self.max_connections
        ):
            self.app = self.busy_app
        self._wait_for_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._wait_for_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _wait_for_headers(self) -> None:
        """From now on the connection owes a new request's headers. One timer per
        connection: a pending one re-arms itself when it fires early."""
        self._waiting_since = self.loop.time()
        self._waiting_cycle = self.cycle
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._check_headers)

    def _check_headers(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not self._waiting_cycle or (cycle is not None and not cycle.response_complete):
            return  # a request's headers arrived; its response re-arms the timer
        left = self._waiting_since + self.header_timeout - self.loop.time()
        if left > 0:
            self._header_timer = self.loop.call_later(left, self._check_headers)
            return
        self.transport.close()


def http_protocol(name: str = "auto") -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol class called ``name`` (``h11``, ``httptools``, or
    ``auto``: httptools when it is installed, as uvicorn chooses)."""
    if name == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:
            name = "h11"
        else:  # pragma: no cover - depends on what is installed
            name = "httptools"
    if name == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    if name == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    raise ValueError(f"unknown HTTP protocol {name!r}")


def guarded_protocol(
    base: type[asyncio.Protocol],
    *,
    header_timeout: float,
    max_connections: int | None,
    busy_app: ASGIApp | None,
) -> type[asyncio.Protocol]:
    """``base`` with :class:`ConnectionGuard` mixed in and these limits."""
    return type(
        f"Guarded{base.__name__}",
        (ConnectionGuard, base),
        {
            "header_timeout": header_timeout,
            "max_connections": max_connections,
            # staticmethod: a plain function stored on a class would become a method.
            "busy_app": None if busy_app is None else staticmethod(busy_app),
        },
    )
