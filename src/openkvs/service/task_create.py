"""CreateTask (spec §2.6) and its console twin FetchObjectMediaProcess (§2.21)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openkvs import kinds
from openkvs.errors import ApiError
from openkvs.model import User
from openkvs.presets.avtrans_sources import stored_order
from openkvs.presets.codec import dump
from openkvs.service import chains
from openkvs.service import params as p
from openkvs.service import presets as preset_rules
from openkvs.service.context import Services
from openkvs.service.logo_sources import check_logo_objects
from openkvs.service.sources import check_destination, check_source, source_list
from openkvs.service.submission import Submission, queue_task, read_submission
from openkvs.storage.keys import validate_bucket, validate_key


def _resolve_preset(
    services: Services, user: User, params: p.Params
) -> tuple[kinds.Kind, dict[str, Any]]:
    """(task kind, snapshot of the preset) for a ``Preset`` that names one preset."""
    raw = params.get("Preset")
    if not isinstance(raw, str) or not raw:
        raise ApiError(1005, "Preset is required")
    return resolve_named_preset(services, user, preset_rules.check_name(params))


def resolve_named_preset(
    services: Services, user: User, name: str, *, chain_stage: bool = False
) -> tuple[kinds.Kind, dict[str, Any]]:
    """(task kind, snapshot) of the user's preset ``name``: 1005 when it does not exist,
    1015 when its type is not made by CreateTask or cannot run here. ``chain_stage``: the
    second stage of a preset chain, where an ``avlogo`` preset belongs (``chains.py``)."""
    if name in preset_rules.RESERVED:
        raise ApiError(1015, "the 'wave' preset is for CreateWaveTask")
    preset = services.presets.get(user.id, name)
    if preset is None:
        raise ApiError(1005, f"preset {name!r} does not exist")
    kind = kinds.kind_of_preset(preset.preset_type)
    if kind.action != "CreateTask":
        raise ApiError(1015, f"preset {name!r} is of type {kind.name}: use {kind.action}")
    snapshot = {"name": preset.name, "type": preset.preset_type, "param": preset.param}
    if kind.name == chains.LOGO_KIND:
        if not chain_stage:
            raise ApiError(
                1015,
                f"preset {name!r} of type avlogo cannot run alone: it follows a transcoding "
                f"preset in a chain, as in 'mytrans|{name}' "
                f"(supported: {', '.join(_creatable(services.executable_types))})",
            )
        return kind, snapshot
    if kind.name not in services.executable_types:
        raise ApiError(
            1015,
            f"tasks of type {preset.preset_type} cannot run on this openkvs "
            f"yet (supported: {', '.join(_creatable(services.executable_types))})",
        )
    return kind, snapshot


@dataclass(frozen=True)
class PreparedTask:
    """A checked CreateTask request, ready to be queued (or to be one item of a flow)."""

    task_type: str
    preset: str  # as the client named it: one preset, or a chain "A|B"
    submission: Submission
    request: dict[str, Any]  # what the task stores (its submission's members not yet in)


def prepare_task(services: Services, user: User, params: p.Params) -> PreparedTask:
    """Every CreateTask check, in CreateTask's order, and the request the task stores;
    queues nothing."""
    names = chains.chain_names(params.get("Preset"))
    chain: chains.Chain | None = None
    if names is None:
        kind, snapshot = _resolve_preset(services, user, params)
        # A preset stored before its rules grew may no longer parse: 1001 naming the key.
        spec = kind.parse(snapshot["param"])
    else:
        chain = chains.check_chain(
            resolve_named_preset(services, user, names[0]),
            resolve_named_preset(services, user, names[1], chain_stage=True),
        )
        kind, snapshot, spec = chain.kind, chain.last.snapshot, chain.spec
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
    if chain is None:
        options = kind.task_options(spec, submission.ext, sources)
        stages: dict[str, Any] = {}
    else:
        options, stages = chain.task_options(submission.ext, sources)
    located = [
        check_source(services.storage, services.buckets, user, src["path"]) for src in sources
    ]
    check_logo_objects(services, user, spec, options)  # watermark logos in buckets
    if chain is not None and "first_stage" in stages:  # a chain's first stage may draw logos
        check_logo_objects(services, user, chain.first.spec, stages["first_stage"]["options"])
    if dst_bucket:
        check_destination(services.storage, services.buckets, user, dst_bucket)
    # avtrans opens the video of the lowest index as input 0; other kinds keep the order.
    order = stored_order(sources) if kind.name == "avtrans" else list(range(len(sources)))
    request = {
        "SrcInfo": sources,
        "DstBucket": dst_bucket,
        "DstDir": dst_dir,
        "DstObjectKey": dst_key,
        # In the order a worker opens them (videos by index, the soundtrack, subtitles).
        "source": {"bucket": located[order[0]][0], "key": located[order[0]][1]},
        "sources": [
            {
                "bucket": located[n][0],
                "key": located[n][1],
                "type": sources[n].get("type", "video"),
                "index": sources[n]["index"],
            }
            for n in order
        ],
        "preset": snapshot,
        "spec": dump(spec),
        "options": options,
        **stages,  # a preset chain: "chain" (its presets) and "first_stage" (chains.py)
        # The user's legacy callback variants when the task was made (spec §5.5, §5.7).
        "callback_style": services.users.callback_style(user.id).as_request(),
    }
    preset = snapshot["name"] if chain is None else chain.name
    return PreparedTask(kind.name, preset, submission, request)


def create_task(
    services: Services, user: User, params: p.Params, *, action: str = "CreateTask"
) -> str:
    """Validate, snapshot the preset, queue the task; return its TaskID."""
    prepared = prepare_task(services, user, params)
    return queue_task(
        services,
        user,
        action=action,
        task_type=prepared.task_type,
        preset=prepared.preset,
        submission=prepared.submission,
        request=prepared.request,
    )


def _creatable(executable: frozenset[str]) -> list[str]:
    """The kinds a CreateTask may ask for among those this openkvs runs (not the internal
    ones, such as the parts of a split transcode, which no preset names)."""
    return sorted(name for name in executable if kinds.kind(name).preset_types)
