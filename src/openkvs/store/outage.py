"""Telling a database outage from other database errors, and living through one.

A PostgreSQL server that restarts, fails over or cannot be reached makes every statement
fail for a while with a connection error (SQLAlchemy ``OperationalError``, or a
``TimeoutError`` when no pooled connection frees up in time). Such a failure is nobody's
mistake and ends by itself: the API answers it with 503 ``ServiceUnavailable`` and a
``Retry-After`` header (``api/responses.py``), the workers and the notifier wait and try again
(``worker/retry.py``, ``notify/notifier.py``). Every other exception keeps its meaning.

:class:`OutageWatch` keeps the log readable through an outage: one ``database_unavailable``
warning when a component first fails to reach the database (no traceback), one
``database_reachable`` line when it succeeds again, however many calls failed in between.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or the exception it was raised from) means that the database cannot
    be used right now: the connection failed, broke, timed out, or the pool had none free.
    SQLite's "database is locked" (after its busy timeout) counts too."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 4:
        if isinstance(
            current,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.TimeoutError
            | sqlite3.OperationalError,
        ):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__
        seen += 1
    return False


def short(exc: BaseException) -> str:
    """A one-line description of ``exc`` for a log field (the driver's first line)."""
    original = getattr(exc, "orig", None) or exc
    first = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first}"[:200]


class OutageWatch:
    """One component's view of the database: up, or down since when.

    ``failed(exc)`` returns whether ``exc`` is an outage (see :func:`unavailable`); the first
    such failure logs ``database_unavailable`` (``component``, ``error``) as a warning. Once
    ``ok()`` is called again, ``database_reachable`` (``component``, ``down_seconds``) is
    logged. Thread-safe; cheap when nothing changes.
    """

    def __init__(self, component: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.component = component
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._back_at: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def down_for(self) -> float:
        """Seconds since the outage began (0 when the database is up)."""
        since = self._down_since
        return 0.0 if since is None else max(0.0, self._clock() - since)

    def back_within(self, seconds: float) -> bool:
        """Whether the database came back less than ``seconds`` ago (after an outage)."""
        back = self._back_at
        return back is not None and self._clock() - back < seconds

    def failed(self, exc: BaseException) -> bool:
        if not unavailable(exc):
            return False
        with self._lock:
            if self._down_since is not None:
                return True
            self._down_since = self._clock()
        log.warning(
            "database_unavailable", extra={"component": self.component, "error": short(exc)}
        )
        return True

    def ok(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
            if since is None:
                return
            self._back_at = self._clock()
        log.info(
            "database_reachable",
            extra={"component": self.component, "down_seconds": round(self._back_at - since, 1)},
        )

    def pause(self, *, first: float = 0.25, most: float = 5.0) -> float:
        """How long to wait before trying again: growing with the outage, from ``first``
        to ``most`` seconds (so a short blip costs little and a long outage few calls)."""
        return min(most, max(first, self.down_for() / 4))
