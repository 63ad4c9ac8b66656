"""Callback bodies in the seed's formats (spec §5.2–§5.4). Pure functions."""

from __future__ import annotations

from typing import Any

from openkvs import kinds
from openkvs.errors import TASK_MESSAGES
from openkvs.model import TaskStatus


def completion_body(
    *,
    task_id: str,
    task_type: str,
    bucket: str,
    error_code: int,
    items: list[dict[str, Any]] | None,
    with_progress: bool = False,
) -> dict[str, Any]:
    """The completion callback of an ordinary task (§5.4 b, d, e).

    ``with_progress`` (the task asked for progress callbacks): ``Details`` also carries
    ``status`` ``""`` and ``progress`` 0, as the service's own completion callbacks do for
    such tasks (spec §5.2; the seed: these fields are only present when progress callbacks
    were set).

    Success: ``Status`` 3, ``errnum`` 0, ``errmsg`` "success" and the output ``items``.
    Failure: ``Status`` 4, the §6.2 code and its verbatim message, ``items`` empty.
    ``bucket`` is the output bucket, and "" for kinds that write nothing (avinfo). Kinds
    that make images (avsnapshot, avsample) add ``snapshotNum`` on success: one per item.
    """
    ok = error_code == 0
    kind = kinds.BY_NAME.get(task_type)
    if kind is not None and not kind.names_bucket:
        bucket = ""
    status = TaskStatus.SUCC if ok else TaskStatus.FAIL
    details: dict[str, Any] = {
        "errnum": error_code,
        "errmsg": "success" if ok else TASK_MESSAGES[error_code],
        "bucket": bucket,
    }
    if ok and kind is not None and kind.counts_images:
        details["snapshotNum"] = len(items or [])
    if with_progress:
        details["status"] = ""
        details["progress"] = 0
    details["items"] = list(items or []) if ok else []
    return {
        "TaskID": task_id,
        "Status": status.callback_number,
        "Type": task_type,
        "Details": details,
    }


def progress_body(*, task_id: str, task_type: str, phase: str, percent: int) -> dict[str, Any]:
    """A progress callback (§5.4 a): ``Status`` 2 with ``Details.status`` (``transcoding``
    or ``uploading``) and ``Details.progress`` (0-100 within that status)."""
    return {
        "TaskID": task_id,
        "Status": TaskStatus.EXEC.callback_number,
        "Type": task_type,
        "Details": {"status": phase, "progress": percent},
    }
