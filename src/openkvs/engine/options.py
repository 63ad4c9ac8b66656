"""Options a client may hand straight to FFmpeg, each from an allow-list with a value check.

``VIDEO.codecParams`` (a preset key, ``k=v:k=v``) carries encoder-private options of the
encoder the preset chose: x264 and x265 settings (given to ``-x264-params`` /
``-x265-params``) and libvpx-vp9 options (given as ``-<key> <value>``). A key that has its
own preset key (``crf``, ``keyint`` …) is refused and names that key, so one setting
never has two sources.

ExtParam ``passParams`` carries muxer options of the output container and a few generic
encoder options (:data:`PASS_PARAMS`).

Every value is checked (a number in range, a name from a list, ``+``-joined flags), so
nothing that reaches the command line can hold a separator, a path or another option.
The checkers raise :class:`ValueError` with the reason; the callers turn it into 1001
(preset) or 1018 (ExtParam) naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: ``check(value) -> normalized value``; raises ValueError(reason).
Check = Callable[[str], str]
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _num(lo: float, hi: float, *, whole: bool = True) -> Check:
    def check(value: str) -> str:
        text = value.strip()
        ok = _NUMBER.fullmatch(text) is not None and (not whole or text.lstrip("+-").isdigit())
        if not ok or not lo <= float(text) <= hi:
            kind = "an integer" if whole else "a number"
            raise ValueError(f"must be {kind} between {lo:g} and {hi:g}, got {value!r}")
        return str(int(text)) if whole else text

    return check


def _names(*names: str) -> Check:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}, got {value!r}")
        return value

    return check


def _flags(*names: str) -> Check:
    """``a+b`` (a leading ``+`` allowed): each a name from ``names``."""

    def check(value: str) -> str:
        items = [item for item in value.strip().lstrip("+").split("+")]
        if not all(item in names for item in items):
            raise ValueError(f"must be +-joined flags of {', '.join(names)}, got {value!r}")
        return "+".join(items)

    return check


def _pair(lo: float, hi: float, *, whole: bool) -> Check:
    """``a,b`` (x264/x265 ``deblock`` and ``psy-rd``)."""
    one = _num(lo, hi, whole=whole)

    def check(value: str) -> str:
        parts = value.split(",")
        if len(parts) != 2:
            raise ValueError(f"must be two numbers 'a,b', got {value!r}")
        return ",".join(one(part) for part in parts)

    return check


_BOOL = _num(0, 1)

X264_PARAMS: dict[str, Check] = {
    "aq-mode": _num(0, 3),
    "aq-strength": _num(0, 3, whole=False),
    "bframes": _num(0, 16),
    "b-adapt": _num(0, 2),
    "b-pyramid": _names("none", "strict", "normal"),
    "ref": _num(1, 16),
    "me": _names("dia", "hex", "umh", "esa", "tesa"),
    "subme": _num(0, 11),
    "merange": _num(4, 64),
    "rc-lookahead": _num(0, 250),
    "scenecut": _num(0, 100),
    "min-keyint": _num(1, 1000),
    "trellis": _num(0, 2),
    "weightp": _num(0, 2),
    "deblock": _pair(-6, 6, whole=True),
    "psy-rd": _pair(0, 10, whole=False),
    "nr": _num(0, 1000),
    "qpmin": _num(0, 51),
    "chroma-qp-offset": _num(-12, 12),
    **{flag: _BOOL for flag in ("cabac", "8x8dct", "mixed-refs", "weightb", "mbtree")},
    **{flag: _BOOL for flag in ("open-gop", "fast-pskip", "dct-decimate", "psy")},
}
X265_PARAMS: dict[str, Check] = {
    "aq-mode": _num(0, 4),
    "aq-strength": _num(0, 3, whole=False),
    "bframes": _num(0, 16),
    "b-adapt": _num(0, 2),
    "b-pyramid": _BOOL,
    "ref": _num(1, 16),
    "me": _names("dia", "hex", "umh", "star", "sea", "full"),
    "subme": _num(0, 7),
    "merange": _num(0, 32768),
    "rc-lookahead": _num(0, 250),
    "scenecut": _num(0, 100),
    "min-keyint": _num(0, 1000),
    "rd": _num(1, 6),
    "ctu": _names("16", "32", "64"),
    "min-cu-size": _names("8", "16", "32"),
    "tu-intra-depth": _num(1, 4),
    "tu-inter-depth": _num(1, 4),
    "limit-refs": _num(0, 3),
    "deblock": _pair(-6, 6, whole=True),
    "psy-rd": _num(0, 5, whole=False),
    "psy-rdoq": _num(0, 50, whole=False),
    "nr-intra": _num(0, 2000),
    "nr-inter": _num(0, 2000),
    "qpmin": _num(0, 51),
    **{flag: _BOOL for flag in ("sao", "strong-intra-smoothing", "open-gop", "weightp")},
    **{flag: _BOOL for flag in ("weightb", "rect", "amp", "early-skip", "cutree")},
    "limit-modes": _BOOL,
}
VP9_OPTIONS: dict[str, Check] = {
    "deadline": _names("good", "best", "realtime"),
    "cpu-used": _num(-8, 8),
    "row-mt": _BOOL,
    "tile-columns": _num(0, 6),
    "tile-rows": _num(0, 2),
    "frame-parallel": _BOOL,
    "aq-mode": _num(0, 4),
    "lag-in-frames": _num(0, 25),
    "auto-alt-ref": _num(0, 6),
    "arnr-maxframes": _num(0, 15),
    "arnr-strength": _num(0, 6),
    "arnr-type": _num(1, 3),
    "tune-content": _names("default", "screen", "film"),
    "static-thresh": _num(0, 1_000_000),
    "undershoot-pct": _num(0, 100),
    "overshoot-pct": _num(0, 1000),
    "sharpness": _num(0, 7),
    "enable-tpl": _BOOL,
    "corpus-complexity": _num(0, 10000),
}
#: ``VIDEO.vcodec`` → (encoder, its codecParams allow-list).
CODEC_PARAMS: dict[str, tuple[str, dict[str, Check]]] = {
    "h264": ("libx264", X264_PARAMS),
    "h265": ("libx265", X265_PARAMS),
    "vp9": ("libvpx-vp9", VP9_OPTIONS),
}
#: codecParams keys that a preset key sets instead (x264/x265/libvpx spellings).
OWN_KEYS: dict[str, str] = {
    "crf": "crf",
    "qp": "crf",
    "keyint": "gop",
    "g": "gop",
    "qpmax": "qpmax",
    "qmax": "qpmax",
    "bitrate": "vb",
    "b": "vb",
    "vbv-maxrate": "vb",
    "vbv-bufsize": "vb",
    "preset": "preset",
    "profile": "profile",
    "level": "level",
    "level-idc": "level",
    "pass": "twopass",
    "stats": "twopass",
    "lossless": "lossless",
}


def parse_codec_params(codec: str, text: str) -> tuple[tuple[str, str], ...]:
    """``k=v:k=v`` for ``codec`` as checked (key, value) pairs; ValueError naming the key.

    ``codec`` must be one of :data:`CODEC_PARAMS` (the caller refuses the others)."""
    encoder, allowed = CODEC_PARAMS[codec]
    pairs: list[tuple[str, str]] = []
    for item in text.split(":"):
        key, equals, value = item.strip().partition("=")
        key = key.strip()
        if not key or not equals:
            raise ValueError(f"must be key=value items joined with ':', got {item!r}")
        if key in OWN_KEYS:
            raise ValueError(f"{key}: use Param.VIDEO.{OWN_KEYS[key]} instead")
        if key not in allowed:
            raise ValueError(
                f"{key} is not an option openkvs passes to {encoder} "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
        if any(k == key for k, _ in pairs):
            raise ValueError(f"{key} is given twice")
        try:
            pairs.append((key, allowed[key](value.strip())))
        except ValueError as exc:
            raise ValueError(f"{key} {exc}") from None
    return tuple(pairs)


@dataclass(frozen=True)
class PassParam:
    """One ExtParam ``passParams`` key: the FFmpeg option it becomes and where it applies."""

    option: str  # the command-line option, stream specifier included (``-tune:v``)
    check: Check
    formats: tuple[str, ...] = ()  # containers it applies to; () = any
    video: tuple[str, ...] = ()  # video encoders it needs (re-encode); () = none needed
    audio: tuple[str, ...] = ()  # audio encoders it needs


_MP4 = ("mp4", "mov")
_MKV = ("mkv", "webm")
_X26X = ("h264", "h265")
PASS_PARAMS: dict[str, PassParam] = {
    "max_muxing_queue_size": PassParam("-max_muxing_queue_size", _num(1, 10_000_000)),
    "avoid_negative_ts": PassParam(
        "-avoid_negative_ts", _names("auto", "make_non_negative", "make_zero", "disabled")
    ),
    "max_interleave_delta": PassParam("-max_interleave_delta", _num(0, 100_000_000)),
    "movflags": PassParam(
        "-movflags",
        _flags(
            "faststart",
            "frag_keyframe",
            "empty_moov",
            "default_base_moof",
            "separate_moof",
            "omit_tfhd_offset",
            "disable_chpl",
            "negative_cts_offsets",
            "write_colr",
            "write_gama",
            "dash",
            "cmaf",
            "global_sidx",
            "skip_sidx",
            "use_metadata_tags",
        ),
        _MP4,
    ),
    "frag_duration": PassParam("-frag_duration", _num(0, 3_600_000_000), _MP4),
    "min_frag_duration": PassParam("-min_frag_duration", _num(0, 3_600_000_000), _MP4),
    "use_editlist": PassParam("-use_editlist", _BOOL, _MP4),
    "mpegts_flags": PassParam(
        "-mpegts_flags",
        _flags("resend_headers", "latm", "pat_pmt_at_frames", "system_b", "initial_discontinuity"),
        ("mpegts",),
    ),
    "mpegts_service_id": PassParam("-mpegts_service_id", _num(1, 65535), ("mpegts",)),
    "mpegts_pmt_start_pid": PassParam("-mpegts_pmt_start_pid", _num(32, 8186), ("mpegts",)),
    "mpegts_start_pid": PassParam("-mpegts_start_pid", _num(32, 3840), ("mpegts",)),
    "muxrate": PassParam("-muxrate", _num(0, 1_000_000_000), ("mpegts",)),
    "pcr_period": PassParam("-pcr_period", _num(0, 1000), ("mpegts",)),
    "flvflags": PassParam(
        "-flvflags",
        _flags(
            "aac_seq_header_detect",
            "no_sequence_end",
            "no_metadata",
            "no_duration_filesize",
            "add_keyframe_index",
        ),
        ("flv",),
    ),
    # HLS (f=hls): segment container, playlist type, and the flags that keep every segment
    # starting on a keyframe and every file in the package folder (engine/hls.py).
    "hls_segment_type": PassParam("-hls_segment_type", _names("mpegts", "fmp4"), ("hls",)),
    "hls_playlist_type": PassParam("-hls_playlist_type", _names("vod", "event"), ("hls",)),
    "hls_flags": PassParam(
        "-hls_flags",
        _flags(
            "single_file",
            "independent_segments",
            "program_date_time",
            "round_durations",
            "discont_start",
            "temp_file",
        ),
        ("hls",),
    ),
    "cluster_size_limit": PassParam("-cluster_size_limit", _num(0, 1 << 30), _MKV),
    "cluster_time_limit": PassParam("-cluster_time_limit", _num(0, 3_600_000), _MKV),
    "reserve_index_space": PassParam("-reserve_index_space", _num(0, 1 << 30), _MKV),
    "write_crc32": PassParam("-write_crc32", _BOOL, _MKV),
    "tune": PassParam(
        "-tune:v",
        _names(
            "film",
            "animation",
            "grain",
            "stillimage",
            "fastdecode",
            "zerolatency",
            "psnr",
            "ssim",
        ),
        video=_X26X,
    ),
    "bf": PassParam("-bf:v", _num(0, 16), video=_X26X),
    "refs": PassParam("-refs:v", _num(1, 16), video=_X26X),
    "keyint_min": PassParam("-keyint_min:v", _num(1, 1000), video=_X26X),
    "sc_threshold": PassParam("-sc_threshold:v", _num(0, 100), video=("h264",)),
    "cutoff": PassParam("-cutoff:a", _num(0, 20000), audio=("aac", "mp3", "opus")),
    "application": PassParam(
        "-application:a", _names("voip", "audio", "lowdelay"), audio=("opus",)
    ),
    "vbr": PassParam("-vbr:a", _names("on", "off", "constrained"), audio=("opus",)),
    "compression_level": PassParam("-compression_level:a", _num(0, 12), audio=("flac",)),
}
#: x265 refuses these tune names; x264 has all of them.
X265_TUNES = ("psnr", "ssim", "grain", "zerolatency", "fastdecode", "animation")
