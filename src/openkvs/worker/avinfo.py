"""The ``avinfo`` executor (spec §3.6): ffprobe's description of the first source."""

from __future__ import annotations

from typing import Any

from openkvs.config import Settings
from openkvs.engine.metainfo import metainfo_text, require_av_streams
from openkvs.engine.probe import probe
from openkvs.storage.base import ObjectStorage
from openkvs.worker.job import Job

#: ffprobe reads headers and a few packets; a minute covers slow remote storage.
PROBE_TIMEOUT = 60.0


class AvinfoExecutor:
    """``avinfo`` tasks: one callback item ``{"dstpath": "", "metainfo": <JSON text>}``.

    Nothing is written to the bucket; the item is what the callback carries (§5.4 d) and
    what GetTaskMetaInfo returns. Failures: source gone since CreateTask → 2041 (when the
    job is made); ffprobe's own failure → its mapped code (``engine.ffmpeg.error_from_stderr``),
    over ``timeout`` → 3187, cancelled → 2005; no audio or video stream → 2058.
    """

    def __init__(
        self, settings: Settings, storage: ObjectStorage, *, timeout: float = PROBE_TIMEOUT
    ) -> None:
        self._timeout = timeout

    def run(self, job: Job) -> list[dict[str, Any]]:
        source = job.source
        found = probe(source.location, min(self._timeout, job.remaining()), cancel=job.cancel)
        require_av_streams(found)
        text = metainfo_text(found, source=f"/{source.bucket}/{source.key}")
        return [{"dstpath": "", "metainfo": text}]
