"""Parts of a split transcode (``avtrans_part``): encoding one chunk, wherever it runs.

Any worker claims a part as it claims any task (parts go first: their parent waits for
them) and runs it with :class:`PartExecutor`: the source's video from the chunk's start for
the chunk's length, encoded as the parent's preset says (``engine.split.part_plan``), written
to the object storage under the parent's reserved prefix (``parts.part_key``) where the
parent's worker, on whatever machine, reads it back. A part has no callback; its failure
fails the parent with the part's code. A part whose worker dies is taken back as any task
(its lease runs out, or its process is seen gone) and run again alone.

The parent's worker runs parts too while it waits (:class:`OwnParts`): it claims the parts
of its own task and runs each in its own thread of control, renewing the part's lease as
the pool does for its tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from openkvs import kinds
from openkvs.config import Settings
from openkvs.engine.sandbox import source_input
from openkvs.engine.split import Chunk, part_plan
from openkvs.engine.transcode import SourceFacts
from openkvs.errors import TASK_MESSAGES, TaskError
from openkvs.model import TaskRecord, TaskStatus
from openkvs.parts import PART_TYPE
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.presets.codec import load
from openkvs.storage.base import ObjectStorage
from openkvs.store.outage import OutageWatch
from openkvs.store.runs import RunStore
from openkvs.store.tasks import TaskStore
from openkvs.worker.avtrans import run_plan
from openkvs.worker.job import Job, JobMaker, Phase, ffmpeg_limits
from openkvs.worker.outputs import OutputFile, upload
from openkvs.worker.retry import GaveUp, until_written

log = logging.getLogger(__name__)

_ENDED = (TaskStatus.SUCC, TaskStatus.FAIL, TaskStatus.DELETED)


def chunk_of(task: TaskRecord) -> tuple[Chunk, SourceFacts]:
    """The chunk a part encodes and the source's facts its parent probed."""
    part = task.request["part"]
    chunk = Chunk(int(part["index"]), int(part["start"]), part.get("length"), int(part["place"]))
    return chunk, load(SourceFacts, part["facts"])


class PartExecutor:
    """``avtrans_part`` tasks: one chunk of a split transcode."""

    def __init__(
        self, settings: Settings, storage: ObjectStorage, *, tasks: TaskStore | None = None
    ) -> None:
        self._storage = storage
        self._tasks = tasks
        self._threads = settings.ffmpeg_threads
        self._limits = ffmpeg_limits(settings)

    def run(self, job: Job) -> list[dict[str, Any]]:
        spec: AvtransSpec = job.spec
        options = load(AvtransOptions, job.options)
        chunk, facts = chunk_of(job.task)
        self._require_parent(job.task)
        job.report(Phase.TRANSCODING, 0)
        source = job.source
        with source_input(source.location) as opened:
            plan = part_plan(
                spec,
                options,
                facts,
                chunk,
                input_args=opened.args(),
                scratch=str(job.scratch),
                threads=self._threads,
            )
            run_plan(job, plan, opened, self._limits)
        job.check()
        output = Path(plan.output)
        upload(job, [OutputFile(output, job.destination.key, plan.content_type)])
        return [{"dstpath": job.destination.key, "index": chunk.index, "size": _size(output)}]

    def _require_parent(self, task: TaskRecord) -> None:
        """2005 when the task this part belongs to has ended or is being deleted (its
        worker died and it was then deleted: nobody will join this chunk)."""
        if self._tasks is None or task.parent_id is None:
            return
        parent = self._tasks.get(task.parent_id)
        if parent is None or parent.status in _ENDED or parent.cancel_requested:
            raise TaskError(2005, f"the task {task.parent_id} this part belongs to has ended")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class OwnParts:
    """Runs, in the calling thread, parts of one task that nobody has claimed yet.

    ``owner`` is the lease owner the parts are claimed under: the parent's own owner with a
    suffix, so that a worker of this machine that finds the process gone takes them back.
    """

    def __init__(
        self,
        tasks: TaskStore,
        runs: RunStore | None,
        jobs: JobMaker,
        executor: PartExecutor,
        *,
        lease_seconds: float,
        grace_seconds: float = 10.0,
    ) -> None:
        self._tasks = tasks
        self._runs = runs
        self._jobs = jobs
        self._executor = executor
        self._lease = lease_seconds
        self._grace = grace_seconds
        self._watch = OutageWatch("split parts")

    def run_one(self, parent: TaskRecord, owner: str, stop: threading.Event) -> bool:
        """Claim one queued part of ``parent`` and run it; False when there was none.

        ``stop`` is the parent's cancel event: set, the part is stopped; it then fails
        with 2005 if the parent is being deleted, else (the worker stops, or lost the
        parent's lease) it goes back to the queue for another worker."""
        part = self._tasks.claim(
            owner, time.time(), self._lease, None, frozenset({PART_TYPE}), parent=parent.task_id
        )
        if part is None:
            return False
        log.info("part_claimed", extra={"task_id": part.task_id, "parent": parent.task_id})
        cancel = threading.Event()
        progress = _Progress()
        done = threading.Event()
        keeper = threading.Thread(
            target=self._keep,
            args=(part, owner, cancel, stop, progress, done),
            name=f"part-lease-{part.task_id[:8]}",
            daemon=True,
        )
        keeper.start()
        code, items, detail = 0, None, ""
        try:
            with self._jobs.job(
                part,
                kinds.kind(PART_TYPE),
                cancel,
                report=progress.report,
                record_command=lambda command: self._record(part.task_id, command),
            ) as job:
                items = self._executor.run(job)
        except TaskError as exc:
            code, detail = exc.code, exc.detail
            self._keep_log(part.task_id, exc.log or exc.detail)
        except Exception:
            code = 2001
            log.exception("part_crashed", extra={"task_id": part.task_id})
        finally:
            done.set()
            keeper.join()
        if code and progress.lost:
            return True  # another worker took it back: nothing of ours to write
        if code and stop.is_set() and not self._deleted(parent):
            self._write(part, "release", lambda: self._release(part, owner), stop)
            return True
        if code:
            log.warning(
                "part_failed", extra={"task_id": part.task_id, "errnum": code, "detail": detail}
            )
        self._write(part, "finish", lambda: self._finish(part, owner, code, items), stop)
        log.info("part_finished", extra={"task_id": part.task_id, "errnum": code})
        return True

    def _deleted(self, parent: TaskRecord) -> bool:
        try:
            current = self._tasks.get(parent.task_id)
        except Exception as exc:
            if not self._watch.failed(exc):
                raise
            return False
        return current is None or current.cancel_requested or current.status in _ENDED

    def _finish(
        self, part: TaskRecord, owner: str, code: int, items: list[dict[str, Any]] | None
    ) -> bool:
        return self._tasks.finish(
            part.task_id,
            owner,
            status=TaskStatus.SUCC if code == 0 else TaskStatus.FAIL,
            error_code=code,
            error_msg=TASK_MESSAGES.get(code, "") if code else "",
            result=items,
            callback=None,
            now=time.time(),
        )

    def _release(self, part: TaskRecord, owner: str) -> bool:
        return self._tasks.release(part.task_id, owner, time.time(), count_attempt=False)

    def _write(self, part: TaskRecord, what: str, write: Any, stop: threading.Event) -> None:
        try:
            until_written(
                write,
                watch=self._watch,
                stop=stop,
                grace=self._grace,
                task_id=part.task_id,
                what=what,
            )
        except GaveUp:
            log.warning("part_write_abandoned", extra={"task_id": part.task_id, "write": what})

    def _keep(
        self,
        part: TaskRecord,
        owner: str,
        cancel: threading.Event,
        stop: threading.Event,
        progress: _Progress,
        done: threading.Event,
    ) -> None:
        """Renew the part's lease (with its progress) while it runs; stop it when the
        parent stops, or when the part is cancelled or its lease lost."""
        interval = max(0.2, min(self._lease / 3, 1.0))
        beat = time.monotonic() + interval
        while not done.wait(0.05):
            if stop.is_set():
                cancel.set()
                continue
            if time.monotonic() < beat:
                continue
            beat = time.monotonic() + interval
            try:
                asked = self._tasks.heartbeat(
                    part.task_id, owner, time.time(), self._lease, progress.value()
                )
            except Exception as exc:
                if not self._watch.failed(exc):
                    log.exception("part_lease_failed", extra={"task_id": part.task_id})
                continue
            self._watch.ok()
            if asked is None:
                progress.lost = True
                cancel.set()
            elif asked:
                cancel.set()

    def _record(self, task_id: str, command: str) -> None:
        if self._runs is not None:
            try:
                self._runs.set_command(task_id, command, time.time())
            except Exception:
                log.exception("progress_write_failed", extra={"task_id": task_id})

    def _keep_log(self, task_id: str, text: str) -> None:
        if self._runs is not None and text:
            try:
                self._runs.set_log(task_id, text, time.time())
            except Exception:
                log.exception("progress_write_failed", extra={"task_id": task_id})


class _Progress:
    """A running part's progress as its lease renewals write it (100 once uploading)."""

    def __init__(self) -> None:
        self.percent = 0
        self.uploading = False
        self.lost = False

    def report(self, phase: Phase, percent: float) -> None:
        if phase is Phase.UPLOADING:
            self.uploading = True
        else:
            self.percent = max(self.percent, max(0, min(100, int(percent))))

    def value(self) -> int:
        return 100 if self.uploading else self.percent
