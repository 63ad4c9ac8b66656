"""The one table of task kinds: what each task type is made from, writes, reports and runs.

Every part that treats task types differently reads this table instead of naming types:
creation (which preset types make the kind, which destination fields it needs), the preset
rules (the parser of its preset type), callbacks (whether ``bucket`` is named, whether
``snapshotNum`` is counted), statistics (transcoded seconds, images), the runtime (the
executor that runs it) and the claim (a worker claims only the kinds it has executors for).

A new task type is one row here, one preset module under ``openkvs.presets`` and one
executor module under ``openkvs.worker``.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.errors import ApiError


class Output(enum.Enum):
    """Where a kind writes."""

    NONE = "none"  # nothing in a bucket (avinfo: the result is the callback)
    OBJECT = "object"  # one object at DstObjectKey (plus files beside it)
    DIR = "dir"  # files under DstDir (avsample)


@dataclass(frozen=True)
class Kind:
    """One task type. ``name`` is what the tasks table, callbacks and GetTaskList say."""

    name: str
    #: ``PresetType`` values whose presets make tasks of this kind (aliases included).
    preset_types: tuple[str, ...]
    #: The action that creates it (CreateWaveTask tasks cannot be made by CreateTask).
    action: str
    output: Output
    #: ``module:function`` parsing a preset's ``Param`` into its frozen spec (openkvs.presets).
    parser: str
    #: ``module:Class`` of that spec (to load the spec a task stored).
    spec: str
    #: ``module:Class`` of the executor; imported only by processes that run tasks.
    executor: str
    #: ``module:function`` reading a task's ExtParam for this kind:
    #: ``f(spec, ext, sources) -> dict`` (JSON-able, stored as ``request["options"]``); it
    #: raises ``ApiError`` (1018 for ExtParam values, 1015 for shapes that cannot run).
    #: "" when the kind takes no ExtParam.
    options: str = ""
    #: Whether the completion callback names the output bucket (avinfo says "").
    names_bucket: bool = True
    #: Completion callbacks carry ``snapshotNum``: the number of images made.
    counts_images: bool = False
    #: Counted by GetMediaTransDuration (seconds of media transcoded).
    transcodes: bool = False

    def parse(self, param: Mapping[str, Any]) -> Any:
        """The frozen spec of ``param`` (raises ``ApiError(1001)`` naming the key)."""
        return _load(self.parser)(param)

    def task_options(
        self, spec: Any, ext: Mapping[str, Any], sources: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if not self.options:
            return {}
        return _load(self.options)(spec, ext, sources)

    def spec_class(self) -> type:
        return _load(self.spec)

    def executor_class(self) -> Any:
        return _load(self.executor)


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


KINDS: tuple[Kind, ...] = (
    Kind(
        "avtrans",
        ("avtrans", "avop", "avm3u8"),
        "CreateTask",
        Output.OBJECT,
        "openkvs.presets.avtrans:parse",
        "openkvs.presets.avtrans:AvtransSpec",
        "openkvs.worker.avtrans:AvtransExecutor",
        options="openkvs.presets.avtrans:task_options",
        transcodes=True,
    ),
    Kind(
        "avsnapshot",
        ("avsnapshot",),
        "CreateTask",
        Output.OBJECT,
        "openkvs.presets.image:parse_snapshot",
        "openkvs.presets.image:SnapshotSpec",
        "openkvs.worker.snapshot:SnapshotExecutor",
        options="openkvs.presets.image:snapshot_options",
        counts_images=True,
    ),
    Kind(
        "avsample",
        ("avsample",),
        "CreateTask",
        Output.DIR,
        "openkvs.presets.image:parse_sample",
        "openkvs.presets.image:SampleSpec",
        "openkvs.worker.sample:SampleExecutor",
        options="openkvs.presets.image:sample_options",
        counts_images=True,
    ),
    Kind(
        "avinfo",
        ("avinfo",),
        "CreateTask",
        Output.NONE,
        "openkvs.presets.simple:parse_avinfo",
        "openkvs.presets.simple:AvinfoSpec",
        "openkvs.worker.avinfo:AvinfoExecutor",
        names_bucket=False,
    ),
    Kind(
        "audiowave",
        ("audiowave",),
        "CreateWaveTask",
        Output.OBJECT,
        "openkvs.presets.simple:parse_audiowave",
        "openkvs.presets.simple:AudiowaveSpec",
        "openkvs.worker.wave:WaveExecutor",
    ),
    Kind(
        "aiproduction",
        ("aiproduction",),
        "CreateTask",
        Output.OBJECT,
        "openkvs.presets.simple:parse_aiproduction",
        "openkvs.presets.simple:AiproductionSpec",
        "openkvs.worker.cover:CoverExecutor",
        options="openkvs.presets.simple:aiproduction_options",
    ),
    Kind(
        "avlogo",
        ("avlogo",),
        "CreateTask",
        Output.OBJECT,
        "openkvs.presets.simple:parse_avlogo",
        "openkvs.presets.simple:AvlogoSpec",
        "",  # a watermark stage of a preset chain; no executor yet
    ),
    Kind(
        # One chunk of a split avtrans task (docs/transcoding.md "Split-and-stitch"): made
        # by its parent's worker, never by a preset; writes a chunk under the reserved
        # prefix of the parent's bucket; no callback, not in lists or statistics.
        "avtrans_part",
        (),
        "CreateTask",
        Output.OBJECT,
        "openkvs.presets.avtrans:parse",
        "openkvs.presets.avtrans:AvtransSpec",
        "openkvs.worker.part:PartExecutor",
    ),
    Kind(
        # A CreateFlowTask task (docs/reference.md "CreateFlowTask"): its FlowData items,
        # each an ordinary task of its own kind, run one after another under one TaskID;
        # one flow callback (notify/flows.py).
        "flow",
        (),
        "CreateFlowTask",
        Output.OBJECT,
        "openkvs.presets.flow:parse",
        "openkvs.presets.flow:FlowSpec",
        "openkvs.worker.flow:FlowExecutor",
    ),
)

#: The kind of CreateFlowTask tasks.
FLOW = "flow"

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
_BY_PRESET_TYPE: dict[str, Kind] = {t: kind for kind in KINDS for t in kind.preset_types}
#: Every accepted ``PresetType`` (spec §3.1), in the spec's order.
PRESET_TYPES: tuple[str, ...] = (
    "avtrans",
    "avsnapshot",
    "avsample",
    "avinfo",
    "audiowave",
    "aiproduction",
    "avop",
    "avm3u8",
    "avlogo",
)
assert set(PRESET_TYPES) == set(_BY_PRESET_TYPE)


def kind_of_preset(preset_type: object) -> Kind:
    """The kind a ``PresetType`` makes; anything that is not exactly (case-sensitively) one
    of :data:`PRESET_TYPES` is ``1015``."""
    if not isinstance(preset_type, str) or preset_type not in _BY_PRESET_TYPE:
        raise ApiError(1015, f"PresetType {preset_type!r} is not one of {', '.join(PRESET_TYPES)}")
    return _BY_PRESET_TYPE[preset_type]


def kind(name: str) -> Kind:
    """The kind of a stored task type (a programming error when unknown)."""
    return BY_NAME[name]


def image_kinds() -> tuple[str, ...]:
    return tuple(k.name for k in KINDS if k.counts_images)


def transcode_kinds() -> tuple[str, ...]:
    return tuple(k.name for k in KINDS if k.transcodes)


def with_executors() -> tuple[Kind, ...]:
    """The kinds this openkvs can run (the others are refused at creation with 1015)."""
    return tuple(k for k in KINDS if k.executor)
