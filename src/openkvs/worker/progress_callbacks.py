"""Progress callbacks (spec §3.8, §5.4 a): Status-2 POSTs while a task runs.

A task asks for them with ExtParam ``Callback.progress_cburl`` (``progress_interval``:
seconds between two callbacks, default 10, at least 1). The pool gets one sink per such task
from :meth:`ProgressCallbacks.sink` and feeds it every progress increase; the sink sends the
latest value:

* at most once per interval (the first one at once), one POST in flight per task, so the
  receiver gets them in order;
* never a lower ``progress`` than one already sent within the same ``status``; a phase that
  ended between two sends still gets its last value sent before the next phase's;
* when the task ends (:meth:`close`), what was not sent yet goes at once, so ``transcoding``
  100 (and ``uploading`` 100 when reached) arrive before the completion callback, which the
  pool queues after ``close`` returns. ``close`` waits at most ``timeout`` seconds: a dead
  receiver cannot hold a worker.

Progress callbacks are best-effort: they go to the same addresses as completion callbacks
(the same :class:`AddressPolicy` and :class:`HttpSender`), signed the same way, with a
deadline per POST; a failed one is logged (``progress_callback_failed``) and never tried
again. Completion callbacks, in the outbox, are the ones retried.

All sinks of a process share one thread running an asyncio loop (and the sender's
connections); it starts with the first sink.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.model import TaskRecord
from openkvs.notify.bodies import progress_body
from openkvs.notify.policy import AddressPolicy, CallbackRefused, parse_callback_url
from openkvs.notify.sender import CallbackSender, SendResult
from openkvs.notify.signing import signed_headers
from openkvs.worker.job import Phase, ProgressSink

log = logging.getLogger(__name__)

#: Seconds between two progress callbacks when the task does not say.
DEFAULT_INTERVAL = 10.0
#: The shortest interval honoured (a smaller one is raised to it).
MIN_INTERVAL = 1.0

#: ``secrets(user_id)``: the user's ``whsec_...`` signing secret.
Secrets = Callable[[int], str]


@dataclass(frozen=True)
class ProgressTarget:
    """Where a task's progress callbacks go and how often."""

    url: str
    interval: float


def _interval(value: Any) -> float:
    """``progress_interval`` in seconds: a number or a numeric string; anything else (or
    nothing) is the default, less than the minimum is the minimum."""
    if isinstance(value, bool) or value is None or value == "":
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL
    if not math.isfinite(seconds):
        return DEFAULT_INTERVAL
    return max(MIN_INTERVAL, seconds)


def progress_target(task: TaskRecord) -> ProgressTarget | None:
    """The progress callbacks ``task`` asked for, or None.

    Read from the task's parsed options (``request["options"]``: ``progress_url``,
    ``progress_interval``, as avtrans stores them) or else from its raw ExtParam
    (``Callback.progress_cburl``, ``Callback.progress_interval``). Never raises.
    """
    request = task.request
    options = request.get("options")
    if isinstance(options, Mapping):
        url = options.get("progress_url")
        if isinstance(url, str) and url:
            return ProgressTarget(url, _interval(options.get("progress_interval")))
    raw = request.get("ExtParam")
    ext: Any = raw
    if isinstance(raw, str):
        try:
            ext = json.loads(raw) if raw.strip() else None
        except ValueError:
            return None
    callback = ext.get("Callback") if isinstance(ext, Mapping) else None
    if not isinstance(callback, Mapping):
        return None
    url = callback.get("progress_cburl")
    if not isinstance(url, str) or not url:
        return None
    return ProgressTarget(url, _interval(callback.get("progress_interval")))


class ProgressCallbacks:
    """Makes the progress sinks of a process (:meth:`sink`, the pool's ``sinks=``) and runs
    their deliveries in one thread.

    ``timeout`` bounds each POST and each sink's :meth:`~_TaskSink.close`; ``policy`` is the
    sender's: a URL it refuses outright (its form, a refused literal address or name) gets
    no sink at all, names are checked again by the sender at every connection.
    """

    def __init__(
        self,
        sender: CallbackSender,
        *,
        policy: AddressPolicy,
        timeout: float,
        secrets: Secrets,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sender = sender
        self._policy = policy
        self._timeout = timeout
        self._secrets = secrets
        self._clock = clock
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def sink(self, task: TaskRecord) -> ProgressSink | None:
        """The sink of ``task``, or None when it asked for no progress callbacks (or they
        cannot be sent: a refused URL, no signing secret; logged). Never raises."""
        try:
            target = progress_target(task)
            if target is None:
                return None
            try:
                self._policy.check_target(parse_callback_url(target.url))
            except CallbackRefused as exc:
                _failed(task.task_id, f"refused: {exc}")
                return None
            secret = self._secrets(task.user_id)
            sink = _TaskSink(self, task, target, secret)
            sink.start(self._running_loop())
            return sink
        except Exception:
            log.exception("progress_callback_failed", extra={"task_id": task.task_id})
            return None

    def close(self, timeout: float = 15.0) -> None:
        """Stop the thread (sinks still open are cancelled) and close the connections."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # already stopped
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    # -- the delivery thread -----------------------------------------------------------
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("progress callbacks are closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._serve, args=(loop,), name="progress-callbacks", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._sender.aclose())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """One POST within the deadline; never raises."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._sender.send(url, body, headers)
        except TimeoutError:
            return SendResult(None, f"no complete answer within {self._timeout:g} s")
        except Exception as exc:
            return SendResult(None, f"{type(exc).__name__}: {exc}"[:300])

    @property
    def timeout(self) -> float:
        return self._timeout

    def now(self) -> float:
        return self._clock()


def _failed(task_id: str, error: str, **fields: Any) -> None:
    log.warning("progress_callback_failed", extra={"task_id": task_id, "error": error, **fields})


class _TaskSink:
    """The progress callbacks of one run of one task (see the module docstring).

    ``update`` and ``close`` are called from the worker thread; everything else runs on the
    delivery loop. ``_pending`` holds what is still to send, in order: the latest value of
    each phase entered since the last send.
    """

    def __init__(
        self, owner: ProgressCallbacks, task: TaskRecord, target: ProgressTarget, secret: str
    ) -> None:
        self._owner = owner
        self._task_id = task.task_id
        self._task_type = task.task_type
        self._run = max(1, task.attempts)
        self._target = target
        self._secret = secret
        self._lock = threading.Lock()
        self._pending: list[tuple[Phase, int]] = []
        self._highest: dict[Phase, int] = {}  # the highest value queued per phase
        self._closing = False
        self._sent = 0
        self._wakeup = asyncio.Event()  # something was queued, or closing
        self._ending = asyncio.Event()  # closing: stop waiting out the interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._future: concurrent.futures.Future[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future = asyncio.run_coroutine_threadsafe(self._deliver(), loop)

    # -- the worker's side -------------------------------------------------------------
    def update(self, phase: Phase, percent: int) -> None:
        with self._lock:
            if self._closing:
                return
            if phase in self._highest and percent <= self._highest[phase]:
                return  # never lower (nor the same) within a status
            self._highest[phase] = percent
            if self._pending and self._pending[-1][0] == phase:
                self._pending[-1] = (phase, percent)
            else:
                self._pending.append((phase, percent))
        self._kick(self._wakeup)

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self._kick(self._wakeup, self._ending)
        future = self._future
        if future is None:
            return
        try:
            future.result(timeout=self._owner.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            with self._lock:
                left = len(self._pending)
            _failed(
                self._task_id,
                f"gave up on the last progress callbacks after {self._owner.timeout:g} s",
                unsent=left + 1,
            )
        except concurrent.futures.CancelledError:
            pass

    def _kick(self, *events: asyncio.Event) -> None:
        loop = self._loop
        if loop is None:
            return
        for event in events:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                loop.call_soon_threadsafe(event.set)

    # -- the loop's side ---------------------------------------------------------------
    async def _deliver(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = 0.0  # loop.time() before which nothing more is sent (unless closing)
        while True:
            self._wakeup.clear()
            with self._lock:
                queued, closing = bool(self._pending), self._closing
            if not queued:
                if closing:
                    return
                await self._wakeup.wait()
                continue
            wait = next_at - loop.time()
            if wait > 0 and not closing:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._ending.wait()
                continue  # send the latest value, which may have changed meanwhile
            with self._lock:
                phase, percent = self._pending.pop(0)
            next_at = loop.time() + self._target.interval
            await self._send(phase, percent)

    async def _send(self, phase: Phase, percent: int) -> None:
        self._sent += 1
        msg_id = f"msg_{self._task_id}_p{self._run}_{self._sent}"
        body = json.dumps(
            progress_body(
                task_id=self._task_id,
                task_type=self._task_type,
                phase=phase.value,
                percent=percent,
            ),
            separators=(",", ":"),
        ).encode("utf-8")
        headers = signed_headers(self._secret, msg_id, int(self._owner.now()), body)
        result = await self._owner.post(self._target.url, body, headers)
        fields = {"phase": phase.value, "progress": percent, "http_status": result.http_status}
        if result.delivered:
            log.info("progress_callback_sent", extra={"task_id": self._task_id, **fields})
        else:
            _failed(self._task_id, result.error, **fields)
