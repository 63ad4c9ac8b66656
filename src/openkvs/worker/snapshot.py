"""The ``avsnapshot`` executor (spec §3.3): one image at ``ss`` written to DstObjectKey.

Also the steps every image executor shares (``worker/sample.py``, ``worker/cover.py``):
:func:`source_video` probes the source.

Failures: source gone since CreateTask → 2041 (when the job is made); destination bucket
gone or a failed write → 2033; no video stream → 3155; ``ss`` at or past the end of the
video → 2337; a size beyond 8192 pixels → 2315; ffmpeg's own failure → its mapped code
(``engine.ffmpeg.error_from_stderr``, with ffmpeg's stderr tail as the task's log);
cancelled → 2005; over the task's time → 2038.
"""

from __future__ import annotations

from typing import Any

from openkvs.config import Settings
from openkvs.engine import sandbox
from openkvs.engine.probe import probe
from openkvs.engine.snapshot import EXTENSIONS, VideoFacts, output_size, take_snapshot, video_facts
from openkvs.presets.codec import load
from openkvs.presets.image import ImageOptions, SnapshotSpec
from openkvs.storage.base import ObjectStorage
from openkvs.worker.job import Job, Phase, ffmpeg_limits
from openkvs.worker.outputs import OutputFile, require_bucket, upload

#: ffprobe reads headers and a few packets; a minute covers slow remote storage.
PROBE_TIMEOUT = 60.0


def source_video(job: Job) -> VideoFacts:
    """The video facts of the job's source (ffprobe through the sandbox)."""
    found = probe(job.source.location, min(PROBE_TIMEOUT, job.remaining()), cancel=job.cancel)
    return video_facts(found)


class SnapshotExecutor:
    """``avsnapshot`` tasks: one callback item ``{"dstpath": DstObjectKey}``.

    The image is the frame on screen at ExtParam ``ss`` (else the preset's ``ss``, else 0),
    upright, sized by ``width``/``height``/``shortSide``, in format ``f`` whatever the key's
    extension says (its Content-Type is the format's). Rules: ``docs/images.md``.
    """

    def __init__(self, settings: Settings, storage: ObjectStorage) -> None:
        self._threads = settings.ffmpeg_threads
        self._limits = ffmpeg_limits(settings)

    def run(self, job: Job) -> list[dict[str, Any]]:
        spec: SnapshotSpec = job.spec
        options = load(ImageOptions, job.options)
        destination = job.destination
        require_bucket(job.storage, destination.bucket)
        job.report(Phase.TRANSCODING, 0)
        facts = source_video(job)
        size = output_size(spec.size, facts)
        output = job.scratch / f"snapshot.{EXTENSIONS[spec.f]}"
        with sandbox.source_input(job.source.location) as opened:
            command = take_snapshot(
                opened,
                facts,
                at=options.start(spec),
                size=size,
                fmt=spec.f,
                output=output,
                deadline=job.deadline,
                cancel=job.cancel,
                threads=self._threads,
                limits=self._limits,
                record=job.record_command,
            )
        job.report(Phase.TRANSCODING, 100)
        upload(job, [OutputFile(output, destination.key, command.content_type)])
        return [{"dstpath": destination.key}]
