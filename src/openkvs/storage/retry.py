"""Trying a storage call again when the store is unavailable: a policy object, testable on
its own.

Only :class:`~openkvs.storage.base.Unavailable` is retried (the store could not be reached,
timed out or answered 5xx); "not found" and "access denied" will not change by waiting.
botocore already retries each S3 request a few times within a second or two; this policy
covers a longer outage (a store restarting) at the points where a task would otherwise
fail: locating its sources and writing its outputs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from openkvs.storage.base import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class StorageRetry:
    """``delays[i]`` seconds pass between attempt ``i + 1`` and attempt ``i + 2``; after
    ``len(delays) + 1`` attempts the last :class:`Unavailable` is raised."""

    delays: tuple[float, ...] = (1.0, 3.0, 9.0)

    def call(
        self,
        operation: Callable[[], T],
        *,
        what: str = "",
        cancel: threading.Event | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> T:
        """``operation()``, tried again after each delay while it raises :class:`Unavailable`.
        A set ``cancel`` event ends the waiting: the last error is raised at once."""
        for attempt, delay in enumerate((*self.delays, None), start=1):
            try:
                return operation()
            except Unavailable as exc:
                if delay is None or (cancel is not None and cancel.is_set()):
                    raise
                log.warning(
                    "storage_unavailable",
                    extra={"what": what, "attempt": attempt, "retry_in": delay, "error": str(exc)},
                )
                if cancel is not None:
                    if cancel.wait(delay):
                        raise
                else:
                    sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


#: What tasks use at run time (about 13 s of waiting in all).
RUNTIME_RETRY = StorageRetry()
