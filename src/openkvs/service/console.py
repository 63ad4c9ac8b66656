"""The console actions (spec §2.21–§2.23): CreateTask under another name, and its list."""

from __future__ import annotations

from typing import Any

from openkvs.errors import ApiError, invalid
from openkvs.model import User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.ranges import MAX_AGE_DAYS, MAX_SPAN_DAYS, page
from openkvs.service.task_create import create_task
from openkvs.service.tasks import find_task, task_detail, task_info
from openkvs.store.tasks import TaskFilter

ACTION = "FetchObjectMediaProcess"


def fetch_object_media_process(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    task_id = create_task(services, user, params, action=ACTION)
    return {"TaskID": task_id, "ProcessTaskId": task_id}


def list_fetch_object_media_process(
    services: Services, user: User, params: p.Params
) -> dict[str, Any]:
    """Tasks created by FetchObjectMediaProcess; ``Marker`` is an opaque string cursor
    (empty: the first page; the answer's ``Marker`` is empty after the last page)."""
    now = services.clock()
    end = p.to_int("EndUnixTime", params["EndUnixTime"]) if p.given(params, "EndUnixTime") else 0
    start = (
        p.to_int("StartUnixTime", params["StartUnixTime"])
        if p.given(params, "StartUnixTime")
        else 0
    )
    end = end or int(now)
    start = start or end - MAX_SPAN_DAYS * 86400
    if end <= start:
        raise invalid("EndUnixTime", "must be after StartUnixTime")
    if end - start > MAX_SPAN_DAYS * 86400 or start < now - MAX_AGE_DAYS * 86400:
        raise ApiError(1019, f"at most {MAX_SPAN_DAYS} days within the last {MAX_AGE_DAYS}")
    cursor = p.optional_str(params, "Marker")
    if cursor and not cursor.isdigit():
        raise invalid("Marker", "is not a cursor this service returned")
    _, limit = page({"Limit": params.get("Limit", "")})
    offset = p.to_int("Marker", cursor) if cursor else 0
    total, found = services.tasks.page(
        user.id, TaskFilter(float(start), float(end) + 1, actions=(ACTION,)), offset, limit
    )
    following = offset + len(found)
    return {
        "Marker": str(following) if following < total else "",
        "Count": len(found),
        "Total": total,
        "TaskInfo": [task_info(t) for t in found],
    }


def get_fetch_object_media_process(
    services: Services, user: User, params: p.Params
) -> dict[str, Any]:
    return {"TaskInfo": task_detail(services, find_task(services, user, params, "ProcessTaskId"))}
