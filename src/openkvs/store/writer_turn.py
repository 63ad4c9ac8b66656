"""Taking turns to write to a SQLite database: one writer at a time, without starving.

SQLite lets one writer in at a time. The others poll for its lock, sleeping longer and
longer between tries (1, 2, 5, 10 ... up to 100 ms): under load a waiting writer can lose
the race again and again and wait for seconds while others get in. So openkvs writers
queue before they ask SQLite:

* the threads of one process on a lock (woken the moment it is released);
* the processes of one host (``serve``, its API processes, ``worker``) on an advisory
  file lock (``flock``) on ``<database>-writer`` next to the database, polled every 0.1 to
  2 ms, so that at most one thread per process polls and never for long.

SQLite's own locking still decides who writes: the turn only keeps openkvs's writers from
crowding it. A process that dies loses its file lock with it.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from openkvs.store.permissions import private_file

_FIRST_PAUSE = 0.0001  # seconds between two tries for the file lock, doubling...
_LAST_PAUSE = 0.002  # ... up to this


class WriterTurn:
    """``acquire(timeout)`` before ``BEGIN IMMEDIATE``, ``release()`` after its end."""

    def __init__(self, lock_file: Path | None) -> None:
        self._lock = threading.Lock()
        self._path = lock_file
        if lock_file is not None:
            private_file(lock_file)
        self._fd: int | None = None
        self._pid = 0  # the process self._fd was opened in: a forked child opens its own

    def acquire(self, timeout: float) -> bool:
        """Wait for this thread's turn; False after ``timeout`` seconds without it."""
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            return False
        if self._path is None:
            return True
        try:
            fd = self._file()
            pause = _FIRST_PAUSE
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        self._lock.release()
                        return False
                    time.sleep(pause)
                    pause = min(pause * 2, _LAST_PAUSE)
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        if self._path is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def _file(self) -> int:
        # A lock held through a descriptor inherited across fork() would be shared with
        # the parent: each process opens the file itself.
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
            self._pid = os.getpid()
        return self._fd
