"""A task's ExtParam for ``avtrans`` (spec §3.8) → :class:`AvtransOptions`.

Read at CreateTask, in this order: shapes this openkvs cannot run yet are refused with
``ApiError(1015)`` (a per-task format, HLS or DASH of several sources); then
each value, ``1018`` naming it when its type or range is wrong (the sources and their keys:
``presets/avtrans_sources.py``). Unknown keys are ignored.
``Callback.progress_cburl`` itself was checked with the submission (the callback address
rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openkvs.engine.formats import CONTAINERS
from openkvs.engine.hls_key import HlsKey, parse_key
from openkvs.engine.loudnorm import I_RANGE, LRA_RANGE, TP_RANGE, LoudnessTarget
from openkvs.engine.options import PASS_PARAMS, X265_TUNES
from openkvs.errors import ApiError
from openkvs.presets.avtrans_sources import read_sources
from openkvs.presets.logos import LogoSpec, check_count, ext_tracks, preset_tracks
from openkvs.service.param_values import parse_time, to_number

if TYPE_CHECKING:
    from openkvs.presets.avtrans import AvtransSpec

#: The longest ``ss``/``duration``: 50 hours, the longest source a task may have.
MAX_SECONDS = 50 * 3600
VOL_PERCENT = (0, 1000)
VOL_DB = (-60.0, 60.0)
PROGRESS_INTERVAL = (1, 3600)


@dataclass(frozen=True)
class AvtransOptions:
    """A task's ExtParam for avtrans (spec §3.8), checked."""

    ss: float | None = None  # seconds; wins over the preset's CLIP.ss
    duration: float | None = None  # seconds; wins over CLIP.duration
    vol_percent: int | None = None
    vol_db: float | None = None  # wins over vol_percent
    pass_params: dict[str, str] | None = None  # passParams key -> checked value
    progress_url: str = ""
    progress_interval: float = 10.0  # seconds between progress callbacks
    loudnorm: LoudnessTarget | None = None  # two-pass loudness normalisation (our addition)
    segment_filename: str = ""  # segment mode: the files' name pattern (engine/segments.py)
    #: Several sources (presets/avtrans_sources.py): the master video's SrcInfo.index
    #: (None: the first video), mixing the audio source in, burned or soft subtitles.
    master_index: int | None = None
    audio_mix: bool = False
    subtitle_mode: str = "burn"
    mul_hls_rate: bool = False  # f=hls: the renditions of engine/ladder.py and a master playlist
    hls_key: HlsKey | None = None  # f=hls: AES-128 encryption (engine/hls_key.py)
    #: ExtParam LOGOS (presets/logos.py): replaces the preset's watermarks (None: keep them).
    logos: tuple[tuple[LogoSpec, ...], ...] | None = None


def _given(ext: Mapping[str, Any], key: str) -> bool:
    return ext.get(key) not in (None, "")


def several_renditions(spec: AvtransSpec, ext: Mapping[str, Any]) -> str:
    """What makes the output several renditions from one decode (``mulHlsRate=1`` with
    ``f=hls``, ``mulrate=1`` with ``f=dash``), or "": such outputs take one source and no
    watermark (each rendition would need the whole composition again)."""
    if spec.f == "hls" and ext.get("mulHlsRate") in (1, "1"):
        return "ExtParam mulHlsRate=1"
    if spec.f == "dash" and spec.mul.enabled:
        return "f=dash with mulrate=1"
    return ""


def refuse_unrunnable(
    spec: AvtransSpec, ext: Mapping[str, Any], sources: list[dict[str, Any]]
) -> None:
    """1015 for what a later openkvs will run but this one cannot."""

    def cannot(what: str) -> ApiError:
        return ApiError(1015, f"{what} cannot run on this openkvs yet")

    if not CONTAINERS[spec.f].runs:
        raise cannot(f"f={spec.f}")
    if several_renditions(spec, ext) and len(sources) > 1:
        raise cannot(f"{several_renditions(spec, ext)} of {len(sources)} sources")
    if _given(ext, "f") and ext["f"] != spec.f:
        raise cannot(f"ExtParam f={ext['f']!r} (a per-task output format)")


def read_options(
    spec: AvtransSpec, ext: Mapping[str, Any], sources: list[dict[str, Any]]
) -> AvtransOptions:
    refuse_unrunnable(spec, ext, sources)
    vol_percent = _number(ext, "vol_percent", VOL_PERCENT, whole=True)
    vol_db = _number(ext, "vol_dB", VOL_DB, whole=False)
    if (vol_percent is not None or vol_db is not None) and spec.audio.codec in ("", "copy"):
        name = "vol_dB" if vol_db is not None else "vol_percent"
        why = "the preset copies the audio" if spec.audio.codec else "the output has no audio"
        raise ApiError(1018, f"ExtParam {name} needs re-encoded audio: {why}")
    loudnorm = _loudnorm(spec, ext.get("loudnorm"))
    _master_index(ext, sources)
    joined = read_sources(spec, ext, sources)
    url, interval = _callback(ext)
    return AvtransOptions(
        ss=_seconds(ext, "ss", positive=False),
        duration=_seconds(ext, "duration", positive=True),
        vol_percent=int(vol_percent) if vol_percent is not None else None,
        vol_db=vol_db,
        pass_params=_pass_params(spec, ext.get("passParams")),
        progress_url=url,
        progress_interval=interval,
        loudnorm=loudnorm,
        segment_filename=_segment_filename(spec, ext),
        logos=_logos(spec, ext),
        mul_hls_rate=_mul_hls_rate(spec, ext),
        hls_key=_hls_key(spec, ext),
        master_index=joined.master_index,
        audio_mix=joined.audio_mix,
        subtitle_mode=joined.subtitle_mode,
    )


def _logos(spec: AvtransSpec, ext: Mapping[str, Any]) -> tuple[tuple[LogoSpec, ...], ...] | None:
    """ExtParam ``LOGOS`` (``presets/logos.py``, 1018 naming the key), which replaces the
    preset's watermarks; 1015 for watermarks on an output that cannot carry them yet."""
    override = ext_tracks(ext)
    if override and spec.video.codec in ("", "copy"):
        why = "the preset copies the video" if spec.video.codec else "the output has no video"
        raise ApiError(1018, f"ExtParam LOGOS needs re-encoded video: {why}")
    tracks = override if override is not None else preset_tracks(spec.logos, spec.image)
    check_count(tracks)
    if tracks and several_renditions(spec, ext):
        what = several_renditions(spec, ext)
        raise ApiError(1015, f"a watermark with {what} cannot run on this openkvs yet")
    return override


def _segment_filename(spec: AvtransSpec, ext: Mapping[str, Any]) -> str:
    """ExtParam ``segment_filename`` of a segment-mode or ``f=hls`` task, checked (1018)."""
    packaged = spec.f == "hls" or spec.segment.segment_time > 0
    if not packaged or not _given(ext, "segment_filename"):
        return ""
    from openkvs.engine.segments import check_pattern  # engine imports presets

    return check_pattern(ext["segment_filename"])


def _mul_hls_rate(spec: AvtransSpec, ext: Mapping[str, Any]) -> bool:
    """ExtParam ``mulHlsRate``: 0 or 1; 1 only with ``f=hls`` and a re-encoded video."""
    if not _given(ext, "mulHlsRate") or ext["mulHlsRate"] in (0, "0"):
        return False
    if ext["mulHlsRate"] not in (1, "1"):
        raise ApiError(1018, f"ExtParam mulHlsRate must be 0 or 1, got {ext['mulHlsRate']!r:.20}")
    if spec.f != "hls":
        raise ApiError(1018, f"ExtParam mulHlsRate=1 needs f=hls, the preset has f={spec.f}")
    if spec.video.codec in ("", "copy"):
        why = "copies the video" if spec.video.codec else "has no video"
        raise ApiError(1018, f"ExtParam mulHlsRate=1 needs re-encoded video: the preset {why}")
    if spec.video.twopass:
        raise ApiError(1015, "ExtParam mulHlsRate=1 with VIDEO.twopass cannot run on this openkvs")
    return True


def _hls_key(spec: AvtransSpec, ext: Mapping[str, Any]) -> HlsKey | None:
    """ExtParam ``hlsKey`` (``engine/hls_key.py``): only with ``f=hls`` in MPEG-TS segments."""
    key = parse_key(ext.get("hlsKey"))
    if key is None:
        return None
    if spec.f != "hls":
        raise ApiError(1018, f"ExtParam hlsKey needs f=hls, the preset has f={spec.f}")
    passed = ext.get("passParams")
    if isinstance(passed, Mapping) and passed.get("hls_segment_type") == "fmp4":
        raise ApiError(1015, "ExtParam hlsKey with fMP4 segments cannot run on this openkvs")
    return key


def _loudnorm(spec: AvtransSpec, raw: Any) -> LoudnessTarget | None:
    """ExtParam ``loudnorm`` (an openkvs addition): ``{"I": .., "TP": .., "LRA": ..}``,
    each in the range ffmpeg's loudnorm accepts, a missing key its default; 1018 when the
    output has no re-encoded audio."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, Mapping):
        raise ApiError(1018, 'ExtParam loudnorm must be an object {"I": .., "TP": .., "LRA": ..}')
    if spec.audio.codec in ("", "copy"):
        why = "the preset copies the audio" if spec.audio.codec else "the output has no audio"
        raise ApiError(1018, f"ExtParam loudnorm needs re-encoded audio: {why}")
    if spec.segment.segment_time > 0 or spec.f in ("hls", "dash"):
        what = f"f={spec.f}" if spec.f in ("hls", "dash") else "segment mode"
        raise ApiError(1015, f"ExtParam loudnorm with {what} cannot run on this openkvs yet")
    default = LoudnessTarget()
    values = {}
    for key, bounds in (("I", I_RANGE), ("TP", TP_RANGE), ("LRA", LRA_RANGE)):
        value = _number(raw, key, bounds, whole=False, name=f"ExtParam loudnorm.{key}")
        values[key.lower()] = value if value is not None else getattr(default, key.lower())
    return LoudnessTarget(**values)


def _seconds(ext: Mapping[str, Any], key: str, *, positive: bool) -> float | None:
    if not _given(ext, key):
        return None
    try:
        seconds = parse_time(ext[key])
    except ValueError:
        raise ApiError(
            1018, f"ExtParam {key} must be seconds or HH:MM:SS[.mmm], got {ext[key]!r:.40}"
        ) from None
    if positive and seconds == 0:
        raise ApiError(1018, f"ExtParam {key} must be more than 0 seconds")
    if seconds > MAX_SECONDS:
        raise ApiError(1018, f"ExtParam {key} must be at most {MAX_SECONDS} seconds")
    return seconds


def _number(
    ext: Mapping[str, Any], key: str, bounds: tuple[float, float], *, whole: bool, name: str = ""
) -> float | None:
    if not _given(ext, key):
        return None
    name = name or f"ExtParam {key}"
    lo, hi = bounds
    try:
        value = to_number(ext[key])
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi or (whole and not value.is_integer()):
        kind = "an integer" if whole else "a number"
        raise ApiError(1018, f"{name} must be {kind} from {lo:g} to {hi:g}")
    return value


def _master_index(ext: Mapping[str, Any], sources: list[dict[str, Any]]) -> None:
    if not _given(ext, "masterSrcIndex"):
        return
    indexes = [src.get("index") for src in sources]
    try:
        index = to_number(ext["masterSrcIndex"])
    except ValueError:
        index = None
    if index not in indexes:
        raise ApiError(
            1018, f"ExtParam masterSrcIndex must be the index of a SrcInfo item {indexes}"
        )


def _callback(ext: Mapping[str, Any]) -> tuple[str, float]:
    callback = ext.get("Callback")
    if callback in (None, ""):
        return "", 10.0
    if not isinstance(callback, Mapping):
        raise ApiError(1018, "ExtParam.Callback must be an object")
    url = callback.get("progress_cburl") or ""
    if not isinstance(url, str):
        raise ApiError(1018, "ExtParam.Callback.progress_cburl must be a string")
    method = callback.get("progress_cbmethod")
    if method not in (None, "") and (
        not isinstance(method, str) or method.upper() not in ("POST", "GET")
    ):
        raise ApiError(1018, "ExtParam.Callback.progress_cbmethod must be POST or GET")
    name = "ExtParam.Callback.progress_interval"
    interval = _number(callback, "progress_interval", PROGRESS_INTERVAL, whole=True, name=name)
    return url, float(interval) if interval is not None else 10.0


def _pass_params(spec: AvtransSpec, raw: Any) -> dict[str, str] | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, Mapping):
        raise ApiError(1018, "ExtParam passParams must be an object of option: value")
    checked: dict[str, str] = {}
    for key, value in raw.items():
        name = f"ExtParam passParams.{key}"
        rule = PASS_PARAMS.get(key)
        if rule is None:
            allowed = ", ".join(sorted(PASS_PARAMS))
            raise ApiError(1018, f"{name} is not an option openkvs passes (allowed: {allowed})")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ApiError(1018, f"{name} must be a string")
        if rule.formats and spec.f not in rule.formats:
            raise ApiError(1018, f"{name} applies only to f={', '.join(rule.formats)}")
        for kind, codecs, codec in (
            ("video", rule.video, spec.video.codec),
            ("audio", rule.audio, spec.audio.codec),
        ):
            if codecs and codec not in codecs:
                raise ApiError(1018, f"{name} needs {kind} encoded as {' or '.join(codecs)}")
        try:
            checked[key] = rule.check(str(value))
        except ValueError as exc:
            raise ApiError(1018, f"{name} {exc}") from None
        if key == "tune" and spec.video.codec == "h265" and checked[key] not in X265_TUNES:
            raise ApiError(1018, f"{name} must be one of {', '.join(X265_TUNES)} for h265")
    return checked or None
