"""Jobs for tests of executors: a real :class:`JobMaker` over a given storage."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from openkvs import kinds
from openkvs.model import TaskRecord
from openkvs.storage.base import ObjectStorage
from openkvs.worker.job import Job, JobMaker, Phase


class Reports:
    """Collects what an executor reported: ``(phase, percent)`` and commands."""

    def __init__(self) -> None:
        self.progress: list[tuple[Phase, float]] = []
        self.commands: list[str] = []

    def report(self, phase: Phase, percent: float) -> None:
        self.progress.append((phase, percent))

    def record(self, command: str) -> None:
        self.commands.append(command)


@contextlib.contextmanager
def job_for(
    task: TaskRecord,
    storage: ObjectStorage,
    scratch_dir: Path,
    *,
    cancel: threading.Event | None = None,
    timeout: float = 600.0,
    reports: Reports | None = None,
) -> Iterator[Job]:
    """The job the pool would make for ``task`` (scratch under ``scratch_dir``)."""
    reports = reports or Reports()
    maker = JobMaker(storage, scratch_dir, timeout)
    with maker.job(
        task,
        kinds.kind(task.task_type),
        cancel or threading.Event(),
        report=reports.report,
        record_command=reports.record,
    ) as job:
        yield job
