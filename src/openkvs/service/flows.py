"""CreateFlowTask (spec §2.7): the FlowData items, one TaskID, run one after another.

The call is refused, and nothing queued, when ``FlowData`` is missing or empty (1000: the
Python SDK's sample sends a CreateTask body here), not an array or holding more than
:data:`MAX_ITEMS` items or an item that is not an object (1001), or when an item fails a
CreateTask check: items are checked in order by CreateTask's own rules
(:func:`~openkvs.service.task_create.prepare_task`), and the first failing item decides the
error, whose message starts with ``FlowData[<n>]``.

An item takes ``Preset`` (a chain ``A|B`` too), ``SrcInfo``, ``DstBucket``,
``DstObjectKey``, ``DstDir``, ``DstAcl`` and ``ExtParam``; ``Pipeline``, ``IsTop``,
``CbUrl`` and ``CbMethod`` belong to the flow (an item's own are ignored). An item's
ExtParam ``ClientToken`` does not deduplicate (a flow has no ExtParam of its own), and its
``Callback`` (progress callbacks) is not used: a flow sends one callback, at the end.

The flow is one task of type ``flow`` (GetTaskList, statistics of calls); its ``Preset`` is
its first item's. It stores each item's checked request (``FlowData``), run by
``worker/flow.py``.
"""

from __future__ import annotations

from typing import Any

from openkvs import kinds
from openkvs.errors import TASK_MESSAGES, ApiError
from openkvs.model import TaskRecord, User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.submission import queue_task, read_submission
from openkvs.service.task_create import prepare_task

#: The most items one flow may hold.
MAX_ITEMS = 10
#: The members of a FlowData item (the others, and the flow's own members, are ignored).
ITEM_KEYS = ("Preset", "SrcInfo", "DstBucket", "DstObjectKey", "DstDir", "DstAcl", "ExtParam")
#: The members of the flow itself.
FLOW_KEYS = ("Pipeline", "IsTop", "CbUrl", "CbMethod")


def _items(params: p.Params) -> list[Any]:
    raw = params.get("FlowData")
    if raw is None or raw == "" or raw == []:
        raise ApiError(1000, f"FlowData is required: an array of 1 to {MAX_ITEMS} task objects")
    if not isinstance(raw, list):
        raise ApiError(1001, "FlowData must be an array of task objects")
    if len(raw) > MAX_ITEMS:
        raise ApiError(1001, f"FlowData holds {len(raw)} items; a flow runs at most {MAX_ITEMS}")
    return raw


def create_flow_task(services: Services, user: User, params: p.Params) -> str:
    """Check every item, queue the flow; its TaskID."""
    items = _items(params)
    flow = {k: params[k] for k in FLOW_KEYS if k in params}
    submission = read_submission(services, user, flow)
    stored: list[dict[str, Any]] = []
    for order, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(1001, f"FlowData[{order}] must be a JSON object")
        own = {k: item[k] for k in ITEM_KEYS if k in item}
        if "Pipeline" in flow:
            own["Pipeline"] = flow["Pipeline"]  # its errors (1022-1024) are the flow's
        try:
            prepared = prepare_task(services, user, own)
        except ApiError as exc:
            raise ApiError(exc.code, f"FlowData[{order}]: {exc.detail}") from exc
        stored.append(
            {
                "Order": order,
                "Type": prepared.task_type,
                "Preset": prepared.preset,
                "request": {**prepared.request, **prepared.submission.request(), "CbUrl": ""},
            }
        )
    first = stored[0]["request"]
    request = {
        "FlowData": stored,
        "SrcInfo": first.get("SrcInfo", []),
        "DstBucket": "",
        "DstDir": "",
        "DstObjectKey": "",
        "spec": {"items": len(stored)},
        "options": {},
        "callback_style": services.users.callback_style(user.id).as_request(),
    }
    return queue_task(
        services,
        user,
        action="CreateFlowTask",
        task_type=kinds.FLOW,
        preset=str(stored[0]["Preset"]),
        submission=submission,
        request=request,
    )


def flow_items(task: TaskRecord) -> list[dict[str, Any]]:
    """GetTaskByTaskID's ``FlowItems``: each item's ``Order``, ``Preset``, ``Type``, where it
    reads and writes, and once the flow has ended its ``Status`` (3 succeeded, 4 failed
    or skipped), ``Errnum``, ``Errmsg`` and outputs (``Items``, as in callbacks); before the
    end ``Status`` is 0. ``Command``: what the item ran."""
    results = {r.get("Order"): r for r in task.result or [] if isinstance(r, dict)}
    ended = task.finished_at is not None or bool(results)
    shown = []
    for entry in task.request.get("FlowData") or []:
        order = entry["Order"]
        request = entry["request"]
        result = results.get(order)
        item: dict[str, Any] = {
            "Order": order,
            "Preset": entry["Preset"],
            "Type": entry["Type"],
            "SrcInfo": request.get("SrcInfo", []),
            "DstBucket": request.get("DstBucket", ""),
            "DstObjectKey": request.get("DstObjectKey", ""),
            "DstDir": request.get("DstDir", ""),
        }
        if result is not None:
            item.update(
                Status=result["Status"],
                Errnum=result["Errnum"],
                Errmsg=result["Errmsg"],
                Items=result.get("items", []),
                Command=result.get("Command", ""),
            )
        elif ended:  # failed as a whole (deleted, abandoned) before its items were kept
            code = task.error_code or 2001
            item.update(Status=4, Errnum=code, Errmsg=TASK_MESSAGES.get(code, ""), Items=[])
        else:
            item.update(Status=0, Errnum=0, Errmsg="", Items=[])
        shown.append(item)
    return shown
