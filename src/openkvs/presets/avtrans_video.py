"""``avtrans`` ``VIDEO`` (spec §3.2.1) → :class:`VideoSpec`, judged against the container.

Single values were checked by ``service/preset_params.py``; this module reads them and
refuses the combinations that cannot run, with ``1001`` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.engine.formats import IMPLIED, Container
from openkvs.engine.options import parse_codec_params
from openkvs.errors import invalid
from openkvs.service.param_values import parse_bitrate, to_number
from openkvs.service.params import given, to_int


@dataclass(frozen=True)
class VideoSpec:
    """What the output's video stream is made of. ``codec`` "" = no video stream."""

    codec: str = "h264"  # h264, h265, vp9, gif, webp or copy
    bitrate: int = 0  # vb, bits/s (with crf: the cap); 0 = not given
    fps: float = 0.0  # vr; 0 = the source's
    width: int = 0  # 0 = not given
    height: int = 0
    keep_aspect: bool = False  # as=1: fit inside width x height
    short_side: int = 0
    orientation_adapt: bool = False  # swap width/height for a portrait source
    rotate: int = 0  # extra clockwise turn in degrees, 0-359
    rotate_auto: bool = False  # rotate="auto": turn upright even when autorotate=0
    gop: int = 0
    preset: str = ""
    profile: str = ""
    level: str = ""
    crf: int | None = None
    qpmax: int | None = None
    twopass: bool = False
    lossless: bool = False
    deinterlace: str = ""  # "", "bwdif" (every frame), "auto" (frames marked interlaced), "yadif"
    denoise: str = ""  # "", "light", "medium", "strong", "hqdn3d=a:b:c:d", "nlmeans=s"
    fieldmatch: bool = False  # inverse telecine
    rasl: int | None = None  # h265: 1 open GOPs (RASL pictures), 0 closed
    codec_params: tuple[tuple[str, str], ...] = ()
    interval_frames: int = 1  # gif/webp: keep one frame in N
    loop: int = 0  # gif/webp: 0 = forever
    final_delay: int | None = None  # gif: centiseconds
    qscale: int | None = None  # webp quality 0-100
    compression_level: int | None = None  # webp 0-6


#: Keys that change the picture or the encoding: refused with ``vcodec=copy``.
_NEEDS_ENCODE = (
    "vb", "vr", "width", "height", "shortSide", "rotate", "gop", "preset", "profile", "level",
    "crf", "qpmax", "twopass", "lossless", "deinterlace", "denoise", "fieldmatch", "rasl",
    "codecParams", "intervalframes", "qscale", "compressionlevel",
)  # fmt: skip
#: Keys of the video encoders (h264/h265/vp9): refused for gif and webp.
_ENCODER_KEYS = ("vb", "gop", "preset", "profile", "level", "crf", "qpmax", "twopass",
                 "codecParams", "rasl")  # fmt: skip
_ANIMATION_KEYS = {
    "intervalframes": ("gif", "webp"),
    "loop": ("gif", "webp"),
    "finaldelay": ("gif",),
    "qscale": ("webp",),
    "compressionlevel": ("webp",),
}
LEVELS = {
    "h264": ("1", "1b", "1.1", "1.2", "1.3", "2", "2.1", "2.2", "3", "3.1", "3.2", "4", "4.1",
             "4.2", "5", "5.1", "5.2", "6", "6.1", "6.2"),
    "h265": ("1", "2", "2.1", "3", "3.1", "4", "4.1", "5", "5.1", "5.2", "6", "6.1", "6.2"),
}  # fmt: skip
_DEINTERLACE = {"0": "", "1": "bwdif", "bwdif": "bwdif", "auto": "auto", "yadif": "yadif"}
_DENOISE_NAMES = {"0": "", "1": "light", "light": "light", "medium": "medium", "strong": "strong"}
_HQDN3D = re.compile(r"hqdn3d(?:=(\d+(?:\.\d+)?(?::\d+(?:\.\d+)?){0,3}))?")
_NLMEANS = re.compile(r"nlmeans(?:=(\d+(?:\.\d+)?))?")


#: Every VIDEO key; others are the client's own and ignored.
_KNOWN = frozenset(
    {*_NEEDS_ENCODE, *_ANIMATION_KEYS, "vcodec", "as", "orientationAdapt", "longterm", "mulVb",
     "mulRes", "mulVr"}
)  # fmt: skip


def _changes(video: Mapping[str, Any], key: str) -> bool:
    """Whether ``key`` asks for something (``width: 0``, ``twopass: 0``, ``rotate: "0"`` do not)."""
    if not given(video, key):
        return False
    value = video[key]
    if key == "rotate":
        return value == "auto" or to_number(value) % 360 != 0
    if key in ("deinterlace", "denoise", "fieldmatch") or isinstance(value, str):
        return str(value).strip() not in ("0", "")
    return bool(value)


def parse_video(path: str, video: Mapping[str, Any], container: Container) -> VideoSpec:
    f = container.name
    vn = given(video, "vn") and to_int(f"{path}.vn", video["vn"]) == 1
    asked = [key for key in video if key in _KNOWN and _changes(video, key)]
    if not container.video:
        if asked and not vn:
            raise invalid(
                f"{path}.{asked[0]}",
                f"does not apply to f={f}, which holds no video (set {path}.vn=1 or leave it out)",
            )
        return VideoSpec(codec="")
    if vn:
        return VideoSpec(codec="")
    codec = str(video["vcodec"]) if given(video, "vcodec") else container.default_video
    if codec == "copy" and container.default_video in IMPLIED:
        raise invalid(f"{path}.vcodec", f"copy cannot make f={f}: the frames are always encoded")
    if codec != "copy" and codec not in container.video:
        holds = ", ".join((*container.video, *(() if f in ("gif", "webp") else ("copy",))))
        raise invalid(f"{path}.vcodec", f"{codec} cannot go in f={f} (it holds {holds})")
    _check_keys(path, video, codec, asked)
    spec = _read(path, video, codec)
    _check_combinations(path, video, spec)
    return spec


def _check_keys(path: str, video: Mapping[str, Any], codec: str, asked: list[str]) -> None:
    if codec == "copy":
        for key in asked:
            if key in _NEEDS_ENCODE:
                raise invalid(f"{path}.{key}", "needs a re-encode: it cannot go with vcodec=copy")
    for key in asked:
        if codec in ("gif", "webp") and key in _ENCODER_KEYS:
            raise invalid(f"{path}.{key}", f"does not apply to f={codec}")
        if key in _ANIMATION_KEYS and codec not in _ANIMATION_KEYS[key]:
            formats = " and ".join(f"f={name}" for name in _ANIMATION_KEYS[key])
            raise invalid(f"{path}.{key}", f"applies only to {formats}")
    if given(video, "loop") and codec not in ("gif", "webp"):
        raise invalid(f"{path}.loop", "applies only to f=gif and f=webp")
    if given(video, "profile") and codec not in LEVELS:
        raise invalid(f"{path}.profile", f"does not apply to vcodec={codec}")
    if _changes(video, "longterm"):
        raise invalid(f"{path}.longterm", "1 is not supported: libx265 has no long-term switch")
    if given(video, "rasl") and codec != "h265":
        raise invalid(f"{path}.rasl", "applies only to vcodec=h265")


def _int(path: str, video: Mapping[str, Any], key: str) -> int | None:
    return to_int(f"{path}.{key}", video[key]) if given(video, key) else None


def _read(path: str, video: Mapping[str, Any], codec: str) -> VideoSpec:
    def num(key: str, default: int = 0) -> int:
        value = _int(path, video, key)
        return default if value is None else value

    rotate = video.get("rotate") if given(video, "rotate") else 0
    params: tuple[tuple[str, str], ...] = ()
    if given(video, "codecParams"):
        try:
            params = parse_codec_params(codec, str(video["codecParams"]))
        except ValueError as exc:
            raise invalid(f"{path}.codecParams", str(exc)) from None
    return VideoSpec(
        codec=codec,
        bitrate=parse_bitrate(video["vb"]) if given(video, "vb") else 0,
        fps=to_number(video["vr"]) if given(video, "vr") else 0.0,
        width=num("width"),
        height=num("height"),
        keep_aspect=num("as") == 1,
        short_side=num("shortSide"),
        orientation_adapt=num("orientationAdapt") == 1,
        rotate=0 if rotate == "auto" else int(to_number(rotate)) % 360,
        rotate_auto=rotate == "auto",
        gop=num("gop"),
        preset=str(video.get("preset") or ""),
        profile=str(video.get("profile") or ""),
        level=_level(path, video, codec),
        crf=_int(path, video, "crf"),
        qpmax=_int(path, video, "qpmax"),
        twopass=num("twopass") == 1,
        lossless=num("lossless") == 1,
        deinterlace=_choice(path, video, "deinterlace", _DEINTERLACE),
        denoise=_denoise(path, video),
        fieldmatch=_choice(path, video, "fieldmatch", {"0": "", "1": "1", "auto": "1"}) == "1",
        rasl=_int(path, video, "rasl"),
        codec_params=params,
        interval_frames=num("intervalframes", 1),
        loop=num("loop"),
        final_delay=_int(path, video, "finaldelay"),
        qscale=_int(path, video, "qscale"),
        compression_level=_int(path, video, "compressionlevel"),
    )


def _choice(path: str, video: Mapping[str, Any], key: str, names: dict[str, str]) -> str:
    if not given(video, key):
        return ""
    value = str(video[key]).strip()
    if value not in names:
        raise invalid(f"{path}.{key}", f"must be one of {', '.join(names)}, got {video[key]!r}")
    return names[value]


def _level(path: str, video: Mapping[str, Any], codec: str) -> str:
    if not given(video, "level"):
        return ""
    if codec not in LEVELS:
        raise invalid(f"{path}.level", f"does not apply to vcodec={codec}")
    text = str(video["level"]).strip()
    level = text[:-2] if text.endswith(".0") else text
    if level not in LEVELS[codec]:
        raise invalid(f"{path}.level", f"must be one of {', '.join(LEVELS[codec])} for {codec}")
    return level


def _denoise(path: str, video: Mapping[str, Any]) -> str:
    if not given(video, "denoise"):
        return ""
    value = str(video["denoise"]).strip()
    if value in _DENOISE_NAMES:
        return _DENOISE_NAMES[value]
    if (found := _HQDN3D.fullmatch(value)) and all(
        float(v) <= 255 for v in (found[1] or "0").split(":")
    ):
        return value
    if (found := _NLMEANS.fullmatch(value)) and 1 <= float(found[1] or 1) <= 30:
        return value
    raise invalid(
        f"{path}.denoise",
        "must be 0, 1, light, medium, strong, hqdn3d[=luma:chroma:luma_t:chroma_t] (0-255) "
        f"or nlmeans[=strength] (1-30), got {video['denoise']!r}",
    )


def _check_combinations(path: str, video: Mapping[str, Any], spec: VideoSpec) -> None:
    if spec.short_side and (spec.width or spec.height):
        side = "width" if spec.width else "height"
        raise invalid(f"{path}.shortSide", f"cannot be combined with {path}.{side}")
    if spec.twopass and spec.crf is not None:
        raise invalid(f"{path}.twopass", "cannot be combined with crf (two passes need vb)")
    if spec.twopass and not spec.bitrate:
        raise invalid(f"{path}.twopass", f"needs a target bit rate: give {path}.vb")
    if spec.lossless:
        if spec.codec == "gif":
            raise invalid(f"{path}.lossless", "does not apply to f=gif (always a palette)")
        for key in ("vb", "crf", "twopass", "qpmax", "qscale"):
            if given(video, key):
                raise invalid(f"{path}.lossless", f"cannot be combined with {path}.{key}")
        if spec.codec == "h264" and spec.profile:
            raise invalid(f"{path}.lossless", "h264 lossless needs its own profile: drop profile")
    if spec.qpmax is not None and spec.codec in LEVELS and spec.qpmax > 51:
        raise invalid(f"{path}.qpmax", f"must be between 0 and 51 for {spec.codec}")
    if spec.rasl is not None and any(key == "open-gop" for key, _ in spec.codec_params):
        raise invalid(f"{path}.codecParams", f"open-gop conflicts with {path}.rasl")
