"""The ``avinfo`` executor (spec §3.6): ffprobe's description of the first source."""

from __future__ import annotations

import threading
from typing import Any

from openkvs.engine.metainfo import metainfo_text, require_av_streams
from openkvs.engine.probe import probe
from openkvs.errors import TaskError
from openkvs.model import TaskRecord
from openkvs.storage.base import ObjectStorage, StorageError

#: ffprobe reads headers and a few packets; a minute covers slow remote storage.
PROBE_TIMEOUT = 60.0


class AvinfoExecutor:
    """``avinfo`` tasks: one callback item ``{"dstpath": "", "metainfo": <JSON text>}``.

    Nothing is written to the bucket; the item is what the callback carries (§5.4 d) and
    what GetTaskMetaInfo returns. Failures: source gone since CreateTask → 2041; ffprobe's
    own failure → its mapped code (``engine.ffmpeg.error_from_stderr``), over
    ``timeout`` → 3187, cancelled → 2005; no audio or video stream → 2058.
    """

    def __init__(self, storage: ObjectStorage, *, timeout: float = PROBE_TIMEOUT) -> None:
        self._storage = storage
        self._timeout = timeout

    def run(self, task: TaskRecord, cancel: threading.Event) -> list[dict[str, Any]]:
        bucket, key = task.request["source"]["bucket"], task.request["source"]["key"]
        try:
            source = self._storage.source_for(bucket, key)
        except StorageError as exc:
            raise TaskError(2041, str(exc)) from exc
        found = probe(source, self._timeout, cancel=cancel)
        require_av_streams(found)
        return [{"dstpath": "", "metainfo": metainfo_text(found, source=f"/{bucket}/{key}")}]
