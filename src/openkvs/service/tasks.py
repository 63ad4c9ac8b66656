"""Reading tasks: GetTaskByTaskID (spec §2.12)."""

from __future__ import annotations

from typing import Any

from openkvs import kinds
from openkvs.errors import ApiError
from openkvs.model import TaskRecord, TaskStatus, User
from openkvs.parts import MAX_PARTS, part_task_id
from openkvs.service import params as p
from openkvs.service.chains import chain_info
from openkvs.service.context import Services
from openkvs.service.flows import flow_items
from openkvs.service.ids import cst_text, looks_like_task_id
from openkvs.store.runs import TaskRun

#: Task types whose tasks may be split into parts.
SPLIT_TYPES = frozenset({"avtrans"})


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
    """One task's ``TaskInfo`` with what its run did (``Command``, ``ProgressStatus``) and,
    for a task made in parts (split-and-stitch), ``Parts``: each part's ``Index``,
    ``Status`` and ``Progress``; for a succeeded task with ExtParam ``loudnorm``,
    ``Loudness`` from its result item; for a preset chain, ``Chain``; for a flow,
    ``FlowItems`` (our additions)."""
    run = services.runs.get(task.task_id) or TaskRun(task.task_id, "", "", "")
    info = task_info(task, run)
    loudness = next((i["loudness"] for i in task.result or [] if "loudness" in i), None)
    if loudness is not None:
        info["Loudness"] = loudness  # ExtParam loudnorm: {"Input": {...}, "Output": {...}}
    parts = task_parts(services, task)
    if parts:
        info["Parts"] = parts
    chain = chain_info(task.request)
    if chain:
        info["Chain"] = chain  # a preset chain "A|B": each stage's preset (service/chains.py)
    if task.task_type == kinds.FLOW:
        info["FlowItems"] = flow_items(task)  # each FlowData item (service/flows.py)
    return info


def task_parts(services: Services, task: TaskRecord) -> list[dict[str, Any]]:
    """The parts of a split task, in order ([] for any other task). Their TaskIDs follow
    from the task's (``parts.part_task_id``): they are looked up one by one until one is
    missing (a task that was never split costs one lookup)."""
    if task.task_type not in SPLIT_TYPES or task.status is TaskStatus.INIT:
        return []
    found = []
    for index in range(MAX_PARTS):
        part = services.tasks.get(part_task_id(task.task_id, index))
        if part is None or part.parent_id != task.task_id:
            break
        done = part.status is TaskStatus.SUCC
        found.append(
            {
                "Index": index,
                "Status": part.status.value,
                "Progress": 100 if done else part.progress,
            }
        )
    return found


def get_task_by_task_id(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    return {"TaskInfo": task_detail(services, find_task(services, user, params))}
