"""Task management: GetTaskList, DelTaskByTaskID, TopTaskByTaskID, GetTaskMetaInfo and the
console list/detail (spec §2.9–§2.13, §2.22, §2.23)."""

from __future__ import annotations

from typing import Any

from openkvs.errors import ApiError, invalid
from openkvs.model import TaskRecord, TaskStatus, User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.ids import cst_text
from openkvs.service.ranges import day_range, page
from openkvs.service.tasks import find_task, task_info
from openkvs.store.tasks import Outcome, TaskFilter

_LISTABLE = {
    s.value: s for s in (TaskStatus.INIT, TaskStatus.EXEC, TaskStatus.SUCC, TaskStatus.FAIL)
}


def _filter(services: Services, params: p.Params, **extra: Any) -> tuple[Any, TaskFilter]:
    days = day_range(params, services.clock())
    status = None
    if p.given(params, "TaskStatus"):
        raw = str(params["TaskStatus"])
        if raw not in _LISTABLE:
            raise invalid("TaskStatus", "must be init, exec, succ or fail")
        status = _LISTABLE[raw]
    error_code = None
    if p.given(params, "ErrorCode"):
        error_code = p.to_int("ErrorCode", params["ErrorCode"])
    return days, TaskFilter(days.since, days.until, status, error_code, **extra)


def get_task_list(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    days, f = _filter(services, params)
    marker, limit = page(params)
    total, found = services.tasks.page(user.id, f, marker, limit)
    return {
        "StartDate": days.start_date,
        "EndDate": days.end_date,
        "Marker": marker,
        "Count": len(found),
        "Total": total,
        "TaskInfo": [task_info(t) for t in found],
    }


def _change(services: Services, user: User, params: p.Params, change: Any, refused: str) -> Outcome:
    """Apply ``change(task_id, user_id, now)`` to the caller's task: 1200 when it is gone,
    1205 (with ``refused``) when its state does not allow the change."""
    task = find_task(services, user, params)
    outcome: Outcome = change(task.task_id, user.id, services.clock())
    if outcome is Outcome.MISSING:
        raise ApiError(1200, f"task {task.task_id} does not exist")
    if outcome is Outcome.FINISHED:
        raise ApiError(1205, f"task {task.task_id} {refused}")
    return outcome


def del_task(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    if (
        _change(services, user, params, services.tasks.delete, "has already finished")
        is Outcome.CANCELLING
    ):
        services.task_cancelled(str(params["TaskID"]))
    return {}


def top_task(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    _change(services, user, params, services.tasks.top, "is no longer queued")
    return {}


def _meta_items(task: TaskRecord) -> list[dict[str, Any]]:
    if task.task_type != "avinfo" or task.status is not TaskStatus.SUCC or not task.result:
        return []
    return [
        {
            "TaskID": task.task_id,
            "MetaInfo": item.get("metainfo", ""),
            "CreateTime": cst_text(task.created_at),
        }
        for item in task.result[:1]
    ]


def get_task_meta_info(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    if p.given(params, "TaskID"):
        meta = _meta_items(find_task(services, user, params))
        return {"Marker": 0, "Count": len(meta), "Total": len(meta), "MetaList": meta}
    days, f = _filter(
        services,
        {k: v for k, v in params.items() if k not in ("TaskStatus", "ErrorCode")},
        task_type="avinfo",
    )
    f = TaskFilter(f.since, f.until, TaskStatus.SUCC, None, task_type="avinfo")
    marker, limit = page(params)
    total, found = services.tasks.page(user.id, f, marker, limit)
    meta = [item for task in found for item in _meta_items(task)]
    return {
        "StartDate": days.start_date,
        "EndDate": days.end_date,
        "Marker": marker,
        "Count": len(meta),
        "Total": total,
        "MetaList": meta,
    }
