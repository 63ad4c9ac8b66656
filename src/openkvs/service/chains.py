"""Preset chains: CreateTask with ``Preset`` ``"A|B"`` (spec §2.6, §3.4.4, §4.4).

The output of stage A is the input of stage B; only B's output is written, at DstObjectKey.
A chain is exactly two presets (more: 1001). The rules, checked at CreateTask:

* stage A is an ``avtrans`` preset (or the legacy ``avop``/``avm3u8``), else 1015; it must
  write one file (not ``f=hls``/``dash``, not segment mode, no ``mulrate``) and must not
  copy the video (``vcodec: copy``), else 1001;
* stage B is an ``avtrans`` preset of any output (HLS and segment mode included, where this
  openkvs runs them), or a legacy ``avlogo`` preset (watermarks only), else 1015.

``A|B`` with an avtrans B runs two passes in one worker (``worker/chain.py``): A into the
job's scratch folder (never uploaded), then B from that file. ExtParam goes to stage A
(trim, volume, ``passParams``, sources, progress callbacks), except the keys about B's
output: ``loudnorm``, ``segment_filename``, ``mulHlsRate``, ``hlsKey`` and ``f``.
``A|logo`` runs one pass: A's transcode carrying the logo preset's ``LOGOS``/``IMAGE``
(which replace any of A's own) -- the same picture as a second encode of A's output,
without the second loss.

The task's type is ``avtrans`` (the last stage's kind: an avlogo stage is a watermarking
transcode); its ``Preset`` is the chain as given. It stores ``chain`` (both presets, for
GetTaskByTaskID) and, for two passes, ``first_stage`` (A's spec and options).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openkvs import kinds
from openkvs.errors import ApiError
from openkvs.presets.codec import dump
from openkvs.service import presets as preset_rules

#: The kind a chain's transcoding stages are, and the kind of a watermark-only stage.
TRANSCODE_KIND = "avtrans"
LOGO_KIND = "avlogo"
#: How many presets a chain holds.
STAGES = 2
#: ExtParam keys that apply to stage B's output; every other key applies to stage A.
LAST_STAGE_KEYS = frozenset({"loudnorm", "segment_filename", "mulHlsRate", "hlsKey", "f"})
_WATERMARK_KEYS = frozenset({"LOGOS", "logos", "IMAGE", "image"})


def chain_names(raw: object) -> tuple[str, str] | None:
    """The two preset names of a ``Preset`` ``"A|B"``; None when it names one preset.
    1001 for more than two stages, 1005 for a name that is not a preset name."""
    if not isinstance(raw, str) or "|" not in raw:
        return None
    names = raw.split("|")
    if len(names) > STAGES:
        raise ApiError(1001, f"Preset {raw!r} chains {len(names)} presets; a chain is two: 'A|B'")
    first, last = (preset_rules.check_name({"Preset": name.strip()}) for name in names)
    return first, last


@dataclass(frozen=True)
class Stage:
    kind: kinds.Kind
    snapshot: dict[str, Any]  # {"name", "type", "param"} as the task stores presets
    spec: Any


@dataclass(frozen=True)
class Chain:
    first: Stage
    last: Stage
    #: What the worker runs last: B's spec, or A's carrying B's watermarks (one pass).
    spec: Any

    @property
    def name(self) -> str:
        return f"{self.first.snapshot['name']}|{self.last.snapshot['name']}"

    @property
    def kind(self) -> kinds.Kind:
        return kinds.kind(TRANSCODE_KIND)

    @property
    def one_pass(self) -> bool:
        return self.last.kind.name == LOGO_KIND

    def task_options(
        self, ext: dict[str, Any], sources: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the options of the last pass, the request members of the chain), checked as
        CreateTask checks a task's ExtParam (1015, 1018)."""
        described = [_described(self.first.snapshot), _described(self.last.snapshot)]
        if self.one_pass:
            return self.kind.task_options(self.spec, ext, sources), {"chain": described}
        first_ext = {k: v for k, v in ext.items() if k not in LAST_STAGE_KEYS}
        last_ext = {k: v for k, v in ext.items() if k in LAST_STAGE_KEYS}
        first = self.kind.task_options(self.first.spec, first_ext, sources)
        # Stage B reads one file: stage A's output, whatever A put together.
        made = [{"path": str(sources[0].get("path", "")), "index": 0, "type": "video"}]
        last = self.kind.task_options(self.spec, last_ext, made)
        return last, {
            "chain": described,
            "first_stage": {"spec": dump(self.first.spec), "options": first},
        }


def _described(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {"name": snapshot["name"], "type": snapshot["type"]}


def check_chain(
    first: tuple[kinds.Kind, dict[str, Any]], last: tuple[kinds.Kind, dict[str, Any]]
) -> Chain:
    """The chain of two resolved presets ((kind, snapshot) each), or its error."""
    (first_kind, first_snapshot), (last_kind, last_snapshot) = first, last
    a, b = first_snapshot["name"], last_snapshot["name"]
    if first_kind.name != TRANSCODE_KIND:
        raise ApiError(
            1015,
            f"preset {a!r} is of type {first_snapshot['type']}: the first preset of a chain "
            "must be an avtrans (avop, avm3u8) preset",
        )
    if last_kind.name not in (TRANSCODE_KIND, LOGO_KIND):
        raise ApiError(
            1015,
            f"preset {b!r} is of type {last_snapshot['type']}: the second preset of a chain "
            "must be an avtrans (avop, avm3u8) or avlogo preset",
        )
    spec_a = first_kind.parse(first_snapshot["param"])
    _check_first(a, spec_a)
    if last_kind.name == LOGO_KIND:
        last_kind.parse(last_snapshot["param"])  # 1001 naming the key of a bad logo
        param = {k: v for k, v in first_snapshot["param"].items() if k not in _WATERMARK_KEYS}
        param.update((k, v) for k, v in last_snapshot["param"].items() if k in _WATERMARK_KEYS)
        spec = first_kind.parse(param)
        stage_b = Stage(last_kind, last_snapshot, spec)
    else:
        spec = last_kind.parse(last_snapshot["param"])
        stage_b = Stage(last_kind, last_snapshot, spec)
    return Chain(Stage(first_kind, first_snapshot, spec_a), stage_b, spec)


def _check_first(name: str, spec: Any) -> None:
    """Stage A writes one file the next stage reads, with its video re-encoded (1001)."""
    if spec.container.muxer in ("hls", "dash") or spec.segment.segment_time > 0 or spec.mul.enabled:
        raise ApiError(
            1001,
            f"Preset: the first preset of a chain ({name!r}) must write one file, "
            f"not f={spec.f} or segment mode",
        )
    if spec.video.codec == "copy":
        raise ApiError(
            1001,
            f"Preset: the first preset of a chain ({name!r}) must not copy the video "
            "(VIDEO.vcodec=copy)",
        )


def chain_info(request: dict[str, Any]) -> list[dict[str, Any]]:
    """GetTaskByTaskID's ``Chain``: each stage's ``Preset`` and ``PresetType`` ([] for a
    task that is not a chain)."""
    return [
        {"Stage": n, "Preset": stage["name"], "PresetType": stage["type"]}
        for n, stage in enumerate(request.get("chain") or [])
    ]
