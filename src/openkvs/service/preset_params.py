"""What a preset's ``Param`` may contain, per ``PresetType`` (spec §3).

Pure functions, no storage: the preset service calls :func:`canonical_type`,
:func:`parse_param` and :func:`validate_param` before it stores anything. Validation only
judges; it never rewrites ``Param`` -- the client's object is stored and echoed as sent
(spec §3.1), so the executor re-reads values with :mod:`openkvs.service.param_values`.

Conventions (spec §1.3, §3.1): numbers may be numeric strings, bit rates take ``k``/``kb``/
``m``/``mb`` suffixes, ``None`` or ``""`` means "not given", keys are case-sensitive except
that the top-level ``VIDEO``/``AUDIO``/``LOGOS``/``IMAGE`` may be lower case, and unknown keys
are accepted and ignored. Every wrong value is ``1001`` with ``"<path> <reason>"``.

Reserved names (the ``audiowave`` preset ``wave``) are the preset service's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openkvs.engine.formats import FORMATS
from openkvs.errors import ApiError, invalid, missing
from openkvs.kinds import PRESET_TYPES, kind_of_preset
from openkvs.service import json_input
from openkvs.service.param_values import (
    DIMENSION,
    FLAG,
    bitrate,
    choice,
    comma_list,
    image_location,
    int_choice,
    integer,
    number,
    parse_bitrate,
    parse_time,
    pixels_or_fraction,
    resolution,
    rotation,
    split_list,
    text,
    time_point,
)
from openkvs.service.params import given

__all__ = [
    "AVTRANS_FORMATS",
    "IMAGE_FORMATS",
    "PRESET_TYPES",
    "canonical_type",
    "parse_bitrate",
    "parse_param",
    "parse_time",
    "validate_param",
]

Schema = Mapping[str, Any]  # key -> param_values rule

#: ``avtrans`` containers (``engine/formats.py`` has what each holds).
AVTRANS_FORMATS = FORMATS
IMAGE_FORMATS = ("jpg", "png", "webp")
REFER_POSITIONS = ("TopLeft", "TopRight", "BottomLeft", "BottomRight")
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
VIDEO_PROFILES = {"h264": ("baseline", "main", "high"), "h265": ("main", "main10")}
MUL_KEYS = ("mulVb", "mulRes", "mulVr")

_VIDEO_BITRATE = bitrate(100_000, 10_000_000)
_FRAME_RATE = number(1, 120)
_AUDIO_BITRATE = bitrate(20_000, 320_000)

_VIDEO: Schema = {
    "vcodec": choice("h264", "h265", "vp9", "copy", "gif", "webp"),
    "vb": _VIDEO_BITRATE,
    "vr": _FRAME_RATE,
    "width": DIMENSION,
    "height": DIMENSION,
    "shortSide": DIMENSION,
    "as": FLAG,
    "vn": FLAG,
    "orientationAdapt": FLAG,
    "twopass": FLAG,
    "lossless": FLAG,
    "longterm": FLAG,
    "rasl": FLAG,
    "rotate": rotation,
    "gop": integer(1),
    "crf": integer(0, 51),
    "qpmax": integer(0, 63),
    "qscale": integer(0, 100),
    "preset": choice(*X264_PRESETS),
    "level": text,
    "compressionlevel": integer(0, 6),
    "intervalframes": integer(1),
    "loop": integer(0),
    "finaldelay": integer(0),
    "denoise": text,
    "deinterlace": text,
    "fieldmatch": text,
    "codecParams": text,
    "mulVb": comma_list(_VIDEO_BITRATE),
    "mulRes": comma_list(resolution),
    "mulVr": comma_list(_FRAME_RATE),
}

_AUDIO: Schema = {
    "acodec": choice("aac", "mp3", "copy", "flac", "opus"),
    "ab": _AUDIO_BITRATE,
    "ar": integer(8000, 96000),
    "channels": int_choice(1, 2, 6),
    "an": FLAG,
    "profile": choice("aac_low", "aac_he", "aac_he_v2"),
    "aacheCompatible": FLAG,
    "resampler": choice("swr", "soxr"),
    "mulAb": comma_list(_AUDIO_BITRATE),
}

_NON_NEGATIVE = integer(0)
_AVTRANS: Schema = {
    "f": choice(*AVTRANS_FORMATS),
    "mulrate": FLAG,
    "intelligentSwitch": int_choice(0, 1, 2),
    "clearmeta": FLAG,
    "autorotate": FLAG,
    "hls_time": _NON_NEGATIVE,
    "segment_time": _NON_NEGATIVE,
    "start_segment_num": _NON_NEGATIVE,
    "start_segment_time": _NON_NEGATIVE,
    "segfile_acl": choice("private", "public-read"),
    "ss": time_point,
}
_CLIP: Schema = {"ss": time_point, "duration": time_point}
_ZD_PARAMS: Schema = {"video_tpye": int_choice(0, 1, 2, 3)}

_LOGO_SOURCES = ("url", "pic", "pic_url")
_LOGO: Schema = {
    "logotype": choice("image", "gif"),
    "referPos": choice(*REFER_POSITIONS),
    "dx": pixels_or_fraction,
    "dy": pixels_or_fraction,
    "width": pixels_or_fraction,
    "height": pixels_or_fraction,
    "opacity": number(0, 1),
    "ss": number(0),
    "duration": number(0),
    "loop": FLAG,
    "disable_scale": FLAG,
    "optimal_w": DIMENSION,
    "optimal_h": DIMENSION,
    "shortSide": DIMENSION,
    "offsetX": _NON_NEGATIVE,
    "offsetY": _NON_NEGATIVE,
}
_IMAGE_SOURCES = ("logoUrl", "pic")
_IMAGE_ITEM: Schema = {"offsetX": number(0), "offsetY": number(0), "shortSide": DIMENSION}

SNAPSHOT: Schema = {
    "f": choice(*IMAGE_FORMATS),
    "width": DIMENSION,
    "height": DIMENSION,
    "shortSide": DIMENSION,
    "ss": time_point,
}
SAMPLE: Schema = {
    **SNAPSHOT,
    "interval": integer(1),
    "spriteflag": FLAG,
    "spritew": integer(1),
    "spriteh": integer(1),
}
AUDIOWAVE: Schema = {"points": integer(1, 4095)}


def canonical_type(preset_type: object) -> str:
    """The task kind a ``PresetType`` makes: ``avop``/``avm3u8`` -> ``avtrans``.

    ``avlogo`` stays ``avlogo`` (a logo-only chain stage, spec §3.4.4). Anything that is not
    exactly (case-sensitively) one of :data:`PRESET_TYPES` is ``1015``.
    """
    return kind_of_preset(preset_type).name


def parse_param(raw: object) -> dict[str, Any]:
    """``Param`` as an object, or a JSON string holding an object (spec §2.1 [INF]).

    Absent (``None``/``""``) is ``1000``; anything else that is not an object is ``1001``, and
    so is a text beyond the limits of ``service/json_input.py`` or any lone surrogate (the
    object is stored and answered as UTF-8).
    """
    if raw is None or raw == "":
        raise missing("Param")
    if isinstance(raw, str):
        try:
            raw = json_input.parse(raw, "the text")
        except ApiError as exc:
            why = f"must be an object or a JSON string holding one ({exc.detail})"
            raise invalid("Param", why) from None
    if not isinstance(raw, dict):
        raise invalid("Param", "must be an object or a JSON string holding one")
    if json_input.tree_has_lone_surrogate(raw):
        raise invalid("Param", "contains a lone UTF-16 surrogate")
    return raw


def validate_param(preset_type: str, param: dict[str, Any]) -> Any:
    """Parse ``param`` for ``preset_type`` (aliases allowed) into its frozen spec
    (``openkvs.presets``); ``1001`` naming the key when a value is wrong."""
    kind = kind_of_preset(preset_type)
    if not isinstance(param, Mapping):
        raise invalid("Param", "must be an object")
    return kind.parse(param)


def check_fields(path: str, obj: Mapping[str, Any], schema: Schema) -> None:
    for key, rule in schema.items():
        if given(obj, key):
            rule(f"{path}.{key}", obj[key])


def _object(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(path, f"must be an object, got {value!r}")
    return value


def _array(path: str, value: Any, of: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(path, f"must be an array of {of}, got {value!r}")
    return value


def section(param: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    """(path as the client spelled it, value) of ``VIDEO``/``video`` etc.; both at once is 1001."""
    spellings = [key for key in (name, name.lower()) if given(param, key)]
    if len(spellings) == 2:
        raise invalid(f"Param.{name.lower()}", f"conflicts with Param.{name}; give only one")
    return (f"Param.{spellings[0]}", param[spellings[0]]) if spellings else None


def check_avtrans(param: Mapping[str, Any]) -> None:
    if not given(param, "f"):
        raise invalid("Param.f", "is required")
    check_fields("Param", param, _AVTRANS)
    f = param["f"]
    if f != "dash" and given(param, "mulrate") and int(param["mulrate"]) == 1:
        raise invalid("Param.mulrate", f"may be 1 only with f=dash, got f={f!r}")
    if video := section(param, "VIDEO"):
        _check_video(video[0], _object(*video))
    if audio := section(param, "AUDIO"):
        check_fields(audio[0], _object(*audio), _AUDIO)
    _check_mul(param, video, audio)
    for key, schema in (("CLIP", _CLIP), ("zdParams", _ZD_PARAMS)):
        if given(param, key):
            check_fields(f"Param.{key}", _object(f"Param.{key}", param[key]), schema)
    _count_logos(param)


def _check_video(path: str, video: Mapping[str, Any]) -> None:
    check_fields(path, video, _VIDEO)
    codec = video.get("vcodec") or "h264"
    profiles = VIDEO_PROFILES.get(codec)
    if profiles and given(video, "profile") and video["profile"] not in profiles:
        raise invalid(f"{path}.profile", f"must be one of {', '.join(profiles)} for {codec}")
    # DASH renditions: a one-item list applies to every rendition; longer lists must agree.
    counts = {key: len(split_list(video[key])) for key in MUL_KEYS if given(video, key)}
    counts = {key: count for key, count in counts.items() if count > 1}
    first = next(iter(counts), None)
    for key, count in counts.items():
        if first is not None and count != counts[first]:
            raise invalid(
                f"{path}.{key}",
                f"must have as many items as {first} ({counts[first]}), got {count}",
            )


def _check_mul(
    param: Mapping[str, Any], video: tuple[str, Any] | None, audio: tuple[str, Any] | None
) -> None:
    """``mulrate=1`` needs at least one ``mul*`` list (``AUDIO.mulAb`` is a list of audio
    representations of its own: its length is free)."""
    if not given(param, "mulrate") or int(param["mulrate"]) != 1:
        return
    found = [
        key
        for section_found, keys in ((video, MUL_KEYS), (audio, ("mulAb",)))
        if section_found is not None
        for key in keys
        if given(section_found[1], key)
    ]
    if not found:
        raise invalid("Param.mulrate", "needs VIDEO.mulVb, mulRes or mulVr (or AUDIO.mulAb)")


def check_avlogo(param: Mapping[str, Any]) -> int:
    """Check an avlogo preset's logos; how many there are (at least one)."""
    if section(param, "LOGOS") is None and section(param, "IMAGE") is None:
        raise invalid("Param.LOGOS", "is required for an avlogo preset (or Param.IMAGE)")
    count = _count_logos(param)
    if count == 0:
        raise invalid("Param.LOGOS", "must contain at least one logo")
    return count


def _count_logos(param: Mapping[str, Any]) -> int:
    """Validate ``LOGOS`` (array of tracks of logos) and ``IMAGE``; how many logos they hold."""
    count = 0
    if logos := section(param, "LOGOS"):
        path = logos[0]
        for i, track in enumerate(_array(path, logos[1], "arrays of logo objects")):
            for j, logo in enumerate(_array(f"{path}[{i}]", track, "logo objects")):
                _check_logo(f"{path}[{i}][{j}]", _object(f"{path}[{i}][{j}]", logo))
                count += 1
    if image := section(param, "IMAGE"):
        path = image[0]
        for i, item in enumerate(_array(path, image[1], "objects")):
            item_path = f"{path}[{i}]"
            _check_image_source(item_path, _object(item_path, item), _IMAGE_SOURCES)
            check_fields(item_path, item, _IMAGE_ITEM)
            count += 1
    return count


def _check_logo(path: str, logo: Mapping[str, Any]) -> None:
    _check_image_source(path, logo, _LOGO_SOURCES)
    check_fields(path, logo, _LOGO)


def _check_image_source(path: str, item: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """The first of ``keys`` that is given must locate the image; one of them is required."""
    key = next((key for key in keys if given(item, key)), None)
    if key is None:
        raise invalid(f"{path}.{keys[0]}", "is required")
    image_location(f"{path}.{key}", item[key])
