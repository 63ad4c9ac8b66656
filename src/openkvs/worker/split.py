"""Split-and-stitch, the parent's side: cut a long transcode into parts, wait, join.

:class:`SplitTranscoder` is handed an ``avtrans`` job by ``worker/avtrans.py`` once the
source is probed and the single-pass plan is known to be valid. When the task may split
(``engine.split.refusal``) and keyframes are found where the chunks should end, it:

1. queues one part per chunk (``avtrans_part``, ``parts.part_task_id``), or finds the parts
   an earlier attempt of the task queued (a worker that died): those that ended keep their
   outputs and are not run again;
2. runs parts of its own task itself, one after the other, while any is queued
   (``worker/part.py``), then waits for those other workers run, reporting the mean of the
   parts' progress as the task's;
3. reads the chunks back from the object storage and joins them with the audio, encoded
   once from the source (``engine.split.stitch_plan``), into the output file that
   ``worker/avtrans.py`` describes and uploads as for a single pass; then the chunks are
   removed.

A part that fails (after its attempts) fails the task with its code, and the others are
cancelled; DelTaskByTaskID of the task cancels its parts. When the worker stops or loses the
task's lease, the parts are left as they are for the next attempt. When the parts of an
earlier attempt do not match the chunks planned now (the workers' split settings differ) or
a finished chunk is gone, they are cancelled and the task runs as a single pass.

``Command`` (GetTaskByTaskID) shows the keyframe probe, each part's command (writing the
``part-NNNN`` folders of the task's scratch folder, where the chunks are read back to) and
the stitch, joined with `` && ``.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from openkvs.config import Settings
from openkvs.engine import ffmpeg
from openkvs.engine.runner import run_commands
from openkvs.engine.sandbox import SourceInput
from openkvs.engine.split import (
    CONCAT_NAME,
    Chunk,
    clip_window,
    concat_list,
    constant_rate,
    keyframe_offsets,
    keyframe_probe,
    output_fps,
    part_plan,
    plan_chunks,
    refusal,
    stitch_plan,
    targets,
)
from openkvs.engine.transcode import SourceFacts, TranscodePlan, command_text
from openkvs.errors import TaskError
from openkvs.model import NewTask, TaskRecord, TaskStatus
from openkvs.parts import PART_TYPE, part_key, part_task_id
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.presets.codec import dump
from openkvs.storage.base import NotFound, ObjectStorage, StorageError
from openkvs.storage.retry import RUNTIME_RETRY
from openkvs.store.outage import OutageWatch
from openkvs.store.runs import RunStore
from openkvs.store.tasks import TaskStore
from openkvs.worker.executor import Executor
from openkvs.worker.job import Job, JobMaker, Phase, ffmpeg_limits
from openkvs.worker.part import OwnParts, PartExecutor

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The keyframe probe reads a few seconds after each boundary; a minute covers slow storage.
PROBE_TIMEOUT = 60.0
#: The most keyframe-probe output read.
MAX_PROBE_OUTPUT = 16 * 1024 * 1024
#: Share of the task's progress the parts make (the stitch makes the rest).
PARTS_SHARE = 95.0


class _Replan(Exception):
    """The parts found do not fit this attempt: run it as a single pass."""


@dataclass(frozen=True)
class Stitched:
    """A split task's output in the scratch folder, and the chunks to remove once it is up."""

    plan: TranscodePlan
    bucket: str
    keys: tuple[str, ...]


class SplitTranscoder:
    """Split-and-stitch for the ``avtrans`` executor of one process (see the module)."""

    def __init__(
        self,
        settings: Settings,
        storage: ObjectStorage,
        tasks: TaskStore,
        runs: RunStore | None = None,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._tasks = tasks
        self._min_seconds = settings.split_min_seconds
        self._chunk_seconds = settings.split_chunk_seconds
        self._poll = max(0.05, min(settings.poll_seconds, 1.0))
        self._threads = settings.ffmpeg_threads
        self._limits = ffmpeg_limits(settings)
        self._own = OwnParts(
            tasks,
            runs,
            JobMaker(storage, settings.scratch_dir, settings.task_timeout),
            PartExecutor(settings, storage, tasks=tasks),
            lease_seconds=settings.lease_seconds,
            grace_seconds=settings.drain_seconds,
        )
        self._watch = OutageWatch("split transcode")

    # -- deciding ---------------------------------------------------------------------
    def chunks(
        self,
        job: Job,
        spec: AvtransSpec,
        options: AvtransOptions,
        found: dict[str, Any],
        facts: SourceFacts,
        opened: SourceInput,
    ) -> tuple[tuple[Chunk, ...], list[str]]:
        """The chunks of this task and the keyframe probe that found them; () when it
        runs as a single pass."""
        fmt = found.get("format") or {}
        why = refusal(spec, options, facts, str(fmt.get("format_name") or ""), self._min_seconds)
        if why:
            log.debug("split_refused", extra={"task_id": job.task.task_id, "reason": why})
            return (), []
        start, length, total = clip_window(spec, options, facts)
        wanted = targets(start, total, self._chunk_seconds)
        source_start = float(fmt.get("start_time") or 0.0)
        command = keyframe_probe(opened.args(), facts, source_start, wanted)
        try:
            out = ffmpeg.run(
                command,
                timeout=min(PROBE_TIMEOUT, job.remaining()),
                cancel=job.cancel,
                timeout_code=3187,
                max_output=MAX_PROBE_OUTPUT,
            )
            answer = json.loads(out)
        except (TaskError, ValueError) as exc:
            if job.cancel.is_set():
                raise TaskError(2005, "cancelled") from exc
            log.warning("split_probe_failed", extra={"task_id": job.task.task_id, "error": exc})
            return (), []
        chunks = plan_chunks(
            start,
            length,
            total,
            keyframe_offsets(answer if isinstance(answer, dict) else {}),
            self._chunk_seconds,
            fps=output_fps(spec, facts),
            filtered=bool(spec.video.fps),
            constant=constant_rate(spec),
        )
        return chunks, command

    # -- running ----------------------------------------------------------------------
    def transcode(
        self,
        job: Job,
        spec: AvtransSpec,
        options: AvtransOptions,
        found: dict[str, Any],
        facts: SourceFacts,
        opened: SourceInput,
    ) -> Stitched | None:
        """The output of ``job`` made in parts, or None when it runs as a single pass."""
        chunks, probe = self.chunks(job, spec, options, found, facts, opened)
        if not chunks:
            return None
        parent = job.task
        ids = [part_task_id(parent.task_id, c.index) for c in chunks]
        extension = spec.container.extension
        keys = tuple(part_key(parent.task_id, c.index, extension) for c in chunks)
        try:
            self._queue_parts(job, spec, options, facts, chunks, keys)
        except _Replan as exc:
            log.warning("split_replanned", extra={"task_id": parent.task_id, "reason": str(exc)})
            self._cancel_parts(job, ids)
            return None
        folders = [job.scratch / f"part-{c.index:04d}" for c in chunks]
        concat = job.scratch / CONCAT_NAME
        stitch = stitch_plan(
            spec,
            options,
            facts,
            concat=str(concat),
            input_args=opened.args(),
            scratch=str(job.scratch),
            threads=self._threads,
        )
        shown_parts = [
            part_plan(
                spec,
                options,
                facts,
                c,
                input_args=opened.args(),
                scratch=str(f),
                threads=self._threads,
            ).commands
            for c, f in zip(chunks, folders, strict=True)
        ]
        commands = [probe, *(c for part in shown_parts for c in part), *stitch.commands]
        job.record_command(command_text([_named(c, opened) for c in commands]))
        log.info("split_started", extra={"task_id": parent.task_id, "parts": len(chunks)})
        try:
            self._wait_parts(job, ids)
            outputs = self._fetch(job, spec, chunks, keys, folders)
        except _Replan as exc:
            log.warning("split_replanned", extra={"task_id": parent.task_id, "reason": str(exc)})
            self._cancel_parts(job, ids)
            self.discard(job.destination.bucket, keys)
            return None
        except TaskError as exc:
            if exc.code == 2005 and not self._deleting(parent):
                raise  # the worker stops: the parts stay for the next attempt
            self._cancel_parts(job, ids)
            self.discard(job.destination.bucket, keys)
            raise
        names = [str(path.relative_to(job.scratch)) for path in outputs]
        concat.write_text(concat_list(chunks, names))
        try:
            run_commands(
                stitch.commands,
                duration=stitch.duration,
                deadline=job.deadline,
                cancel=job.cancel,
                on_progress=lambda p: job.report(
                    Phase.TRANSCODING, PARTS_SHARE + p * (100 - PARTS_SHARE) / 100
                ),
                folder=job.scratch,
                limits=self._limits,
            )
        except TaskError as exc:
            explained = opened.explain(exc)
            explained.log = exc.log.replace(opened.url, opened.source)
            if exc.code != 2005 or self._deleting(parent):
                self.discard(job.destination.bucket, keys)
            raise explained from exc
        for path in outputs:  # the joined file is all that is needed now
            path.unlink(missing_ok=True)
        return Stitched(stitch, job.destination.bucket, keys)

    def discard(self, bucket: str, keys: Sequence[str]) -> None:
        """Remove the chunks (best effort: a chunk left behind costs space, nothing else)."""
        for key in keys:
            try:
                self._storage.delete(bucket, key)
            except StorageError as exc:
                log.warning("split_chunk_left", extra={"bucket": bucket, "key": key, "error": exc})

    # -- parts ------------------------------------------------------------------------
    def _queue_parts(
        self,
        job: Job,
        spec: AvtransSpec,
        options: AvtransOptions,
        facts: SourceFacts,
        chunks: Sequence[Chunk],
        keys: Sequence[str],
    ) -> None:
        """Queue the parts not queued yet; :class:`_Replan` when an earlier attempt queued
        other chunks (or more of them)."""
        parent = job.task
        request = parent.request
        base = {
            "sources": list(request.get("sources") or [request.get("source")])[:1],
            "DstBucket": job.destination.bucket,
            "DstAcl": "private",
            "spec": dump(spec),
            "options": dump(replace(options, progress_url="")),
        }
        extra = self._retry(job, lambda: self._tasks.get(part_task_id(parent.task_id, len(chunks))))
        if extra is not None:
            raise _Replan("an earlier attempt made more parts")
        for chunk, key in zip(chunks, keys, strict=True):
            part = {
                "index": chunk.index,
                "start": chunk.start,
                "length": chunk.length,
                "place": chunk.place,
                "facts": dump(facts),
            }
            task_id = part_task_id(parent.task_id, chunk.index)
            found = self._retry(job, functools.partial(self._tasks.get, task_id))
            if found is not None:
                if found.request.get("part") != part or found.request.get("DstObjectKey") != key:
                    raise _Replan(f"part {chunk.index} of an earlier attempt is another chunk")
                continue
            new = NewTask(
                task_id=task_id,
                user_id=parent.user_id,
                action=parent.action,
                task_type=PART_TYPE,
                preset=parent.preset,
                pipeline=parent.pipeline,
                is_top=False,
                request={**base, "DstObjectKey": key, "part": part},
                parent_id=parent.task_id,
            )
            try:
                self._retry(job, functools.partial(self._tasks.create, new, time.time()))
            except IntegrityError as exc:  # it exists, but deleted: cancelled by an attempt
                raise _Replan(f"part {chunk.index} of an earlier attempt was deleted") from exc

    def _wait_parts(self, job: Job, ids: Sequence[str]) -> None:
        """Until every part has succeeded: run queued parts here, one at a time, else wait
        for those other workers run; the first failed part's code is raised."""
        parent = job.task
        owner = f"{parent.lease_owner or 'split'}+parts"
        while True:
            if job.cancel.is_set():
                raise TaskError(2005, "cancelled")
            job.check()
            states = self._retry(job, lambda: [self._tasks.get(i) for i in ids])
            progress = 0
            for index, state in enumerate(states):
                if state is None or state.status is TaskStatus.DELETED:
                    raise TaskError(2005, f"part {index} of the task was deleted")
                if state.status is TaskStatus.FAIL:
                    raise TaskError(
                        state.error_code or 2001, f"part {index} failed: {state.error_msg}"
                    )
                progress += 100 if state.status is TaskStatus.SUCC else state.progress
            job.report(Phase.TRANSCODING, progress / len(ids) * PARTS_SHARE / 100)
            if all(s is not None and s.status is TaskStatus.SUCC for s in states):
                return
            if not self._retry(job, lambda: self._own.run_one(parent, owner, job.cancel)):
                job.cancel.wait(self._poll)

    def _fetch(
        self,
        job: Job,
        spec: AvtransSpec,
        chunks: Sequence[Chunk],
        keys: Sequence[str],
        folders: Sequence[Path],
    ) -> list[Path]:
        """Read the chunks back into the scratch folder; :class:`_Replan` when one is gone."""
        outputs = []
        for chunk, key, folder in zip(chunks, keys, folders, strict=True):
            job.check()
            folder.mkdir(exist_ok=True)
            path = folder / f"output{spec.container.extension}"
            bucket = job.destination.bucket
            try:
                RUNTIME_RETRY.call(
                    functools.partial(self._storage.get_file, bucket, key, path),
                    what=f"/{bucket}/{key}",
                    cancel=job.cancel,
                )
            except NotFound as exc:
                raise _Replan(f"the chunk of part {chunk.index} is gone") from exc
            except StorageError as exc:
                raise TaskError(
                    2033, f"cannot read the chunk of part {chunk.index}: {exc}"
                ) from exc
            outputs.append(path)
        return outputs

    def _cancel_parts(self, job: Job, ids: Sequence[str]) -> None:
        """Delete the parts that have not ended (queued: removed; running: stopped)."""
        now = time.time()
        for task_id in ids:
            try:
                self._tasks.delete(task_id, job.task.user_id, now)
            except Exception:
                log.exception("split_cancel_failed", extra={"task_id": task_id})

    def _deleting(self, parent: TaskRecord) -> bool:
        """Whether the parent is being deleted (DelTaskByTaskID), not merely stopped."""
        try:
            current = self._tasks.get(parent.task_id)
        except Exception:
            return False
        return current is None or current.cancel_requested

    def _retry(self, job: Job, call: Callable[[], T]) -> T:
        """``call()``, tried again while the database is unavailable (until the task's
        deadline or its cancel)."""
        while True:
            try:
                value = call()
            except Exception as exc:
                if not self._watch.failed(exc):
                    raise
                job.cancel.wait(self._watch.pause())
                if job.cancel.is_set():
                    raise TaskError(2005, "cancelled while the database is unavailable") from exc
                job.check()
                continue
            self._watch.ok()
            return value


def _named(command: Sequence[str], opened: SourceInput) -> list[str]:
    """``command`` naming the source itself instead of the sandbox's link to it."""
    return [opened.source if word == opened.url else word for word in command]


def split_executors(
    settings: Settings, storage: ObjectStorage, tasks: TaskStore, runs: RunStore | None
) -> dict[str, Executor]:
    """The executors of ``avtrans`` and its parts that work with the queue: the parent makes,
    runs and waits for parts. A process that runs tasks replaces the plain ones with these
    (``runtime.py``)."""
    from openkvs.worker.avtrans import AvtransExecutor

    return {
        "avtrans": AvtransExecutor(
            settings, storage, split=SplitTranscoder(settings, storage, tasks, runs)
        ),
        PART_TYPE: PartExecutor(settings, storage, tasks=tasks),
    }
