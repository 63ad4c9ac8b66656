"""The ``aiproduction`` executor (spec §3.7): ``smart_cover``, one cover image at
DstObjectKey (the algorithm is ``engine/cover.py``'s; failures as in ``worker/snapshot.py``)."""

from __future__ import annotations

import logging
from typing import Any

from openkvs.config import Settings
from openkvs.engine import sandbox
from openkvs.engine.cover import cover_format, pick, plan_analysis
from openkvs.engine.snapshot import EXTENSIONS, command_line, output_size, take_snapshot
from openkvs.engine.snapshot import run as run_ffmpeg
from openkvs.presets.image import ImageSize
from openkvs.storage.base import ObjectStorage
from openkvs.worker.job import Job, Phase, ffmpeg_limits
from openkvs.worker.outputs import OutputFile, require_bucket, upload
from openkvs.worker.snapshot import source_video

log = logging.getLogger(__name__)

#: Share of the media work's progress that the candidates take (the rest: the cover itself).
ANALYSIS_SHARE = 90.0


class CoverExecutor:
    """``aiproduction`` tasks: one callback item ``{"dstpath": DstObjectKey}``."""

    def __init__(self, settings: Settings, storage: ObjectStorage) -> None:
        self._threads = settings.ffmpeg_threads
        self._limits = ffmpeg_limits(settings)

    def run(self, job: Job) -> list[dict[str, Any]]:
        destination = job.destination
        require_bucket(job.storage, destination.bucket)
        job.report(Phase.TRANSCODING, 0)
        facts = source_video(job)
        fmt = cover_format(destination.key)
        size = output_size(ImageSize(), facts)
        work = job.scratch / "candidates"
        work.mkdir()
        with sandbox.source_input(job.source.location) as opened:
            plan = plan_analysis(
                facts, source_args=opened.args(), scratch=work, threads=self._threads
            )
            analysis = command_line(plan.commands, opened)
            job.record_command(analysis)
            count = len(plan.commands)
            for number, step in enumerate(plan.commands):

                def part(percent: float, number: int = number) -> None:
                    done = (number + percent / 100.0) / count
                    job.report(Phase.TRANSCODING, ANALYSIS_SHARE * done)

                run_ffmpeg(
                    step,
                    opened,
                    deadline=job.deadline,
                    cancel=job.cancel,
                    duration=facts.duration if count == 1 else 0.0,
                    on_progress=part,
                    folder=job.scratch,
                    limits=self._limits,
                )
            at, choice = pick(plan)
            log.info(
                "cover_chosen",
                extra={
                    "task_id": job.task.task_id,
                    "at": round(at, 3),
                    "fallback": choice.fallback,
                    "rejected": choice.rejected,
                },
            )
            output = job.scratch / f"cover.{EXTENSIONS[fmt]}"
            command = take_snapshot(
                opened,
                facts,
                at=at,
                size=size,
                fmt=fmt,
                output=output,
                deadline=job.deadline,
                cancel=job.cancel,
                threads=self._threads,
                limits=self._limits,
                record=lambda line: job.record_command(f"{analysis} && {line}"),
            )
        job.report(Phase.TRANSCODING, 100)
        upload(job, [OutputFile(output, destination.key, command.content_type)])
        return [{"dstpath": destination.key}]
