"""BatchCreateTask (spec §2.24): several CreateTask bodies in one call, as the PHP SDK sends.

The request body is a JSON array of CreateTask objects. The call itself is refused (and
nothing is queued) when there is no body (1000), or when the body is not an array, is empty
or holds more than :data:`MAX_ITEMS` items (1001). Otherwise each item goes, in order,
through CreateTask itself (:func:`~openkvs.service.task_create.create_task`: the same
checks, the same ExtParam ``ClientToken`` rule, the same wake-up of the workers) and gets
its own answer in ``TaskIDs``, parallel to the input: ``{"TaskID", "ErrNum": 0, "ErrMsg":
"success"}`` when it was queued, or ``TaskID`` ``""`` and CreateTask's error when it was
refused (an item that is not a JSON object: 1001). A refused item does not stop the others.

The tasks are CreateTask tasks in every respect (GetTaskList, callbacks, statistics); only
the API call is counted as BatchCreateTask. Anything other than a business error (the
database unreachable, say) ends the call with that error: the items before it stay queued,
and a client that sends a ``ClientToken`` per item can repeat the call without queuing any
of them twice.
"""

from __future__ import annotations

from typing import Any

from openkvs.errors import ApiError
from openkvs.model import User
from openkvs.service.context import Services
from openkvs.service.task_create import create_task

#: The most items one BatchCreateTask may hold.
MAX_ITEMS = 50

#: Stands for "the request had no body" (a body can be any JSON value, ``null`` included).
NO_BODY = object()


def _items(body: object) -> list[Any]:
    """The body's items, or the call's error."""
    if body is NO_BODY:
        raise ApiError(1000, "the request body is required: a JSON array of CreateTask objects")
    if not isinstance(body, list):
        raise ApiError(1001, "the request body must be a JSON array of CreateTask objects")
    if not body:
        raise ApiError(
            1001, f"the request body is an empty array: give 1 to {MAX_ITEMS} CreateTask objects"
        )
    if len(body) > MAX_ITEMS:
        raise ApiError(
            1001, f"the request body holds {len(body)} items; at most {MAX_ITEMS} are accepted"
        )
    return body


def _one(services: Services, user: User, index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        error = ApiError(1001, f"item {index} of the request body must be a JSON object")
        return {"TaskID": "", "ErrNum": error.code, "ErrMsg": error.message}
    try:
        task_id = create_task(services, user, item)
    except ApiError as exc:
        return {"TaskID": "", "ErrNum": exc.code, "ErrMsg": exc.message}
    return {"TaskID": task_id, "ErrNum": 0, "ErrMsg": "success"}


def batch_create_task(services: Services, user: User, body: object) -> dict[str, Any]:
    """Queue each CreateTask object of ``body`` (the parsed request body, or
    :data:`NO_BODY`) on its own; ``{"TaskIDs": [...]}`` parallel to it."""
    items = _items(body)
    return {"TaskIDs": [_one(services, user, i, item) for i, item in enumerate(items)]}
