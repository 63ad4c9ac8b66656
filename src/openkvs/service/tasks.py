"""Reading tasks: GetTaskByTaskID (spec §2.12)."""

from __future__ import annotations

from typing import Any

from openkvs.errors import ApiError
from openkvs.model import TaskRecord, TaskStatus, User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.ids import cst_text, looks_like_task_id
from openkvs.store.runs import TaskRun


def task_info(task: TaskRecord, run: TaskRun | None = None) -> dict[str, Any]:
    """The ``TaskInfo`` object of GetTaskByTaskID (with ``run``: also the phase and the
    command that ran, our additions)."""
    req = task.request
    finished = task.status in (TaskStatus.SUCC, TaskStatus.FAIL)
    info: dict[str, Any] = {
        "TaskID": task.task_id,
        "IsFlow": 1 if task.action == "CreateFlowTask" else 0,
        "Preset": task.preset,
        "SrcInfo": req.get("SrcInfo", []),
        "DstBucket": req.get("DstBucket", ""),
        "DstDir": req.get("DstDir", ""),
        "DstObjectKey": req.get("DstObjectKey", ""),
        "DstAcl": req.get("DstAcl", ""),
        "IsTop": "1" if task.is_top else "0",
        "CbUrl": req.get("CbUrl", ""),
        "CbMethod": req.get("CbMethod", ""),
        "ExtParam": req.get("ExtParam", ""),
        "TaskStatus": task.status.value,
        "ErrorCode": str(task.error_code if finished else 0),
        "ErrorMsg": task.error_msg if task.status is TaskStatus.FAIL else "",
        "CreateTime": cst_text(task.created_at),
        "Type": task.task_type,
        "Pipeline": task.pipeline,
        "Progress": task.progress,
        "UpdateTime": cst_text(task.updated_at),
    }
    if run is not None:
        info["ProgressStatus"] = run.phase if task.status is TaskStatus.EXEC else ""
        info["Command"] = run.command
    return info


def find_task(services: Services, user: User, params: p.Params, name: str = "TaskID") -> TaskRecord:
    """The caller's task named by ``params[name]``: 1000 when missing, 1009 when malformed,
    1200 when it does not exist (another user's task does not exist for this caller)."""
    task_id = p.required_str(params, name)
    if not looks_like_task_id(task_id):
        raise ApiError(1009, f"{name} {task_id!r} is not a 40-character task id")
    task = services.tasks.get(task_id, user.id)
    if task is None:
        raise ApiError(1200, f"task {task_id} does not exist")
    return task


def task_detail(services: Services, task: TaskRecord) -> dict[str, Any]:
    """One task's ``TaskInfo`` with what its run did (``Command``, ``ProgressStatus``)."""
    run = services.runs.get(task.task_id) or TaskRun(task.task_id, "", "", "")
    return task_info(task, run)


def get_task_by_task_id(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    return {"TaskInfo": task_detail(services, find_task(services, user, params))}
