"""``avtrans`` presets (spec §3.2): ``Param`` → :class:`AvtransSpec`; ExtParam →
:class:`AvtransOptions` (spec §3.8).

Parsing is the validation: each value is read once, by the rules of
``service/preset_params.py`` (``1001`` naming the key), and then the keys are judged
together against the container's row of ``engine/formats.py`` (a codec the container cannot
hold, ``copy`` with a change that needs a re-encode, ``twopass`` with ``crf`` …), again with
``1001`` naming the key. ``docs/transcoding.md`` lists every rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openkvs.engine.capabilities import installed
from openkvs.engine.formats import CONTAINERS, EVERYTHING, Capabilities, Container
from openkvs.errors import invalid
from openkvs.presets.avtrans_audio import AudioSpec, parse_audio, require_capabilities
from openkvs.presets.avtrans_ext import AvtransOptions, read_options
from openkvs.presets.avtrans_video import VideoSpec, parse_video
from openkvs.presets.codec import dump
from openkvs.service import preset_params as rules
from openkvs.service.param_values import parse_bitrate, parse_time, split_list, to_number
from openkvs.service.params import given, to_int

__all__ = [
    "AudioSpec",
    "AvtransOptions",
    "AvtransSpec",
    "ClipSpec",
    "MulSpec",
    "SegmentSpec",
    "VideoSpec",
    "parse",
    "task_options",
]


@dataclass(frozen=True)
class ClipSpec:
    """The part of the source to transcode (``CLIP``, or the top-level ``ss``); ExtParam
    ``ss``/``duration`` win key by key."""

    ss: float | None = None  # seconds
    duration: float | None = None  # seconds, > 0; None = to the end


@dataclass(frozen=True)
class SegmentSpec:
    """HLS and segment-mode settings (spec §3.5); kept for the issue that runs them."""

    hls_time: int = 10
    segment_time: int = 0
    start_segment_num: int = 0
    start_segment_time: int = 0
    segfile_acl: str = ""  # "" = the task's DstAcl


@dataclass(frozen=True)
class MulSpec:
    """DASH renditions (``mulrate=1`` with ``f=dash``); kept for the issue that runs them."""

    enabled: bool = False
    vb: tuple[int, ...] = ()
    res: tuple[str, ...] = ()
    vr: tuple[float, ...] = ()
    ab: tuple[int, ...] = ()


@dataclass(frozen=True)
class AvtransSpec:
    """One ``avtrans`` preset, resolved against its container: ``video.codec``/``audio.codec``
    are what will be written ("" = no such stream)."""

    f: str
    video: VideoSpec = field(default_factory=VideoSpec)
    audio: AudioSpec = field(default_factory=AudioSpec)
    clip: ClipSpec = field(default_factory=ClipSpec)
    intelligent_switch: int = 0  # 0 allow upscaling, 1 fail with 2049, 2 clamp to the source
    clearmeta: bool = False
    autorotate: bool = True
    segment: SegmentSpec = field(default_factory=SegmentSpec)
    mul: MulSpec = field(default_factory=MulSpec)
    #: Watermarks as the client sent them (``LOGOS`` tracks, legacy ``IMAGE`` items),
    #: checked by ``preset_params``; read as typed tracks by ``presets/logos.py``.
    logos: tuple[tuple[dict[str, Any], ...], ...] = ()
    image: tuple[dict[str, Any], ...] = ()
    zd_video_type: int | None = None  # zdParams.video_tpye (Kshd tuning; not applied yet)

    @property
    def container(self) -> Container:
        return CONTAINERS[self.f]


def parse(param: Mapping[str, Any], capabilities: Capabilities = EVERYTHING) -> AvtransSpec:
    """The spec of an ``avtrans`` ``Param``; ``ApiError(1001)`` naming the key when a value
    or a combination is wrong. ``capabilities`` is what the values are judged against (HE-AAC,
    the SoX resampler); by default everything the KVS API allows, since a preset is valid
    whatever this openkvs's ffmpeg has: :func:`task_options` checks a task against the
    ffmpeg that runs it."""
    rules.check_avtrans(param)
    f = str(param["f"])
    container = CONTAINERS[f]
    video_path, video = _section(param, "VIDEO")
    audio_path, audio = _section(param, "AUDIO")
    video_spec = parse_video(video_path, video, container)
    audio_spec = parse_audio(audio_path, audio, container, capabilities)
    if not video_spec.codec and not audio_spec.codec:
        if container.video and container.audio:
            raise invalid(f"{audio_path}.an", f"with {video_path}.vn=1 leaves nothing to write")
        path, key = (video_path, "vn") if container.video else (audio_path, "an")
        raise invalid(f"{path}.{key}", f"leaves f={f} with nothing to write")
    logos, image = _watermarks(param)
    if (logos or image) and video_spec.codec in ("", "copy"):
        name = rules.section(param, "LOGOS") or rules.section(param, "IMAGE")
        why = "needs the video re-encoded" if video_spec.codec else "needs a video stream"
        raise invalid(name[0] if name else "Param.LOGOS", why)
    return AvtransSpec(
        f=f,
        video=video_spec,
        audio=audio_spec,
        clip=_clip(param),
        intelligent_switch=_int(param, "intelligentSwitch", 0),
        clearmeta=_int(param, "clearmeta", 0) == 1,
        autorotate=_int(param, "autorotate", 1) == 1,
        segment=SegmentSpec(
            hls_time=_int(param, "hls_time", 10),
            segment_time=_int(param, "segment_time", 0),
            start_segment_num=_int(param, "start_segment_num", 0),
            start_segment_time=_int(param, "start_segment_time", 0),
            segfile_acl=str(param["segfile_acl"]) if given(param, "segfile_acl") else "",
        ),
        mul=_mul(param, video, audio),
        logos=logos,
        image=image,
        zd_video_type=_zd(param),
    )


def task_options(
    spec: AvtransSpec, ext: Mapping[str, Any], sources: list[dict[str, Any]]
) -> dict[str, Any]:
    """ExtParam of an avtrans task as stored ``options`` (see ``presets/avtrans_ext.py``):
    ``ApiError(1015)`` for what cannot run yet, ``1018`` for a wrong ExtParam value, and
    ``1018`` for a preset that asks what this openkvs's ffmpeg cannot do (HE-AAC without
    ``libfdk_aac``, the SoX resampler without libsoxr)."""
    options = read_options(spec, ext, sources)
    require_capabilities(spec.audio, installed())
    return dump(options)


def _section(param: Mapping[str, Any], name: str) -> tuple[str, Mapping[str, Any]]:
    found = rules.section(param, name)
    return (found[0], found[1]) if found else (f"Param.{name}", {})


def _int(param: Mapping[str, Any], key: str, default: int) -> int:
    return to_int(f"Param.{key}", param[key]) if given(param, key) else default


def _clip(param: Mapping[str, Any]) -> ClipSpec:
    clip: Mapping[str, Any] = param["CLIP"] if given(param, "CLIP") else {}
    ss = clip.get("ss") if given(clip, "ss") else param.get("ss") if given(param, "ss") else None
    duration = parse_time(clip["duration"]) if given(clip, "duration") else None
    if duration == 0:
        raise invalid("Param.CLIP.duration", "must be more than 0 seconds")
    return ClipSpec(parse_time(ss) if ss is not None else None, duration)


def _watermarks(
    param: Mapping[str, Any],
) -> tuple[tuple[tuple[dict[str, Any], ...], ...], tuple[dict[str, Any], ...]]:
    logos = rules.section(param, "LOGOS")
    image = rules.section(param, "IMAGE")
    tracks = tuple(tuple(dict(logo) for logo in track) for track in logos[1]) if logos else ()
    items = tuple(dict(item) for item in image[1]) if image else ()
    return tuple(track for track in tracks if track), items


def _mul(param: Mapping[str, Any], video: Mapping[str, Any], audio: Mapping[str, Any]) -> MulSpec:
    def items(section: Mapping[str, Any], key: str) -> list[str]:
        return split_list(section[key]) if given(section, key) else []

    return MulSpec(
        enabled=_int(param, "mulrate", 0) == 1,
        vb=tuple(parse_bitrate(v) for v in items(video, "mulVb")),
        res=tuple(items(video, "mulRes")),
        vr=tuple(to_number(v) for v in items(video, "mulVr")),
        ab=tuple(parse_bitrate(v) for v in items(audio, "mulAb")),
    )


def _zd(param: Mapping[str, Any]) -> int | None:
    zd = param.get("zdParams")
    if isinstance(zd, Mapping) and given(zd, "video_tpye"):
        return to_int("Param.zdParams.video_tpye", zd["video_tpye"])
    return None
