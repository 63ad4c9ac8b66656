"""Delivering the outbox: at least once, with back-off, every attempt recorded.

Attempts run concurrently in one asyncio loop on the notifier's thread. Each attempt has a
total deadline (``timeout``: connect, send and answer together, however slowly a receiver
drips its bytes) and counts against two bounds: ``per_host`` attempts in flight to one
destination host, ``in_flight`` in all. A callback whose host already has its share stays
due in the outbox while callbacks to other hosts go ahead, so a slow receiver delays only
its own callbacks. Whatever goes wrong in an attempt (a refused or unusable URL, a network
error, the deadline, a missing signing secret) is a failed attempt of that callback alone.

A database outage (``store/outage.py``) is not a failed attempt: the notifier logs one
``database_unavailable`` warning and keeps looking every ``poll_seconds``; an attempt that
cannot look up its signing secret waits for the database before it sends, and an attempt
whose outcome cannot be recorded keeps it and records it once the database is back (so a
delivered callback is not sent again). Callbacks queued meanwhile go out when it is back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from openkvs import metrics
from openkvs.model import Callback, DeliveryState
from openkvs.notify.policy import host_key
from openkvs.notify.retry import RetryPolicy
from openkvs.notify.sender import CallbackSender, SendResult
from openkvs.notify.signing import message_id, signed_headers
from openkvs.store.outage import OutageWatch, unavailable
from openkvs.store.outbox import Attempt, OutboxStore

log = logging.getLogger(__name__)

#: ``openkvs_callback_deliveries_total{outcome}`` of each attempt's recorded state.
_OUTCOMES = {
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.FAILED: "gave_up",
    DeliveryState.PENDING: "retry",
}

#: ``secrets(user_id)``: the user's ``whsec_...`` signing secret.
Secrets = Callable[[int], str]
#: A callback's secret as its attempt gets it: looked up, failed to, or not yet (None).
_Secret = str | Exception | None


class Notifier:
    """Takes due callbacks from the outbox, signs them and POSTs them concurrently.

    ``wake()`` makes it look at once (a task just finished); otherwise it looks again when
    an attempt ends or the earliest pending callback is due, at most every ``poll_seconds``
    (other processes may add callbacks too). A callback is leased while it is attempted;
    a notifier that dies mid-attempt leaves it to be taken again when the lease ends.
    """

    def __init__(
        self,
        outbox: OutboxStore,
        sender: CallbackSender,
        retry: RetryPolicy,
        *,
        timeout: float,
        secrets: Secrets,
        per_host: int = 4,
        in_flight: int = 32,
        poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._sender = sender
        self._retry = retry
        self._timeout = timeout
        self._secrets = secrets
        self._per_host = per_host
        self._in_flight = in_flight
        # An attempt ends within its deadline; the margin covers recording it.
        self._lease = timeout + 30.0
        self._poll = poll_seconds
        self._clock = clock
        self._running: dict[int, asyncio.Task[None]] = {}
        self._hosts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runner: asyncio.Runner | None = None  # for deliver_due()
        self._grace = 5.0
        self._db = OutageWatch("notifier")

    # ---------------------------------------------------------------------- control

    def wake(self) -> None:
        """Look for due callbacks now (thread-safe)."""
        loop, kick = self._loop, self._kick
        if loop is not None and kick is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(kick.set)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0, *, grace: float = 5.0) -> None:
        """Stop taking callbacks, give the attempts in flight ``grace`` seconds to end, cancel
        the rest (unrecorded: they are attempted again when their lease ends) and close the
        sender."""
        self._grace = grace
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._runner is not None:
            self._runner.run(self._sender.aclose())
            self._runner.close()
            self._runner = None

    def deliver_due(self) -> int:
        """One pass, for tests and tools: take the due callbacks there is room for, attempt
        them concurrently and wait for them all; returns how many were attempted. Not to be
        mixed with ``start()``."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self._one_pass())

    # ---------------------------------------------------------------------- the loop

    def _run(self) -> None:
        with asyncio.Runner() as runner:
            runner.run(self._serve())

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        # Store calls and name look-ups run in threads: enough for every attempt in flight.
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(
                max_workers=self._in_flight + 4, thread_name_prefix="notifier-io"
            )
        )
        self._kick = asyncio.Event()
        self._loop = loop

    async def _one_pass(self) -> int:
        self._attach()
        started, _due = await self._fill()
        if self._running:
            await asyncio.wait(list(self._running.values()))
        return started

    async def _serve(self) -> None:
        self._attach()
        assert self._kick is not None
        while not self._stop.is_set():
            due: float | None = None
            try:
                _started, due = await self._fill()
            except Exception as exc:
                if not self._db.failed(exc):  # an outage: warned once, looked at every poll
                    log.exception("notifier_error")
            now = self._clock()
            # Due now but not taken: their hosts are busy; an ending attempt kicks us.
            wait = self._poll if due is None or due <= now else min(self._poll, due - now)
            try:
                async with asyncio.timeout(wait):
                    await self._kick.wait()
            except TimeoutError:
                pass
            self._kick.clear()
        await self._end_attempts(self._grace)
        await self._sender.aclose()

    async def _end_attempts(self, grace: float) -> None:
        running = list(self._running.values())
        if not running:
            return
        _done, pending = await asyncio.wait(running, timeout=max(grace, 0.0))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _fill(self) -> tuple[int, float | None]:
        """Take as many due callbacks as the bounds leave room for and start them; returns
        how many, and when the earliest pending callback is due (looked up in the same
        store thread, before the attempts start, so that it does not share the interpreter
        with them)."""
        free = self._in_flight - len(self._running)
        if free <= 0:
            return 0, await asyncio.to_thread(self._outbox.next_due_at)
        busy = Counter(self._hosts)  # a copy: admit() runs in a store thread

        def admit(url: str) -> bool:
            key = host_key(url)
            if busy[key] >= self._per_host:
                return False
            busy[key] += 1
            return True

        due, next_due = await asyncio.to_thread(self._take_due, free, admit)
        for callback, secret in due:
            if callback.id not in self._running:
                self._start(callback, secret)
        return len(due), next_due

    def _take_due(
        self, limit: int, admit: Callable[[str], bool]
    ) -> tuple[list[tuple[Callback, _Secret]], float | None]:
        """The due callbacks, each with its user's signing secret (or the error looking it
        up raised, which fails that attempt alone), and when the earliest pending one is
        due, in one hand-over to a store thread: a callback is on its way as soon as the
        outbox gives it (a task just finished)."""
        due = self._outbox.take_due(self._clock(), self._lease, limit, admit)
        self._db.ok()  # logs once that the database is back after an outage
        found: dict[int | None, _Secret] = {}
        for callback in due:
            if callback.user_id not in found:
                found[callback.user_id] = self._secret(callback.user_id)
        taken = [(callback, found[callback.user_id]) for callback in due]
        try:
            next_due = self._outbox.next_due_at()
        except Exception as exc:  # the callbacks taken still go; the loop polls instead
            if not self._db.failed(exc):
                log.exception("notifier_error")
            next_due = None
        return taken, next_due

    def _secret(self, user_id: int | None) -> _Secret:
        if user_id is None:
            return None
        try:
            return self._secrets(user_id)
        except Exception as exc:  # isolation: the attempts of this user's callbacks fail
            return exc

    def _start(self, callback: Callback, secret: _Secret = None) -> None:
        key = host_key(callback.url)
        self._hosts[key] += 1
        task = asyncio.create_task(self._attempt(callback, secret), name=f"callback-{callback.id}")
        self._running[callback.id] = task

        def finished(_task: asyncio.Task[None]) -> None:
            self._running.pop(callback.id, None)
            self._hosts[key] -= 1
            if self._hosts[key] <= 0:
                del self._hosts[key]
            if self._kick is not None:
                self._kick.set()

        task.add_done_callback(finished)

    # ---------------------------------------------------------------------- one attempt

    async def _send(self, callback: Callback, secret: _Secret) -> SendResult:
        if callback.user_id is None:
            return SendResult(None, "the callback's task is gone: no user to sign for")
        if isinstance(secret, Exception):
            raise secret
        if secret is None:
            secret = await asyncio.to_thread(self._secrets, callback.user_id)
        body = callback.body.encode("utf-8")
        headers = signed_headers(
            secret, message_id(callback.task_id, callback.id), int(self._clock()), body
        )
        return await self._sender.send(callback.url, body, headers)

    async def _secret_after_outage(self, callback: Callback, secret: _Secret) -> _Secret:
        """``secret``, or when looking it up failed for want of the database, the secret
        looked up again once the database is back: an outage spends no attempt."""
        while isinstance(secret, Exception) and unavailable(secret):
            self._db.failed(secret)
            await asyncio.sleep(self._db.pause())
            try:
                secret = await asyncio.to_thread(self._secrets, callback.user_id or 0)
            except Exception as exc:
                secret = exc
        return secret

    async def _record(
        self,
        callback: Callback,
        attempt: Attempt,
        *,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> DeliveryState | None:
        """Record the attempt, waiting out a database outage (the callback stays leased by
        this notifier meanwhile); None when recording failed otherwise (the lease then runs
        out and the callback is attempted again)."""
        while True:
            try:
                state = await asyncio.to_thread(
                    self._outbox.record_attempt,
                    callback,
                    attempt,
                    delivered=delivered,
                    next_attempt_at=next_attempt_at,
                )
            except Exception as exc:
                if self._db.failed(exc):
                    await asyncio.sleep(self._db.pause())
                    continue
                log.exception("notifier_error", extra={"task_id": callback.task_id})
                return None
            self._db.ok()
            return state

    async def _attempt(self, callback: Callback, secret: _Secret = None) -> None:
        secret = await self._secret_after_outage(callback, secret)
        number = callback.attempts + 1
        started = self._clock()
        clock = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._send(callback, secret)
        except TimeoutError:
            result = SendResult(None, f"no complete answer within {self._timeout:g} s")
        except Exception as exc:  # isolation: one callback's failure is its own
            result = SendResult(None, f"{type(exc).__name__}: {exc}"[:300])
        attempt = Attempt(
            number,
            started,
            int((time.monotonic() - clock) * 1000),
            result.http_status,
            result.error,
        )
        delay = None if result.delivered or result.final else self._retry.next_delay(number)
        state = await self._record(
            callback,
            attempt,
            delivered=result.delivered,
            next_attempt_at=None if delay is None else self._clock() + delay,
        )
        if state is None:  # not recorded: the lease runs out and it is attempted again
            return
        fields = {
            "task_id": callback.task_id,
            "user_id": callback.user_id,
            "attempt": number,
            "http_status": result.http_status,
            "error": result.error,
        }
        metrics.callback_attempt("completion", _OUTCOMES[state])
        if state is DeliveryState.DELIVERED:
            log.info("callback_delivered", extra=fields)
        elif state is DeliveryState.FAILED:
            log.error("callback_failed", extra={**fields, "errnum": 2034})
        else:
            log.warning("callback_retry", extra={**fields, "delay": delay})
