"""CreateTask (spec §2.6) and its console twin FetchObjectMediaProcess (§2.21)."""

from __future__ import annotations

from typing import Any

from openkvs import kinds
from openkvs.errors import ApiError
from openkvs.model import User
from openkvs.presets.codec import dump
from openkvs.service import params as p
from openkvs.service import presets as preset_rules
from openkvs.service.context import Services
from openkvs.service.sources import check_destination, check_source, source_list
from openkvs.service.submission import queue_task, read_submission
from openkvs.storage.keys import validate_bucket, validate_key


def _resolve_preset(
    services: Services, user: User, params: p.Params
) -> tuple[kinds.Kind, dict[str, Any]]:
    """(task kind, snapshot of the preset) for ``Preset``; chains ``A|B`` are refused while
    no chainable executor exists."""
    raw = params.get("Preset")
    if not isinstance(raw, str) or not raw:
        raise ApiError(1005, "Preset is required")
    if "|" in raw:
        raise ApiError(
            1015,
            "preset chains (A|B) need the avtrans executor, which this openkvs does not have yet",
        )
    name = preset_rules.check_name(params)
    if name in preset_rules.RESERVED:
        raise ApiError(1015, "the 'wave' preset is for CreateWaveTask")
    preset = services.presets.get(user.id, name)
    if preset is None:
        raise ApiError(1005, f"preset {name!r} does not exist")
    kind = kinds.kind_of_preset(preset.preset_type)
    if kind.action != "CreateTask":
        raise ApiError(1015, f"preset {name!r} is of type {kind.name}: use {kind.action}")
    if kind.name not in services.executable_types:
        raise ApiError(
            1015,
            f"tasks of type {preset.preset_type} cannot run on this openkvs "
            f"yet (supported: {', '.join(_creatable(services.executable_types))})",
        )
    snapshot = {"name": preset.name, "type": preset.preset_type, "param": preset.param}
    return kind, snapshot


def create_task(
    services: Services, user: User, params: p.Params, *, action: str = "CreateTask"
) -> str:
    """Validate, snapshot the preset, queue the task; return its TaskID."""
    kind, snapshot = _resolve_preset(services, user, params)
    # A preset stored before its rules grew may no longer parse: 1001 naming the key.
    spec = kind.parse(snapshot["param"])
    if not p.given(params, "SrcInfo"):
        raise ApiError(1016, "SrcInfo is required")
    sources = source_list(params["SrcInfo"])
    dst_bucket = p.optional_str(params, "DstBucket")
    if dst_bucket or kind.output is not kinds.Output.NONE:
        dst_bucket = validate_bucket(p.required_str(params, "DstBucket"), "DstBucket")
    dst_key = p.optional_str(params, "DstObjectKey")
    if dst_key or kind.output is kinds.Output.OBJECT:
        dst_key = validate_key(dst_key, "DstObjectKey")
    dst_dir = p.optional_str(params, "DstDir")
    if dst_dir:
        try:
            validate_key(dst_dir.rstrip("/") or "/", "DstDir")
        except ApiError as exc:
            raise ApiError(1020, exc.detail) from exc
    if kind.output is kinds.Output.DIR and not dst_dir:
        raise ApiError(1020, f"DstDir is required for {kind.name} tasks")
    submission = read_submission(services, user, params)
    options = kind.task_options(spec, submission.ext, sources)
    located = [
        check_source(services.storage, services.buckets, user, src["path"]) for src in sources
    ]
    if dst_bucket:
        check_destination(services.storage, services.buckets, user, dst_bucket)
    request = {
        "SrcInfo": sources,
        "DstBucket": dst_bucket,
        "DstDir": dst_dir,
        "DstObjectKey": dst_key,
        "source": {"bucket": located[0][0], "key": located[0][1]},
        "sources": [
            {"bucket": bucket, "key": key, "type": src.get("type", "video"), "index": src["index"]}
            for (bucket, key), src in zip(located, sources, strict=True)
        ],
        "preset": snapshot,
        "spec": dump(spec),
        "options": options,
        # The user's legacy callback variants when the task was made (spec §5.5, §5.7).
        "callback_style": services.users.callback_style(user.id).as_request(),
    }
    return queue_task(
        services,
        user,
        action=action,
        task_type=kind.name,
        preset=snapshot["name"],
        submission=submission,
        request=request,
    )


def _creatable(executable: frozenset[str]) -> list[str]:
    """The kinds a CreateTask may ask for among those this openkvs runs (not the internal
    ones, such as the parts of a split transcode, which no preset names)."""
    return sorted(name for name in executable if kinds.kind(name).preset_types)
