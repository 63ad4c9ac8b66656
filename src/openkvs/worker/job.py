"""What an executor is given: a job (typed spec, sources, cancel, report, scratch, deadline).

The pool makes one :class:`Job` per claimed task with :class:`JobMaker`: it loads the spec the
task stored at creation (``request["spec"]``, see ``openkvs.presets``), locates the sources in
the object storage (a path or URL ffmpeg reads directly: never a copy when the storage can
give one), makes a private scratch folder ``<scratch_dir>/<pid>-<TaskID>`` and removes it
when the job ends, whatever the outcome. Folders left by a process that died (``kill -9``)
are removed by :func:`sweep_scratch` when a pool starts.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from openkvs.config import Settings
from openkvs.engine.runner import Limits
from openkvs.errors import TaskError
from openkvs.kinds import Kind, Output
from openkvs.model import TaskRecord
from openkvs.orphans import remove_orphans
from openkvs.presets.codec import load
from openkvs.storage.base import ObjectStorage, StorageError
from openkvs.storage.retry import RUNTIME_RETRY
from openkvs.store.permissions import private_dir


class Phase(enum.StrEnum):
    """The sub-phase of a running task (spec §4.1; progress callbacks' ``Details.status``)."""

    TRANSCODING = "transcoding"  # the media work (ffmpeg running)
    UPLOADING = "uploading"  # outputs going to the destination bucket


@dataclass(frozen=True)
class Source:
    """One ``SrcInfo`` item, located: ``location`` is what ffmpeg opens (a path or URL),
    to be opened only through ``engine.sandbox.source_input``."""

    bucket: str
    key: str
    location: str
    type: str = "video"
    index: int = 0


@dataclass(frozen=True)
class Destination:
    """Where outputs go: ``key`` (DstObjectKey) or ``dir`` (DstDir), with ``acl``."""

    bucket: str
    key: str
    dir: str
    acl: str


#: ``report(phase, percent)``: percent is 0-100 within the phase.
Reporter = Callable[[Phase, float], None]


class ProgressSink(Protocol):
    """Where a running task's progress goes besides the task row (progress callbacks)."""

    def update(self, phase: Phase, percent: int) -> None:
        """The latest progress (never lower than the last within a phase); must not block."""
        ...

    def close(self) -> None:
        """Deliver what is still due (the final progress) and stop; bounded in time."""
        ...


def _ignore_report(_phase: Phase, _percent: float) -> None:
    return None


def _ignore_command(_command: str) -> None:
    return None


@dataclass
class Job:
    """One run of one task. Executors read it and call :meth:`report` and
    :meth:`record_command`; everything else is the pool's business."""

    task: TaskRecord
    spec: Any  # the kind's frozen spec (openkvs.presets.*)
    options: dict[str, Any]  # ExtParam, parsed (a JSON object)
    sources: tuple[Source, ...]
    destination: Destination
    storage: ObjectStorage
    scratch: Path  # a private, empty folder (kinds that write nothing get only its name)
    deadline: float  # time.monotonic() by which the media work must end (else 2038)
    cancel: threading.Event = field(default_factory=threading.Event)
    report: Reporter = _ignore_report
    #: Store the command line that runs (shell-quoted; several joined with `` && ``).
    record_command: Callable[[str], None] = _ignore_command

    @property
    def source(self) -> Source:
        return self.sources[0]

    def remaining(self) -> float:
        """Seconds left before the deadline (at least a small positive number)."""
        return max(0.01, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise 2005 when cancelled, 2038 when past the deadline."""
        if self.cancel.is_set():
            raise TaskError(2005, "cancelled")
        if time.monotonic() >= self.deadline:
            raise TaskError(2038, "the task ran over its time limit")


_SCRATCH = re.compile(r"(\d+)-[0-9A-Za-z]+")


class JobMaker:
    """Makes the jobs of one process: where sources are, where scratch goes, how long."""

    def __init__(self, storage: ObjectStorage, scratch_dir: Path, timeout: float) -> None:
        self._storage = storage
        self._scratch_dir = scratch_dir
        self._timeout = timeout

    @contextlib.contextmanager
    def job(
        self,
        task: TaskRecord,
        kind: Kind,
        cancel: threading.Event,
        report: Reporter = _ignore_report,
        record_command: Callable[[str], None] = _ignore_command,
    ) -> Iterator[Job]:
        """The job of ``task``; its scratch folder is removed when the block ends.

        Raises ``TaskError(2041)`` when a source is no longer in storage and 2028 when the
        scratch folder cannot be made."""
        deadline = time.monotonic() + self._timeout
        spec = load_spec(task, kind)
        sources = tuple(self._locate(item) for item in _source_items(task))
        record_command = _naming_objects(record_command, sources)
        request = task.request
        destination = Destination(
            bucket=request.get("DstBucket", ""),
            key=request.get("DstObjectKey", ""),
            dir=request.get("DstDir", ""),
            acl=request.get("DstAcl", "") or "public-read",
        )
        scratch = self._scratch_dir / f"{os.getpid()}-{task.task_id}"
        # Kinds that write nothing (avinfo) get no folder: the name is all they are given.
        if kind.output is not Output.NONE:
            try:
                private_dir(self._scratch_dir)
                shutil.rmtree(scratch, ignore_errors=True)  # a previous attempt of this process
                scratch.mkdir(mode=0o700)
            except OSError as exc:
                raise TaskError(2028, f"cannot make the scratch folder {scratch}: {exc}") from exc
        try:
            yield Job(
                task=task,
                spec=spec,
                options=dict(request.get("options") or {}),
                sources=sources,
                destination=destination,
                storage=self._storage,
                scratch=scratch,
                deadline=deadline,
                cancel=cancel,
                report=report,
                record_command=record_command,
            )
        finally:
            if kind.output is not Output.NONE:
                shutil.rmtree(scratch, ignore_errors=True)

    def _locate(self, item: dict[str, Any]) -> Source:
        """Where ffmpeg reads one source: 2041 when it is gone (``NotFound``), refused, or
        the store stays unavailable through ``RUNTIME_RETRY``'s attempts."""
        bucket, key = item["bucket"], item["key"]
        try:
            location = RUNTIME_RETRY.call(
                lambda: self._storage.source_for(bucket, key), what=f"/{bucket}/{key}"
            )
        except StorageError as exc:
            raise TaskError(2041, str(exc)) from exc
        return Source(bucket, key, location, item.get("type", "video"), item.get("index", 0))


def _naming_objects(
    record: Callable[[str], None], sources: tuple[Source, ...]
) -> Callable[[str], None]:
    """``record`` showing each source read through a URL (an S3 presigned URL) as
    ``/bucket/key``: a task's ``Command`` must not hand out a working signature, nor the
    store's address and access key id."""
    names = [(s.location, f"/{s.bucket}/{s.key}") for s in sources if "://" in s.location]
    if not names:
        return record

    def recorded(command: str) -> None:
        for url, name in names:
            command = command.replace(shlex.quote(url), shlex.quote(name)).replace(url, name)
        record(command)

    return recorded


def _source_items(task: TaskRecord) -> list[dict[str, Any]]:
    """The located sources a task stored (``request["sources"]``), or its first source as
    older tasks stored it (``request["source"]``)."""
    request = task.request
    if request.get("sources"):
        return list(request["sources"])
    if request.get("source"):
        return [dict(request["source"])]
    return []


def load_spec(task: TaskRecord, kind: Kind) -> Any:
    """The spec a task stored at creation; tasks stored before specs existed are parsed
    again from their preset snapshot (a task made by CreateWaveTask has none: its options
    are in ``request["wave"]``)."""
    request = task.request
    stored = request.get("spec")
    if stored is None:
        return kind.parse(request.get("preset", {}).get("param") or {})
    return load(kind.spec_class(), stored)


def sweep_scratch(scratch_dir: Path) -> int:
    """Remove the scratch folders of processes that no longer exist; how many were removed."""
    return remove_orphans(scratch_dir, _SCRATCH)


def ffmpeg_limits(settings: Settings) -> Limits:
    """The resource limits of every ffmpeg a task runs (``OPENKVS_FFMPEG_MAX_RSS_MB``,
    ``OPENKVS_MAX_OUTPUT_MB``)."""
    return Limits(max_rss_mb=settings.ffmpeg_max_rss_mb, max_output_mb=settings.max_output_mb)
