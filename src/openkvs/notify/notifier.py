"""Delivering the outbox: at least once, with back-off, every attempt recorded."""

from __future__ import annotations

import logging
import threading
import time

from openkvs.model import Callback, DeliveryState
from openkvs.notify.retry import RetryPolicy
from openkvs.notify.sender import CallbackSender
from openkvs.store.outbox import Attempt, OutboxStore

log = logging.getLogger(__name__)


class Notifier:
    """Takes due callbacks from the outbox and POSTs them, in one background thread.

    ``wake()`` makes it look at once (a task just finished); otherwise it sleeps until the
    earliest pending callback is due, at most ``poll_seconds`` (other processes may add
    callbacks too).
    """

    def __init__(
        self,
        outbox: OutboxStore,
        sender: CallbackSender,
        policy: RetryPolicy,
        *,
        timeout: float,
        poll_seconds: float = 1.0,
    ) -> None:
        self._outbox = outbox
        self._sender = sender
        self._policy = policy
        self._lease = timeout + 30.0
        self._poll = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def deliver_due(self) -> int:
        """One pass over the due callbacks; returns how many were attempted."""
        due = self._outbox.take_due(time.time(), self._lease)
        for callback in due:
            if self._stop.is_set():
                break
            self._attempt(callback)
        return len(due)

    def _attempt(self, callback: Callback) -> None:
        number = callback.attempts + 1
        started = time.time()
        result = self._sender.send(callback.url, callback.body.encode("utf-8"))
        attempt = Attempt(
            number, started, int((time.time() - started) * 1000), result.http_status, result.error
        )
        delay = None if result.delivered else self._policy.next_delay(number)
        state = self._outbox.record_attempt(
            callback,
            attempt,
            delivered=result.delivered,
            next_attempt_at=None if delay is None else time.time() + delay,
        )
        fields = {
            "task_id": callback.task_id,
            "attempt": number,
            "http_status": result.http_status,
            "error": result.error,
        }
        if state is DeliveryState.DELIVERED:
            log.info("callback_delivered", extra=fields)
        elif state is DeliveryState.FAILED:
            log.error("callback_failed", extra={**fields, "errnum": 2034})
        else:
            log.warning("callback_retry", extra={**fields, "delay": delay})

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.deliver_due():
                    continue
                due = self._outbox.next_due_at()
            except Exception:
                log.exception("notifier_error")
                due = None
            wait = self._poll if due is None else min(self._poll, max(0.0, due - time.time()))
            self._wake.wait(wait)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._sender.close()
