"""Running a preset chain ``"A|B"`` of two transcodes (``service/chains.py``).

Stage A transcodes the task's source into a folder of the job's scratch (never uploaded);
stage B is then the task's own transcode (its spec and options, DstObjectKey, DstAcl) with
that file as its source. Progress: A is the first half of ``transcoding``, B the second
half, then B's upload. The task's ``Command`` shows both stages' commands, A's first,
joined by ``&&``. The result is B's: its callback item, its ``outMediainfo``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransSpec
from openkvs.presets.codec import load
from openkvs.worker.job import Job, Phase, Reporter, Source
from openkvs.worker.outputs import require_bucket

if TYPE_CHECKING:
    from collections.abc import Callable

    from openkvs.worker.avtrans import AvtransExecutor

#: The share of ``transcoding`` progress that stage A reports.
FIRST_SHARE = 0.5


def run_chain(executor: AvtransExecutor, job: Job) -> list[dict[str, Any]]:
    """Run both stages of ``job`` (a task whose request has ``first_stage``)."""
    request = job.task.request
    first = request["first_stage"]
    require_bucket(job.storage, job.destination.bucket, job.cancel)  # before any work
    commands = ["", ""]
    folder = job.scratch / "stage-1"
    try:
        folder.mkdir(mode=0o700)
    except OSError as exc:
        raise TaskError(2028, f"cannot make the folder of the first stage {folder}: {exc}") from exc
    stage_a = dataclasses.replace(
        job,
        spec=load(AvtransSpec, first["spec"]),
        options=dict(first["options"]),
        scratch=folder,
        report=share(job.report, 0.0, FIRST_SHARE),
        record_command=_recorder(job, commands, 0),
    )
    made = executor.produce(stage_a)
    last_task = dataclasses.replace(
        job.task, request={k: v for k, v in request.items() if k != "first_stage"}
    )
    stage_b = dataclasses.replace(
        job,
        task=last_task,
        sources=(Source(bucket="", key=made.name, location=str(made)),),
        report=share(job.report, FIRST_SHARE, 1.0 - FIRST_SHARE),
        record_command=_recorder(job, commands, 1),
    )
    return executor.run(stage_b)


def share(report: Reporter, start: float, size: float) -> Reporter:
    """``report`` for a part of the work: its ``transcoding`` 0-100 becomes
    ``start``-``start + size`` of the whole (fractions); ``uploading`` passes through."""

    def reported(phase: Phase, percent: float) -> None:
        if phase is Phase.TRANSCODING:
            percent = 100.0 * (start + size * max(0.0, min(100.0, percent)) / 100.0)
        report(phase, percent)

    return reported


def _recorder(job: Job, commands: list[str], stage: int) -> Callable[[str], None]:
    def record(command: str) -> None:
        commands[stage] = command
        job.record_command(" && ".join(c for c in commands if c))

    return record
