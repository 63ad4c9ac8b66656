"""The worker pool: threads that claim tasks, run them and finish them.

Each worker thread loops: claim the next task (with a lease) → run its executor → finish
it (status, and the callback into the outbox, in one transaction). A maintenance thread
renews the leases of running tasks (and learns of cancellations through the same write),
and takes back tasks whose worker died: requeued while attempts remain, else failed with
2057. On shutdown (SIGTERM), the pool drains: it claims nothing more, running tasks get
``grace`` seconds to finish and are then released to the queue, not failed; the lease
keeper goes on renewing their leases meanwhile.

With a registry, the pool keeps its row in the worker registry (``worker/registry.py``):
written at start, renewed by the lease keeper (with the running TaskIDs, and ``draining``
once it drains), deleted on a clean stop.

A worker's death is noticed in two ways. Anywhere: its lease runs out. On its own machine,
sooner: the lease owner names the process (:mod:`openkvs.worker.owner`), so a pool looks,
when it starts and then every ``sweep_seconds``, for running tasks whose owner is a process
of this machine that has exited, and takes them back at once, the same way (attempt
counted, a pending delete honoured with 2005, too many attempts → 2057). A restarted
``serve`` thus resumes its crashed predecessor's tasks right away; tasks held by other
machines still wait for their leases.

Through a database outage (``store/outage.py``) the pool waits instead of failing: claims
pause and retry, running tasks go on although their leases cannot be renewed, a finished
task's end is kept and written once the database is back (``worker/retry.py``), and for one
lease time after the outage no expired lease is taken back, so that live holders renew
first. One ``database_unavailable`` warning, no traceback.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openkvs import __version__, kinds, logs, metrics
from openkvs.errors import TASK_MESSAGES, TaskError
from openkvs.model import TaskRecord, TaskStatus
from openkvs.notify.bodies import completion_body, completion_body_for
from openkvs.notify.flows import flow_callback
from openkvs.store.outage import OutageWatch
from openkvs.store.runs import RunStore
from openkvs.store.tasks import Blocker, TaskStore
from openkvs.store.workers import WorkerRecord, WorkerRegistry, WorkerState
from openkvs.worker.executor import Executor
from openkvs.worker.job import JobMaker, Phase, ProgressSink
from openkvs.worker.owner import ProcessIdentity, owner_gone
from openkvs.worker.progress_callbacks import progress_target
from openkvs.worker.registry import Membership
from openkvs.worker.retry import GaveUp, until_written

log = logging.getLogger(__name__)

#: Progress is logged when a phase starts and each time it passes a multiple of this.
MILESTONE = 25


def task_user(task: TaskRecord) -> str | int:
    """The name of a task's owner for its log lines (its id for tasks stored before the
    name was kept in the request)."""
    return str(task.request.get("user") or "") or task.user_id


EMPTY_CLAIM_BACKOFF = 10  # an empty claim is followed by 9 times its length without one


#: How long a claim that nothing announced waits, so that it does not share the interpreter
#: and the database's write lock with the work just begun: another worker's look after a
#: task was claimed (the task is starting), a worker's next look after its task ended (the
#: callback is being taken from the outbox). See ``_Wakeup`` and ``WorkerPool._work``.
SPARE_CLAIM_DELAY = 0.005


class _Wakeup:
    """Wake-ups of idle workers: one worker per :meth:`set`, at once or ``after`` seconds.

    Waking every idle worker for one queued task made them all claim at once: one gets the
    task, the others wait for the database's write lock and share the interpreter lock with
    the winner while it starts the task they were woken for. A worker that got a task wakes
    one more (there may be more tasks), :data:`SPARE_CLAIM_DELAY` later, when its task has
    started; a burst thus still reaches every idle worker, one claim after another.
    Wake-ups asked for while no worker is idle are kept (as many as there are workers), as
    a set ``Event`` was.
    """

    def __init__(self, workers: int) -> None:
        self._cond = threading.Condition()
        self._pending = 0
        self._later: float | None = None  # time.monotonic() of a wake-up asked for later
        self._limit = max(1, workers)

    def set(self, *, everyone: bool = False, after: float = 0.0) -> None:
        with self._cond:
            if everyone:
                self._pending = self._limit
                self._cond.notify_all()
                return
            if after > 0:
                at = time.monotonic() + after
                self._later = at if self._later is None else min(self._later, at)
            else:
                self._pending = min(self._pending + 1, self._limit)
            self._cond.notify()

    def wait(self, timeout: float) -> None:
        """Until a wake-up is due (taking it) or ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                if self._pending:
                    self._pending -= 1
                    return
                if self._later is not None and self._later <= now:
                    self._later = None
                    return
                if now >= deadline:
                    return
                self._cond.wait(min(deadline, self._later or deadline) - now)


@dataclass
class _Job:
    task: TaskRecord
    owner: str
    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # why cancel was set: "user", "shutdown" or "lost"
    phase: Phase | None = None
    progress: int = 0  # within ``phase``; written to the task row by each lease renewal
    sink: ProgressSink | None = None


#: Makes the progress sink of a task (its progress callbacks), or None when it has none.
SinkFactory = Callable[[TaskRecord], ProgressSink | None]


@dataclass(frozen=True)
class PoolSettings:
    workers: int
    lease_seconds: float
    max_attempts: int
    poll_seconds: float = 1.0
    grace_seconds: float = 10.0  # how long a stopping pool lets running tasks finish
    sweep_seconds: float = 10.0  # how often to look for tasks of exited local processes
    pipelines: frozenset[str] | None = None  # take tasks of these pipeline names only
    heartbeat_seconds: float = 10.0  # how often the registry row is renewed at least


class WorkerPool:
    def __init__(
        self,
        tasks: TaskStore,
        executors: dict[str, Executor],
        settings: PoolSettings,
        *,
        on_finished: Any = None,
        blocked: Blocker | None = None,
        jobs: JobMaker,
        runs: RunStore | None = None,
        sinks: SinkFactory | None = None,
        registry: WorkerRegistry | None = None,
    ) -> None:
        self._tasks = tasks
        self._jobs_maker = jobs
        self._runs = runs
        self._sinks = sinks
        self._executors = executors
        self._types = frozenset(executors)
        self._settings = settings
        self._on_finished = on_finished or (lambda: None)
        self._blocked = blocked
        self._wake = _Wakeup(settings.workers)
        self._stop = threading.Event()  # set: claim nothing more (draining)
        self._halt = threading.Event()  # set: the lease keeper ends (after the drain)
        self._jobs: dict[str, _Job] = {}
        self._finishing: set[str] = set()  # tasks whose end is being written (worker/retry.py)
        self._db = OutageWatch("workers")  # a database outage: warned once, waited out
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._me = ProcessIdentity.current()
        self._nonce = uuid.uuid4().hex[:6]
        self._keeper: threading.Thread | None = None
        self._membership = (
            None
            if registry is None
            else Membership(
                registry,
                self._registration(),
                settings.heartbeat_seconds,
                quiet=lambda exc: self._db.failed(exc),
            )
        )

    @property
    def worker_id(self) -> str:
        """This pool's id in the worker registry: what its lease owners start with."""
        return self._me.owner(self._nonce, "")[:-1]

    def _registration(self) -> WorkerRecord:
        return WorkerRecord(
            id=self.worker_id,
            host=self._me.host,
            pid=self._me.pid,
            pipelines=tuple(sorted(self._settings.pipelines or ())),
            task_types=tuple(sorted(self._types)),
            concurrency=self._settings.workers,
            version=__version__,
            state=WorkerState.ALIVE,
            running=(),
            started_at=0.0,  # set by Membership.join
            heartbeat_at=0.0,
        )

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Register, take back the tasks of this machine's exited processes (a crashed
        predecessor), then start the workers and the lease keeper."""
        if self._membership is not None:
            try:
                self._membership.join(time.time())
            except Exception as exc:  # the lease keeper registers at its first turn
                if not self._db.failed(exc):
                    log.exception("worker_heartbeat_failed")
        try:
            self._take_back_orphans()
        except Exception as exc:
            if not self._db.failed(exc):
                log.exception("lease_keeping_failed")
        for n in range(self._settings.workers):
            self._spawn(self._work, f"worker-{n}")
        self._keeper = threading.Thread(target=self._maintain, name="lease-keeper", daemon=True)
        self._keeper.start()

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wake(self) -> None:
        """A task was queued: an idle worker looks now instead of at its next poll."""
        self._wake.set()

    def drain(self) -> None:
        """Claim nothing more (the registry row says ``draining`` within a second).
        Returns at once: safe in a signal handler; :meth:`stop` waits for the tasks."""
        self._stop.set()
        self._wake.set(everyone=True)

    def stop(self) -> None:
        """Drain: claim nothing more, let running tasks finish for ``grace`` seconds while
        their leases are renewed, then release the others back to the queue (not failed);
        unregister."""
        self.drain()
        deadline = time.monotonic() + self._settings.grace_seconds
        while self._held() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            for job in self._jobs.values():
                job.reason = job.reason or "shutdown"
                job.cancel.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._halt.set()
        if self._keeper is not None:
            self._keeper.join(timeout=15)
        if self._membership is not None:
            self._membership.leave()

    def cancel(self, task_id: str) -> None:
        """Stop a task this pool runs (DelTaskByTaskID through this process's API)."""
        with self._lock:
            job = self._jobs.get(task_id)
            if job is not None:
                job.reason = job.reason or "user"
                job.cancel.set()

    def running(self) -> int:
        with self._lock:
            return len(self._jobs)

    def _held(self) -> list[str]:
        """The TaskIDs this pool holds: running, or ended and being finished (the last
        progress callback, the end being written)."""
        with self._lock:
            return sorted(set(self._jobs) | self._finishing)

    # -- workers ----------------------------------------------------------------------
    def _work(self) -> None:
        owner = self._me.owner(self._nonce, threading.current_thread().name)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                task = self._tasks.claim(
                    owner,
                    time.time(),
                    self._settings.lease_seconds,
                    self._blocked,
                    self._types,
                    pipelines=self._settings.pipelines,
                )
            except Exception as exc:
                if self._db.failed(exc):  # an outage: warned once; look again after a pause
                    self._stop.wait(self._db.pause())
                    continue
                log.exception("claim_failed")
                task = None
            if task is None:
                spent = time.monotonic() - started
                self._wake.wait(self._settings.poll_seconds)
                # A claim holds the database's write lock while it reads the queue, longer
                # as more tasks wait in pipelines that cannot start now. While new tasks keep
                # waking this worker, leave the lock free EMPTY_CLAIM_BACKOFF times as long
                # as the last empty claim took before looking again (nothing when it was
                # quick), instead of claiming once per new task.
                self._stop.wait(started + spent * EMPTY_CLAIM_BACKOFF - time.monotonic())
                continue
            self._wake.set(after=SPARE_CLAIM_DELAY)  # there may be more: another worker looks
            self._execute(_Job(task, owner))
            # Look again at once if a task was announced meanwhile, else a little later: the
            # notifier is taking this task's callback now.
            self._wake.wait(SPARE_CLAIM_DELAY)

    def _execute(self, job: _Job) -> None:
        task = job.task
        with logs.task_context(task.task_id, task_user(task), parent_id=task.parent_id):
            self._execute_logged(job)

    def _execute_logged(self, job: _Job) -> None:
        task = job.task
        log.info(
            "task_claimed",
            extra={
                "task_id": task.task_id,
                "attempt": task.attempts,
                "type": task.task_type,
                "pipeline": task.pipeline,
            },
        )
        with self._lock:
            self._jobs[task.task_id] = job
        items: list[dict[str, Any]] | None
        try:
            job.sink = self._sinks(task) if self._sinks is not None else None
            with self._jobs_maker.job(
                task,
                kinds.kind(task.task_type),
                job.cancel,
                report=lambda phase, percent: self._report(job, phase, percent),
                record_command=lambda command: self._record(task.task_id, command),
            ) as run:
                code, items = 0, self._executors[task.task_type].run(run)
        except TaskError as exc:
            code, items = exc.code, exc.result  # (a flow keeps its items' results)
            log.warning(
                "task_failed",
                extra={"task_id": task.task_id, "errnum": exc.code, "detail": exc.detail},
            )
            self._keep_log(task.task_id, exc.log or exc.detail)
        except Exception:
            code, items = 2001, None
            log.exception("task_crashed", extra={"task_id": task.task_id})
        finally:
            with self._lock:
                self._jobs.pop(task.task_id, None)
                self._finishing.add(task.task_id)  # until its end is written: see _recover
            if job.sink is not None:
                try:
                    job.sink.close()  # the last progress callback goes before the completion
                except Exception:
                    log.exception("progress_sink_failed", extra={"task_id": task.task_id})
        try:
            self._conclude(job, code, items)
        finally:
            with self._lock:
                self._finishing.discard(task.task_id)

    def _conclude(self, job: _Job, code: int, items: list[dict[str, Any]] | None) -> None:
        """Write the end of a task whose work is over. Through a database outage the result
        is kept and the write tried again (``worker/retry.py``): it is never dropped while
        this pool runs, and never written once another worker has taken the task back."""
        task = job.task
        if job.reason == "lost":
            log.warning("task_lease_lost", extra={"task_id": task.task_id})
            return
        if job.reason == "shutdown" and code != 0:
            try:
                self._tasks.release(task.task_id, job.owner, time.time(), count_attempt=False)
            except Exception as exc:
                if not self._db.failed(exc):
                    raise
                # Still held under our lease: it is taken back once the lease runs out.
                log.warning("task_release_failed", extra={"task_id": task.task_id})
                return
            log.info("task_released", extra={"task_id": task.task_id})
            return
        if job.reason == "user":
            code, items = 2005, None
        try:
            done, retries = until_written(
                lambda: self._finish(task, job.owner, code, items),
                watch=self._db,
                stop=self._stop,
                grace=self._settings.grace_seconds,
                task_id=task.task_id,
                what="finish",
            )
        except GaveUp:
            # Not written: the task is run again once its lease runs out.
            log.warning("task_result_dropped", extra={"task_id": task.task_id, "errnum": code})
            return
        except Exception:  # not an outage: the task is taken back when its lease runs out
            log.exception("task_finish_failed", extra={"task_id": task.task_id})
            return
        if retries and not done:
            # An earlier try was committed before its answer was lost, or the task was
            # taken back meanwhile: either way it ended once, and not by this write.
            log.info("task_finish_settled", extra={"task_id": task.task_id})

    def _finish(
        self,
        task: TaskRecord,
        owner: str | None,
        code: int,
        items: list[dict[str, Any]] | None,
        *,
        expired_before: float | None = None,
    ) -> bool:
        """End ``task`` held by ``owner`` (its status and callback); False when ``owner``
        no longer holds it."""
        cb_url = task.request.get("CbUrl", "")
        if task.task_type == kinds.FLOW:  # one callback for the whole flow (spec §5.6)
            sent = flow_callback(
                task_id=task.task_id, error_code=code, results=items, request=task.request
            )
        else:
            body = completion_body(
                task_id=task.task_id,
                task_type=task.task_type,
                bucket=task.request.get("DstBucket", ""),
                error_code=code,
                items=items,
                with_progress=progress_target(task) is not None,
            )
            sent = completion_body_for(body, task.request)  # the user's legacy variants
        status = TaskStatus.SUCC if code == 0 else TaskStatus.FAIL
        done = self._tasks.finish(
            task.task_id,
            owner,
            status=status,
            error_code=code,
            error_msg="" if code == 0 else TASK_MESSAGES[code],
            result=items,
            callback=(cb_url, sent) if cb_url else None,
            now=time.time(),
            expired_before=expired_before,
        )
        if done:
            ran = time.time() - task.started_at if task.started_at else None
            metrics.task_finished(task.task_type, code, ran)
            log.info("task_finished", extra={"task_id": task.task_id, "errnum": code})
            self._on_finished()
        return done

    def _report(self, job: _Job, phase: Phase, percent: float) -> None:
        """An executor's progress: kept for the next lease renewal (which writes it), the
        phase written at once when it changes, the sink told. Never decreases in a phase."""
        value = max(0, min(100, int(percent)))
        changed = phase != job.phase
        if not changed and value <= job.progress:
            return
        if changed or value // MILESTONE > job.progress // MILESTONE:
            log.info("task_progress", extra={"phase": phase.value, "progress": value})
        job.phase, job.progress = phase, value
        if changed and self._runs is not None and not self._db.down:  # not worth a wait
            try:
                self._runs.set_phase(job.task.task_id, phase.value, time.time())
            except Exception as exc:
                if not self._db.failed(exc):  # an outage: the phase is not shown, the task goes on
                    log.exception("progress_write_failed", extra={"task_id": job.task.task_id})
        if job.sink is not None:
            job.sink.update(phase, value)

    def _record(self, task_id: str, command: str) -> None:
        log.info("task_command", extra={"task_id": task_id, "command": command})
        if self._runs is not None and not self._db.down:  # an outage: not worth a wait
            try:
                self._runs.set_command(task_id, command, time.time())
            except Exception as exc:
                if not self._db.failed(exc):  # an outage: not kept, but logged above
                    raise

    def _keep_log(self, task_id: str, text: str) -> None:
        if self._runs is not None and text and not self._db.down:
            try:
                self._runs.set_log(task_id, text, time.time())
            except Exception as exc:
                if not self._db.failed(exc):
                    log.exception("progress_write_failed", extra={"task_id": task_id})

    # -- leases -----------------------------------------------------------------------
    def _maintain(self) -> None:
        # Renewal doubles as the cancellation check for tasks deleted through another
        # process, so it runs at least every second. It goes on while the pool drains.
        interval = max(0.2, min(self._settings.lease_seconds / 3, 1.0))
        next_sweep = time.monotonic() + self._settings.sweep_seconds
        while not self._halt.wait(interval):
            if self._membership is not None:
                self._membership.beat(time.time(), self._held(), draining=self._stop.is_set())
            try:
                self._renew()
                self._recover()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self._settings.sweep_seconds
                    self._take_back_orphans()
                self._db.ok()  # _recover reads the database at every turn
            except Exception as exc:
                if not self._db.failed(exc):  # an outage: warned once, tried again next turn
                    log.exception("lease_keeping_failed")

    def _renew(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            # The task row's Progress is the media work's: 100 once uploading has begun.
            progress = (
                100
                if job.phase is Phase.UPLOADING
                else job.progress
                if job.phase is Phase.TRANSCODING
                else None
            )
            cancel = self._tasks.heartbeat(
                job.task.task_id, job.owner, time.time(), self._settings.lease_seconds, progress
            )
            if cancel is None or cancel:
                job.reason = job.reason or ("lost" if cancel is None else "user")
                job.cancel.set()

    def _recover(self) -> None:
        now = time.time()
        expired = self._tasks.expired(now)
        if self._db.down or self._db.back_within(self._settings.lease_seconds):
            # After a database outage every lease looks run out: their holders get one
            # lease time to renew them (or to write their ends) before any is taken back.
            return
        for task in expired:
            with self._lock:  # ours and alive (running, or its end being written): kept
                ours = task.task_id in self._jobs or task.task_id in self._finishing
            if not ours:
                self._take_back(task, now, expired_before=now, reason="lease_expired")

    def _take_back_orphans(self) -> None:
        """Take back, without waiting for their leases, the running tasks held by processes
        of this machine that have exited (their pid is free, a zombie, or now another
        process's). A no-op where processes cannot be checked (no ``/proc``)."""
        if not self._me.checkable:
            return
        now = time.time()
        gone: dict[str, bool] = {}
        for task in self._tasks.held_under(self._me.machine_prefix):
            owner = task.lease_owner or ""
            if owner not in gone:
                gone[owner] = owner_gone(owner, self._me)
            if gone[owner]:
                self._take_back(task, now, expired_before=None, reason="owner_gone")

    def _take_back(
        self, task: TaskRecord, now: float, *, expired_before: float | None, reason: str
    ) -> None:
        """A task whose worker died: requeue it, or end it (2005 if deleted meanwhile, 2057
        after ``max_attempts`` claims). Every write names the dead owner, so when several
        processes take back the same task only one succeeds."""
        owner = task.lease_owner
        if task.cancel_requested:  # deleted while its worker was dying: do not rerun
            log.info("task_cancelled", extra={"task_id": task.task_id, "reason": reason})
            self._finish(task, owner, 2005, None, expired_before=expired_before)
        elif task.attempts >= self._settings.max_attempts:
            log.error(
                "task_abandoned",
                extra={"task_id": task.task_id, "attempts": task.attempts, "reason": reason},
            )
            self._finish(task, owner, 2057, None, expired_before=expired_before)
        elif self._tasks.release(
            task.task_id, owner or "", now, count_attempt=True, expired_before=expired_before
        ):
            log.warning(
                "task_requeued",
                extra={
                    "task_id": task.task_id,
                    "attempts": task.attempts,
                    "reason": reason,
                    "owner": owner,
                },
            )
            self._wake.set()
