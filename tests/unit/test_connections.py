"""ConnectionGuard (api/connections.py) on a stand-in protocol with a hand-driven clock.

The stand-in has exactly what the guard relies on in uvicorn's h11 and httptools
protocols: ``connection_made``/``connection_lost``/``on_response_complete``, a ``cycle``
replaced when a request's headers are complete, ``connections``, ``app``, ``loop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from openkvs.api.connections import ConnectionGuard, guarded_protocol, http_protocol


class Clock:
    """``time()`` and ``call_later()`` of an event loop, driven by :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Timer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while due := sorted(
            (t for t in self.timers if t.when <= end and not t.cancelled), key=lambda t: t.when
        ):
            timer = due[0]
            self.timers.remove(timer)
            self.now = timer.when
            timer.callback()
        self.now = end


class Timer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Transport:
    def __init__(self) -> None:
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Cycle:
    response_complete = False


class StandIn(asyncio.Protocol):
    def __init__(self, loop: Clock, connections: set[Any]) -> None:
        self.loop: Any = loop
        self.connections = connections
        self.app: Any = "api"
        self.cycle: Any = None
        self.transport: Any = None
        self.pipelined = False

    def connection_made(self, transport: Any) -> None:
        self.connections.add(self)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)

    def on_response_complete(self) -> None:
        if self.pipelined:  # uvicorn starts a queued request from here
            self.pipelined = False
            self.headers_complete()

    # what the parser does
    def headers_complete(self) -> None:
        self.cycle = Cycle()

    def respond(self) -> None:
        self.cycle.response_complete = True
        self.on_response_complete()


def busy(scope: Any, receive: Any, send: Any) -> None:
    """Stands for the 503 app."""


Guarded: Any = guarded_protocol(StandIn, header_timeout=10, max_connections=2, busy_app=busy)


def _open(clock: Clock, connections: set[Any]) -> Any:
    protocol = Guarded(clock, connections)
    protocol.connection_made(Transport())
    return protocol


def test_headers_must_arrive_within_the_timeout() -> None:
    clock, connections = Clock(), set()
    silent = _open(clock, connections)
    clock.advance(9.9)
    assert not silent.transport.closed
    clock.advance(0.1)
    assert silent.transport.closed


def test_a_request_being_handled_is_not_cut_and_the_next_one_is_timed() -> None:
    clock, connections = Clock(), set()
    conn = _open(clock, connections)
    clock.advance(5)
    conn.headers_complete()
    clock.advance(60)  # a long request: the header timeout does not apply to it
    assert not conn.transport.closed
    conn.respond()  # kept alive: the next request's headers are owed from now
    clock.advance(9.9)
    assert not conn.transport.closed
    clock.advance(0.1)
    assert conn.transport.closed


def test_a_busy_keep_alive_connection_stays_open() -> None:
    clock, connections = Clock(), set()
    conn = _open(clock, connections)
    for _ in range(50):  # requests back to back, two seconds each
        clock.advance(1)
        conn.headers_complete()
        clock.advance(1)
        conn.respond()
    assert not conn.transport.closed
    conn.pipelined = True  # the next request was already read: it starts at once
    conn.headers_complete()
    conn.respond()
    clock.advance(30)
    assert not conn.transport.closed
    conn.respond()
    clock.advance(10)
    assert conn.transport.closed


def test_connections_over_the_cap_are_answered_by_the_busy_app() -> None:
    clock, connections = Clock(), set()
    first, second, third = (_open(clock, connections) for _ in range(3))
    assert (first.app, second.app) == ("api", "api")
    assert third.app is busy
    first.connection_lost(None)  # the refused third one still counts while open
    fourth = _open(clock, connections)
    assert fourth.app is busy
    third.connection_lost(None)
    fourth.connection_lost(None)
    assert _open(clock, connections).app == "api"


def test_closing_cancels_the_timer() -> None:
    clock, connections = Clock(), set()
    conn = _open(clock, connections)
    conn.connection_lost(None)
    assert all(t.cancelled for t in clock.timers)


def test_mixes_into_uvicorns_protocols() -> None:
    base = http_protocol("h11")
    guarded = guarded_protocol(base, header_timeout=1, max_connections=5, busy_app=None)
    assert guarded.__mro__[1:3] == (ConnectionGuard, base)
    pytest.importorskip("httptools")  # pragma: no cover - when httptools is installed
    base = http_protocol("httptools")  # pragma: no cover
    guarded = guarded_protocol(base, header_timeout=1, max_connections=5, busy_app=None)
    assert guarded.__mro__[1:3] == (ConnectionGuard, base)  # pragma: no cover
