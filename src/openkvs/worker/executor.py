"""What the pool runs: one executor per task kind (``openkvs.kinds``).

An executor is made with the process's settings and object storage
(``Executor(settings, storage)``), and runs one :class:`~openkvs.worker.job.Job` at a time
per call: it reads the job's sources, runs the engine, writes its outputs, reports progress
(``job.report``) and the command it ran (``job.record_command``), and returns the callback
``items`` (spec §5.3). It raises :class:`~openkvs.errors.TaskError` for every failure a
client should see (with ``log`` set to the end of ffmpeg's stderr where there is one); the
pool maps anything else to 2001.
"""

from __future__ import annotations

from typing import Any, Protocol

from openkvs.worker.job import Job


class Executor(Protocol):
    def run(self, job: Job) -> list[dict[str, Any]]: ...
