"""Waking idle workers across machines: PostgreSQL ``LISTEN``/``NOTIFY``.

Every transaction that queues a task, puts one back, or lets a pipeline start tasks again
sends ``NOTIFY openkvs_tasks`` (``store/queue.py`` ``announce``); PostgreSQL delivers it to
every listening session when the transaction commits. Each process that runs workers keeps
one :class:`TaskWakeups`: a thread on a connection of its own (outside the engine's pool)
that listens and calls ``wake`` (the pool's ``wake``: one idle worker claims at once)
for each notification, instead of the workers finding the task at their next poll.

When the connection breaks (a database restart, a network cut) the thread logs it, waits
and connects again, with the delay doubling from :data:`RETRY_FIRST` to
:data:`RETRY_LAST`; after each (re)connection it calls ``wake`` once, since a task queued
while nobody listened announced itself to no one. Polling (``OPENKVS_POLL_SECONDS``) goes
on meanwhile: a lost notification delays a task, it never loses one.

On SQLite there is nothing to listen to: :meth:`TaskWakeups.start` does nothing (processes
sharing a SQLite database find new tasks by polling; those of ``serve`` are told through
its own pipes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import URL, make_url

from openkvs.store.queue import CHANNEL

log = logging.getLogger(__name__)

#: Seconds before the first reconnection attempt; doubled after each failure up to the last.
RETRY_FIRST = 0.5
RETRY_LAST = 10.0
#: How often the listening thread looks at its stop flag while no notification comes.
TICK = 0.5
#: Seconds to wait for the database when connecting.
CONNECT_TIMEOUT = 5
#: libpq parameters of the listening connection (a value in the URL's query wins): it only
#: reads, so TCP keep-alives are what notice a silent peer (a cut network) within about
#: 20 s, and make the thread connect again instead of waiting on a dead socket for ever.
CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


class TaskWakeups:
    """Calls ``wake`` when another process announces a task (PostgreSQL only)."""

    def __init__(self, url: str | URL, wake: Callable[[], None]) -> None:
        self._url = make_url(url)
        self._wake = wake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # set while listening (tests wait for it)

    @property
    def enabled(self) -> bool:
        return self._url.get_backend_name() == "postgresql"

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="task-wakeups", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TICK * 4 + CONNECT_TIMEOUT)
            self._thread = None

    def _conninfo(self) -> str:
        # psycopg takes the URL without SQLAlchemy's "+driver".
        return self._url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _run(self) -> None:
        delay = RETRY_FIRST
        while not self._stop.is_set():
            try:
                self._listen()
                delay = RETRY_FIRST
            except Exception as exc:
                self.connected.clear()
                log.warning("wakeups_lost", extra={"error": str(exc), "retry_in": delay})
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_LAST)

    def _listen(self) -> None:
        import psycopg

        args = {k: v for k, v in CONNECT_ARGS.items() if k not in self._url.query}
        conninfo = psycopg.conninfo.make_conninfo(self._conninfo(), **args)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            log.info("wakeups_listening", extra={"channel": CHANNEL})
            self._wake()  # tasks queued while nobody listened
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=TICK):
                    self._wake()
        self.connected.clear()
