"""Callback bodies in the seed's formats (spec §5.2–§5.4). Pure functions."""

from __future__ import annotations

from typing import Any

from openkvs.errors import TASK_MESSAGES
from openkvs.model import TaskStatus

#: Task types whose callbacks name no output bucket (spec §5.2: "" for avinfo).
NO_OUTPUT_BUCKET = frozenset({"avinfo"})


def completion_body(
    *,
    task_id: str,
    task_type: str,
    bucket: str,
    error_code: int,
    items: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The completion callback of an ordinary task (§5.4 b, d, e).

    Success: ``Status`` 3, ``errnum`` 0, ``errmsg`` "success" and the output ``items``.
    Failure: ``Status`` 4, the §6.2 code and its verbatim message, ``items`` empty.
    ``bucket`` is the output bucket, and "" for types that write nothing (avinfo).
    """
    ok = error_code == 0
    if task_type in NO_OUTPUT_BUCKET:
        bucket = ""
    status = TaskStatus.SUCC if ok else TaskStatus.FAIL
    return {
        "TaskID": task_id,
        "Status": status.callback_number,
        "Type": task_type,
        "Details": {
            "errnum": error_code,
            "errmsg": "success" if ok else TASK_MESSAGES[error_code],
            "bucket": bucket,
            "items": list(items or []) if ok else [],
        },
    }
