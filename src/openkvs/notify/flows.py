"""The completion callback of a flow (CreateFlowTask; spec §5.6). Pure functions.

``{"TaskID", "Status", "Details": [...]}`` -- no top-level ``Type`` -- with one element per
FlowData item, in ``Order``, its keys capitalised and in the seed's order: ``Order``,
``Type``, ``Status`` (3/4), ``Errnum``, ``Errmsg`` (``""`` on success, as the seed shows;
else the §6.2 message), ``Bucket`` (``""`` for avinfo), ``OutInfo``. ``OutInfo`` holds the
lower-case keys of an ordinary callback item (``dstpath``, ``outMediainfo``,
``segmentlisttype``, ``segmentsinfo``, ``metainfo``, ``thumbnailsinfo``: JSON text, as
there) of the item's first output, plus ``snapshotNum`` (outputs made) for image kinds;
``{}`` for a failed or skipped item. ``Status`` is 3 only when every item succeeded.

A flow that failed before its items were kept (deleted, abandoned after a crash) reports
every item with the flow's code.

Legacy lower-case accounts (spec §5.7) get ``taskid``, ``status``, ``details`` at the first
level; the elements keep their capitalised keys, and an item made by a legacy preset type
(``avop``, ``avm3u8``) says so in its ``Type``. KS3 ``itmes`` (§5.5) describe one output
and are not sent for flows.
"""

from __future__ import annotations

from typing import Any

from openkvs import kinds
from openkvs.errors import TASK_MESSAGES
from openkvs.model import CallbackStyle, TaskStatus
from openkvs.notify.bodies import LEGACY_TYPES, STORED_ONLY_ITEM_KEYS


def flow_body(
    *,
    task_id: str,
    error_code: int,
    results: list[dict[str, Any]] | None,
    request: dict[str, Any],
) -> dict[str, Any]:
    """The §5.6 body. ``results``: the items' stored results (``worker/flow.py``), None
    when the flow failed before any was kept; ``request``: the flow task's request."""
    entries = results if results is not None else _all_failed(request, error_code)
    status = TaskStatus.SUCC if error_code == 0 else TaskStatus.FAIL
    return {
        "TaskID": task_id,
        "Status": status.callback_number,
        "Details": [_element(entry) for entry in entries],
    }


def _element(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "Order": entry["Order"],
        "Type": entry["Type"],
        "Status": entry["Status"],
        "Errnum": entry["Errnum"],
        "Errmsg": entry["Errmsg"],
        "Bucket": entry["Bucket"],
        "OutInfo": out_info(entry),
    }


def out_info(entry: dict[str, Any]) -> dict[str, Any]:
    """``OutInfo`` of one item's stored result."""
    outputs = entry.get("items") or []
    if entry["Errnum"] != 0 or not outputs:
        return {}
    info = {k: v for k, v in outputs[0].items() if k not in STORED_ONLY_ITEM_KEYS}
    kind = kinds.BY_NAME.get(entry["Type"])
    if kind is not None and kind.counts_images:
        info["snapshotNum"] = len(outputs)
    return info


def _all_failed(request: dict[str, Any], code: int) -> list[dict[str, Any]]:
    out = []
    for entry in request.get("FlowData") or []:
        kind = kinds.BY_NAME.get(entry["Type"])
        named = kind is None or kind.names_bucket
        preset = entry["request"].get("preset")
        out.append(
            {
                "Order": entry["Order"],
                "Type": entry["Type"],
                "Status": TaskStatus.FAIL.callback_number,
                "Errnum": code,
                "Errmsg": TASK_MESSAGES.get(code, ""),
                "Bucket": entry["request"].get("DstBucket", "") if named else "",
                "items": [],
                "PresetType": preset.get("type", "") if isinstance(preset, dict) else "",
            }
        )
    return out


def styled_flow_body(
    body: dict[str, Any], style: CallbackStyle, preset_types: list[str]
) -> dict[str, Any]:
    """``body`` in the user's ``style``: the lower-case first level (legacy type names in
    the elements, ``preset_types`` parallel to them) when on, else ``body`` itself."""
    if not style.lowercase:
        return body
    details = []
    for element, preset_type in zip(body["Details"], preset_types, strict=False):
        if preset_type in LEGACY_TYPES:
            element = {**element, "Type": preset_type}
        details.append(element)
    return {"taskid": body["TaskID"], "status": body["Status"], "details": details}


def flow_callback(
    *,
    task_id: str,
    error_code: int,
    results: list[dict[str, Any]] | None,
    request: dict[str, Any],
) -> dict[str, Any]:
    """The body sent for a flow task: :func:`flow_body` in the style its request stored."""
    body = flow_body(task_id=task_id, error_code=error_code, results=results, request=request)
    entries = results if results is not None else _all_failed(request, error_code)
    preset_types = [str(entry.get("PresetType", "")) for entry in entries]
    return styled_flow_body(body, CallbackStyle.from_request(request), preset_types)
