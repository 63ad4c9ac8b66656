"""Bounding synchronous work that clients wait for: at most N at once, and M per user.

FetchMetaInfo runs ffprobe while its caller waits, on one of the API's worker threads. Left
unbounded, a burst of calls (or one user's) could take every thread and stall every other
request. :class:`ConcurrencyLimit` never queues: a call over a limit is refused at once with
429 ``Throttling``, the gateway's error for "too much at once, retry later", which the SDKs
retry by themselves with back-off (a business ``ErrNum`` would not be retried, and the
specification has none for "busy").
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from openkvs.errors import Throttling


class ConcurrencyLimit:
    """At most ``total`` holders at once, and at most ``per_user`` for one user."""

    def __init__(self, total: int, per_user: int, what: str = "calls") -> None:
        if total < 1 or per_user < 1:
            raise ValueError("limits must be at least 1")
        self.total = total
        self.per_user = per_user
        self.what = what
        self._lock = threading.Lock()
        self._running = 0
        self._by_user: dict[int, int] = {}

    @contextlib.contextmanager
    def slot(self, user_id: int) -> Iterator[None]:
        """Hold one place for ``user_id`` during the block; :class:`Throttling` when full."""
        with self._lock:
            mine = self._by_user.get(user_id, 0)
            if mine >= self.per_user:
                raise Throttling(
                    f"Too many {self.what} of this user at once (at most {self.per_user}); "
                    "retry later."
                )
            if self._running >= self.total:
                raise Throttling(
                    f"Too many {self.what} at once (at most {self.total}); retry later."
                )
            self._running += 1
            self._by_user[user_id] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                left = self._by_user[user_id] - 1
                if left:
                    self._by_user[user_id] = left
                else:
                    del self._by_user[user_id]

    @property
    def running(self) -> int:
        return self._running
