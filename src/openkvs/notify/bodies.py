"""Callback bodies in the seed's formats (spec §5.2–§5.5, §5.7). Pure functions."""

from __future__ import annotations

import base64
from typing import Any

from openkvs import kinds
from openkvs.errors import TASK_MESSAGES
from openkvs.model import CallbackStyle, TaskStatus


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
    details["items"] = [_callback_item(item) for item in items or []] if ok else []
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


#: Preset types of the retired "offline" API, reported by the lower-case variant (§5.7).
LEGACY_TYPES = frozenset({"avop", "avm3u8", "avlogo"})


def url_safe_b64(key: str) -> str:
    """URL-safe base64 of ``key`` (UTF-8) without ``=`` padding, as the seed's ``object=``."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def ks3_items(
    body: dict[str, Any], *, preset_type: str, output_key: str = ""
) -> list[dict[str, Any]] | None:
    """The §5.5 ``itmes`` list of a completion ``body`` (as :func:`completion_body` builds
    it), or None when the task gets none: tasks of preset type ``avtrans`` never do (the
    seed's example with ``tag=avop`` is an avtrans task made by a legacy ``avop`` preset).

    One entry: ``cmd`` ``tag=<preset type>`` for kinds that write nothing (avinfo), else
    ``tag=<preset type>|tag=saveas&bucket=<bucket>&object=<url_safe_b64(output_key)>``;
    ``desc`` ``success`` or the error message; ``keys`` the written keys (the ``dstpath``
    of each item; ``[""]`` for avinfo, ``[]`` for a failed task that writes); ``code`` 3/4.
    """
    if preset_type == "avtrans":
        return None
    details = body["Details"]
    ok = details["errnum"] == 0
    kind = kinds.BY_NAME.get(body["Type"])
    writes = kind is None or kind.names_bucket
    if writes:
        cmd = (
            f"tag={preset_type}|tag=saveas&bucket={details['bucket']}"
            f"&object={url_safe_b64(output_key)}"
        )
        keys = [str(item.get("dstpath", "")) for item in details["items"]] if ok else []
    else:
        cmd = f"tag={preset_type}"
        keys = [""]
    return [
        {
            "cmd": cmd,
            "desc": "success" if ok else details["errmsg"],
            "keys": keys,
            "code": body["Status"],
        }
    ]


def styled_completion_body(
    body: dict[str, Any],
    style: CallbackStyle,
    *,
    preset_type: str = "",
    output_key: str = "",
) -> dict[str, Any]:
    """``body`` (from :func:`completion_body`) in the user's ``style``; ``body`` itself
    when both variants are off. ``preset_type`` is the type of the task's preset ("" when
    it had none: the task's type is used), ``output_key`` its output object key (or dir).

    Both on: the lower-case first level plus ``itmes``. Key order follows the seed:
    ``TaskID``/``taskid``, ``Status``, ``Type``, ``itmes``, ``Details``."""
    if not style.lowercase and not style.ks3_items:
        return body
    ptype = preset_type or body["Type"]
    itmes = ks3_items(body, preset_type=ptype, output_key=output_key) if style.ks3_items else None
    if style.lowercase:
        reported = ptype if ptype in LEGACY_TYPES else body["Type"]
        out: dict[str, Any] = {"taskid": body["TaskID"], "status": body["Status"], "type": reported}
        if itmes is not None:
            out["itmes"] = itmes
        out["details"] = body["Details"]
        return out
    out = {"TaskID": body["TaskID"], "Status": body["Status"], "Type": body["Type"]}
    if itmes is not None:
        out["itmes"] = itmes
    out["Details"] = body["Details"]
    return out


def completion_body_for(body: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """``body`` in the style stored in a task's ``request`` (``callback_style``), with the
    preset type of its preset snapshot and its output key (``DstObjectKey``, else
    ``DstDir``). ``body`` itself for tasks whose user has no legacy variant on."""
    preset = request.get("preset")
    return styled_completion_body(
        body,
        CallbackStyle.from_request(request),
        preset_type=str(preset.get("type", "")) if isinstance(preset, dict) else "",
        output_key=str(request.get("DstObjectKey") or request.get("DstDir") or ""),
    )


#: Keys of a task's stored result items that openkvs adds for GetTaskByTaskID and
#: ``openkvs task show`` (the measured loudness of a normalised transcode) and that
#: callbacks, whose items keep the documented keys only, leave out.
STORED_ONLY_ITEM_KEYS = frozenset({"loudness"})


def _callback_item(item: dict[str, Any]) -> dict[str, Any]:
    if STORED_ONLY_ITEM_KEYS.isdisjoint(item):
        return item
    return {k: v for k, v in item.items() if k not in STORED_ONLY_ITEM_KEYS}
