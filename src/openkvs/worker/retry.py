"""A worker's writes that must not be lost, tried again through a database outage.

The end of a task (its status and its callback, one transaction) is written once the media
work is done. If the database is unreachable then, the result is kept in memory and the
write is tried again, after pauses that grow with the outage (``OutageWatch.pause``), until
it is written, or the store answers that this worker no longer holds the task (another
worker took it back after the lease ran out: nothing is written, so the task never ends
twice). Only a pool that stops while the database is still away gives up, after its grace
time: the task then stays held until its lease runs out and is run again elsewhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from openkvs.store.outage import OutageWatch

log = logging.getLogger(__name__)

T = TypeVar("T")


class GaveUp(Exception):
    """The pool stopped and its grace time ran out while the database was still away."""


def until_written(
    write: Callable[[], T],
    *,
    watch: OutageWatch,
    stop: threading.Event,
    grace: float,
    task_id: str,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, int]:
    """``write()``'s value, and how many of its tries failed for want of the database.

    A failure that is not an outage (``store/outage.py``) is raised at once. The first
    outage failure logs ``task_write_waiting`` (``task_id``, ``write``) as a warning; a
    write that needed retries logs ``task_write_done`` when it went through. Raises
    :class:`GaveUp` once ``stop`` has been set for ``grace`` seconds."""
    failures = 0
    stopping_since: float | None = None
    while True:
        try:
            value = write()
        except Exception as exc:
            if not watch.failed(exc):
                raise
            failures += 1
            if failures == 1:
                log.warning("task_write_waiting", extra={"task_id": task_id, "write": what})
            if stop.is_set():
                stopping_since = stopping_since or clock()
                if clock() - stopping_since >= grace:
                    raise GaveUp(f"{what} of {task_id}: the database is still unreachable") from exc
            pause = watch.pause()
            if stop.is_set():
                sleep(pause)
            else:
                stop.wait(pause)  # a stop ends the pause: the grace time starts then
            continue
        watch.ok()
        if failures:
            log.info(
                "task_write_done", extra={"task_id": task_id, "write": what, "retries": failures}
            )
        return value, failures
