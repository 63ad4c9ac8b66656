"""The ``audiowave`` executor (CreateWaveTask): waveform JSON written to DstObjectKey."""

from __future__ import annotations

import json
from typing import Any

from openkvs.config import Settings
from openkvs.engine.wave import WaveSpec, extract_wave
from openkvs.service.waves import WaveOptions
from openkvs.storage.base import ObjectStorage
from openkvs.worker.job import Job, Phase
from openkvs.worker.outputs import put_bytes


class WaveExecutor:
    """``audiowave`` tasks (CreateWaveTask): waveform JSON written to DstObjectKey."""

    def __init__(self, settings: Settings, storage: ObjectStorage) -> None:
        self._storage = storage
        self._parallel = settings.wave_parallel or settings.workers_cores()

    def run(self, job: Job) -> list[dict[str, Any]]:
        options = WaveOptions.from_json(job.task.request["wave"])
        job.report(Phase.TRANSCODING, 0)
        doc = extract_wave(
            job.source.location,
            WaveSpec(
                points=options.points,
                layout=options.layout,
                ss=options.ss,
                duration=options.duration,
            ),
            parallel=self._parallel,
            cancel=job.cancel,
            timeout=job.remaining(),
            progress=lambda percent: job.report(Phase.TRANSCODING, percent),
            on_command=job.record_command,
        )
        job.report(Phase.TRANSCODING, 100)
        job.report(Phase.UPLOADING, 0)
        data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        destination = job.destination
        put_bytes(job, destination.key, data, "application/json")  # retried, 2033
        job.report(Phase.UPLOADING, 100)
        return [{"dstpath": destination.key}]
