"""A pool's row in the worker registry (``store/workers.py``), kept by the pool itself.

The pool writes the row when it starts (:meth:`Membership.join`), then its lease keeper
calls :meth:`Membership.beat` at every turn (at most once a second): the row is renewed
every ``heartbeat_seconds``, and at once when the running tasks change or the pool starts
draining, so ``openkvs workers`` shows them within a second. A clean stop deletes the row
(:meth:`Membership.leave`). A failed write is logged and tried again at the next turn: the
registry only shows, so an unreachable database costs nothing but a stale row. Failures
that ``quiet`` says are a database outage are not logged here: the pool's outage watch
(``store/outage.py``) reports the outage once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import replace

from openkvs.store.workers import PRUNE_AFTER, WorkerRecord, WorkerRegistry, WorkerState

log = logging.getLogger(__name__)

#: How often a live pool deletes the rows of workers lost for a day (besides at start).
PRUNE_EVERY = 3600.0


class Membership:
    def __init__(
        self,
        registry: WorkerRegistry,
        worker: WorkerRecord,
        heartbeat_seconds: float,
        *,
        quiet: Callable[[BaseException], bool] = lambda _exc: False,
    ) -> None:
        self._registry = registry
        self._quiet = quiet
        self._worker = worker
        self._every = heartbeat_seconds
        self._lock = threading.Lock()  # beat() runs in the lease keeper, join/leave in another
        self._sent: tuple[WorkerState, frozenset[str]] | None = None
        self._next = 0.0  # time.time() of the next heartbeat due without a change
        self._next_prune = 0.0

    @property
    def worker_id(self) -> str:
        return self._worker.id

    def join(self, now: float) -> None:
        """Register (and delete the rows of workers lost for a day)."""
        with self._lock:
            self._prune(now)
            worker = replace(self._worker, started_at=now, heartbeat_at=now)
            self._worker = worker
            self._registry.register(worker)
            self._sent = (worker.state, frozenset(worker.running))
            self._next = now + self._every
        log.info(
            "worker_registered",
            extra={
                "worker_id": worker.id,
                "pipelines": ",".join(worker.pipelines) or "*",
                "concurrency": worker.concurrency,
            },
        )

    def beat(self, now: float, running: Collection[str], *, draining: bool) -> None:
        """Renew the row when due, or when ``running`` or the state changed."""
        state = WorkerState.DRAINING if draining else WorkerState.ALIVE
        current = (state, frozenset(running))
        with self._lock:
            if current == self._sent and now < self._next:
                return
            try:
                if not self._registry.heartbeat(self._worker.id, now, sorted(running), state):
                    # The row is gone (pruned after an outage, deleted by hand): write it anew.
                    self._registry.register(
                        replace(
                            self._worker,
                            state=state,
                            running=tuple(sorted(running)),
                            heartbeat_at=now,
                        )
                    )
                    log.warning("worker_registered_again", extra={"worker_id": self._worker.id})
                self._sent, self._next = current, now + self._every
                if now >= self._next_prune:
                    self._prune(now)
            except Exception as exc:
                if not self._quiet(exc):
                    log.exception("worker_heartbeat_failed", extra={"worker_id": self._worker.id})

    def leave(self) -> None:
        """Delete the row (a clean stop)."""
        with self._lock:
            try:
                self._registry.unregister(self._worker.id)
            except Exception as exc:
                if not self._quiet(exc):
                    log.exception("worker_unregister_failed", extra={"worker_id": self._worker.id})
                return
        log.info("worker_unregistered", extra={"worker_id": self._worker.id})

    def _prune(self, now: float) -> None:
        self._next_prune = now + PRUNE_EVERY
        pruned = self._registry.prune(now, PRUNE_AFTER)
        if pruned:
            log.info("workers_pruned", extra={"count": pruned})
