"""The ``flow`` executor: a CreateFlowTask task's items, one after another (spec §4.4).

Each FlowData item is an ordinary task of its own kind (avtrans, a preset chain, avsnapshot,
avsample, avinfo...), run by that kind's executor as a job of its own: its sources located
(a source deleted since CreateFlowTask fails the item with 2041), its own scratch folder
inside the flow's, the flow's deadline and cancellation. Items run in ``Order``; the first
failing item stops the flow: the items after it are skipped, reported with ``Status`` 4 and
``Errnum`` 2001. The flow then fails with that item's code (its ``ErrorCode``), and keeps
every item's result, which the flow callback (``notify/flows.py``) and GetTaskByTaskID
show.

Progress: item *k* of *n* reports within ``k/n`` … ``(k+1)/n`` of ``transcoding``; only the
last item's upload is reported as ``uploading``. The task's ``Command`` lists what each
item ran, one ``# item <n>`` line before each.

A flow is one task in the queue: a worker that dies while running one makes it run again
from its first item (items that had finished write their outputs again).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from openkvs import kinds
from openkvs.config import Settings
from openkvs.errors import TASK_MESSAGES, TaskError
from openkvs.storage.base import ObjectStorage
from openkvs.worker.executor import Executor
from openkvs.worker.job import Job, JobMaker, Phase, Reporter

log = logging.getLogger(__name__)

#: The code of the items a failure skipped.
SKIPPED = 2001


class FlowExecutor:
    def __init__(self, settings: Settings, storage: ObjectStorage) -> None:
        self._settings = settings
        self._storage = storage
        self._executors: dict[str, Executor] = {}

    def _executor(self, kind: kinds.Kind) -> Executor:
        if kind.name not in self._executors:
            self._executors[kind.name] = kind.executor_class()(self._settings, self._storage)
        return self._executors[kind.name]

    def run(self, job: Job) -> list[dict[str, Any]]:
        entries = list(job.task.request.get("FlowData") or [])
        results: list[dict[str, Any]] = []
        commands: list[str] = []
        failure: TaskError | None = None
        failed_at = 0
        for position, entry in enumerate(entries):
            if failure is not None:
                results.append(_result(entry, SKIPPED))
                continue
            commands.append(f"# item {entry['Order']}")
            record = _Recorder(job, commands)
            report = item_share(job.report, position, len(entries))
            try:
                outputs = self._run_item(job, entry, report, record)
            except TaskError as exc:
                failure, failed_at = exc, entry["Order"]
                results.append(_result(entry, exc.code, command=record.last))
                log.warning(
                    "flow_item_failed",
                    extra={
                        "task_id": job.task.task_id,
                        "order": entry["Order"],
                        "errnum": exc.code,
                    },
                )
            except Exception as exc:  # as the pool does for a whole task
                log.exception("flow_item_crashed", extra={"task_id": job.task.task_id})
                failure, failed_at = TaskError(2001, str(exc)), entry["Order"]
                results.append(_result(entry, 2001, command=record.last))
            else:
                results.append(_result(entry, 0, outputs, command=record.last))
        if failure is not None:
            raise TaskError(
                failure.code,
                f"flow item {failed_at}: {failure.detail}",
                log=failure.log,
                result=results,
            )
        return results

    def _run_item(
        self, job: Job, entry: dict[str, Any], report: Reporter, record: _Recorder
    ) -> list[dict[str, Any]]:
        kind = kinds.kind(entry["Type"])
        task = dataclasses.replace(
            job.task, task_type=kind.name, preset=entry["Preset"], request=entry["request"]
        )
        maker = JobMaker(job.storage, job.scratch, job.remaining())
        with maker.job(task, kind, job.cancel, report=report, record_command=record) as item:
            return self._executor(kind).run(item)


class _Recorder:
    """An item's ``record_command``: keeps its last command, records the flow's list."""

    def __init__(self, job: Job, commands: list[str]) -> None:
        self._job = job
        self._commands = commands
        self._at = len(commands)
        self.last = ""

    def __call__(self, command: str) -> None:
        self.last = command
        del self._commands[self._at :]
        self._commands.append(command)
        self._job.record_command("\n".join(self._commands))


def item_share(report: Reporter, position: int, count: int) -> Reporter:
    """``report`` for item ``position`` of ``count``: its own progress (0-100, both phases)
    becomes its share of the flow's ``transcoding``; the last item's upload is
    ``uploading``."""

    def reported(phase: Phase, percent: float) -> None:
        if phase is Phase.UPLOADING and position == count - 1:
            report(phase, percent)
            return
        done = 1.0 if phase is Phase.UPLOADING else max(0.0, min(100.0, percent)) / 100.0
        report(Phase.TRANSCODING, 100.0 * (position + done) / count)

    return reported


def _result(
    entry: dict[str, Any],
    code: int,
    outputs: list[dict[str, Any]] | None = None,
    *,
    command: str = "",
) -> dict[str, Any]:
    """One item's stored result: the flow callback's element (``notify/flows.py`` makes
    ``OutInfo`` from ``items``), with ``PresetType`` and ``Command`` for GetTaskByTaskID."""
    request = entry["request"]
    kind = kinds.kind(entry["Type"])
    preset = request.get("preset")
    return {
        "Order": entry["Order"],
        "Type": kind.name,
        "Status": 3 if code == 0 else 4,
        "Errnum": code,
        "Errmsg": "" if code == 0 else TASK_MESSAGES[code],
        "Bucket": request.get("DstBucket", "") if kind.names_bucket else "",
        "items": outputs or [],
        "PresetType": str(preset.get("type", "")) if isinstance(preset, dict) else "",
        "Command": command,
    }
