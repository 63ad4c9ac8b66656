"""The ``avsample`` executor (spec §3.3): an image every ``interval`` seconds into DstDir,
optionally sprite sheets and a WebVTT thumbnail track.

Keys (DstDir normalised to end with exactly one ``/``: ``out/thumbs`` and ``out/thumbs/``
both give ``out/thumbs/``): images ``<DstDir><n>.<f>``, sheets ``<DstDir>sprite/<n>.<f>``,
track ``<DstDir>sprite/thumbnails.vtt``, n from 0. Callback: one item ``{"dstpath"}`` per
image in time order (``snapshotNum`` is their count), the first one also carrying
``thumbnailsinfo`` when sheets were made. Rules: ``engine/sample.py``, ``engine/sprite.py``
and ``docs/images.md``; failures as in ``worker/snapshot.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from openkvs.config import Settings
from openkvs.engine import sandbox
from openkvs.engine.sample import SPRITE_DIR, TRACK_NAME, SamplePlan, plan_sample
from openkvs.engine.snapshot import command_line
from openkvs.engine.snapshot import run as run_ffmpeg
from openkvs.engine.sprite import thumbnail_track, thumbnails_info
from openkvs.errors import TaskError
from openkvs.presets.codec import load
from openkvs.presets.image import ImageOptions, SampleSpec
from openkvs.storage.base import ObjectStorage
from openkvs.storage.mime import content_type_for
from openkvs.worker.job import Job, Phase, ffmpeg_limits
from openkvs.worker.outputs import OutputFile, require_bucket, upload
from openkvs.worker.snapshot import source_video

log = logging.getLogger(__name__)


def dir_prefix(dst_dir: str) -> str:
    """DstDir as a key prefix: trailing slashes replaced by exactly one."""
    return dst_dir.rstrip("/") + "/"


class SampleExecutor:
    """``avsample`` tasks (module docstring)."""

    def __init__(self, settings: Settings, storage: ObjectStorage) -> None:
        self._threads = settings.ffmpeg_threads
        self._limits = ffmpeg_limits(settings)

    def run(self, job: Job) -> list[dict[str, Any]]:
        spec: SampleSpec = job.spec
        options = load(ImageOptions, job.options)
        require_bucket(job.storage, job.destination.bucket)
        job.report(Phase.TRANSCODING, 0)
        facts = source_video(job)
        with sandbox.source_input(job.source.location) as opened:
            plan = plan_sample(
                spec, options, facts, source_args=opened.args(), scratch=job.scratch,
                threads=self._threads,
            )  # fmt: skip
            plan.prepare()
            job.record_command(command_line([plan.args], opened))
            run_ffmpeg(
                plan.args,
                opened,
                deadline=job.deadline,
                cancel=job.cancel,
                duration=plan.media_seconds,
                on_progress=lambda percent: job.report(Phase.TRANSCODING, percent),
                folder=job.scratch,
                limits=self._limits,
            )
        job.report(Phase.TRANSCODING, 100)
        return self._upload(job, plan)

    def _upload(self, job: Job, plan: SamplePlan) -> list[dict[str, Any]]:
        images = plan.written_images()
        if not images:
            if plan.start > 0:
                raise TaskError(2337, f"no frame at or after {plan.start:.3f} s was decoded")
            raise TaskError(2301, "no frame could be decoded")
        if plan.count and len(images) != plan.count:
            log.info(
                "sample_count_short",
                extra={"task_id": job.task.task_id, "planned": plan.count, "made": len(images)},
            )
        prefix = dir_prefix(job.destination.dir)
        ext = plan.extension
        content_type = content_type_for(f"image.{ext}")
        files = [
            OutputFile(path, f"{prefix}{n}.{ext}", content_type) for n, path in enumerate(images)
        ]
        items: list[dict[str, Any]] = [{"dstpath": output.key} for output in files]
        if plan.layout is not None:
            sheets = plan.written_sheets()[: plan.layout.sheets(len(images))]
            if len(sheets) < plan.layout.sheets(len(images)):
                raise TaskError(
                    2304, f"{len(sheets)} sprite sheets written for {len(images)} images"
                )
            sheet_files = [
                OutputFile(path, f"{prefix}{SPRITE_DIR}/{n}.{ext}", content_type)
                for n, path in enumerate(sheets)
            ]
            track = plan.sprites / TRACK_NAME
            track.write_text(
                thumbnail_track(
                    plan.layout,
                    [path.name for path in sheets],
                    images=len(images),
                    start=plan.start,
                    interval=plan.interval,
                    end=plan.end,
                ),
                encoding="utf-8",
            )
            track_key = f"{prefix}{SPRITE_DIR}/{TRACK_NAME}"
            files += [*sheet_files, OutputFile(track, track_key, content_type_for(TRACK_NAME))]
            items[0]["thumbnailsinfo"] = thumbnails_info(
                [(output.key, output.path.stat().st_size) for output in sheet_files]
            )
        upload(job, files)
        return items
