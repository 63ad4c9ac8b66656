"""The ``audiowave`` executor (CreateWaveTask): waveform JSON written to DstObjectKey."""

from __future__ import annotations

import json
import threading
from typing import Any

from openkvs.engine.wave import WaveSpec, extract_wave
from openkvs.errors import TaskError
from openkvs.model import TaskRecord
from openkvs.service.waves import WaveOptions
from openkvs.storage.base import ObjectStorage, StorageError


class WaveExecutor:
    """``audiowave`` tasks (CreateWaveTask): waveform JSON written to DstObjectKey."""

    def __init__(self, storage: ObjectStorage, parallel: int, timeout: float) -> None:
        self._storage = storage
        self._parallel = parallel
        self._timeout = timeout  # seconds of decoding before the task fails with 2038

    def run(self, task: TaskRecord, cancel: threading.Event) -> list[dict[str, Any]]:
        req = task.request
        options = WaveOptions.from_json(req["wave"])
        try:
            source = self._storage.source_for(req["source"]["bucket"], req["source"]["key"])
        except StorageError as exc:
            raise TaskError(2041, str(exc)) from exc
        doc = extract_wave(
            source,
            WaveSpec(
                points=options.points,
                layout=options.layout,
                ss=options.ss,
                duration=options.duration,
            ),
            parallel=self._parallel,
            cancel=cancel,
            timeout=self._timeout,
        )
        data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        try:
            self._storage.put_bytes(
                req["DstBucket"],
                req["DstObjectKey"],
                data,
                acl=req["DstAcl"],
                content_type="application/json",
            )
        except StorageError as exc:
            raise TaskError(2033, str(exc)) from exc
        return [{"dstpath": req["DstObjectKey"]}]
