"""Encoder arguments of an ``avtrans`` task: the video and audio codecs, rate control, the
two passes, and the audio filters (volume, resampler).

Pure. Rate control per video codec (``vb`` is bits/s, ``crf`` 0–51):

==================  ====================================  ===============================
preset keys         h264 (libx264) / h265 (libx265)       vp9 (libvpx-vp9)
==================  ====================================  ===============================
neither             the encoder's default CRF (23 / 28)   ``-crf 32 -b:v 0``
``vb``              ``-b:v vb`` (average bit rate)        ``-b:v vb``
``crf``             ``-crf N``                            ``-crf N -b:v 0``
``crf`` + ``vb``    ``-crf N -maxrate vb -bufsize 2*vb``  ``-crf N -b:v vb`` (capped CRF)
``lossless``        ``-qp 0`` / ``lossless=1``            ``-lossless 1``
==================  ====================================  ===============================
"""

from __future__ import annotations

from dataclasses import replace

from openkvs.engine.formats import AUDIO_ENCODERS, FDK_AAC, SAMPLE_RATES, VIDEO_ENCODERS
from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec, VideoSpec

#: ``VIDEO.preset`` → libvpx-vp9 ``-cpu-used`` (with ``-deadline good``); absent = medium.
VP9_SPEED = {
    "ultrafast": 5, "superfast": 5, "veryfast": 4, "faster": 4, "fast": 3, "medium": 2,
    "slow": 1, "slower": 0, "veryslow": 0, "placebo": 0,
}  # fmt: skip
#: The default CRF of libvpx-vp9 when a preset gives neither ``vb`` nor ``crf``.
VP9_DEFAULT_CRF = 32


def _escape(value: str) -> str:
    """A value inside ``-x265-params`` (``:`` separates items, ``\\`` escapes)."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def capped_video(spec: VideoSpec, source_bitrate: int, switch: int) -> VideoSpec:
    """``vb`` judged by ``intelligentSwitch`` against the source's video bit rate."""
    if not (switch and spec.bitrate and source_bitrate and spec.bitrate > source_bitrate):
        return spec
    if switch == 1:
        raise TaskError(
            2049,
            f"vb {spec.bitrate} is above the source's {source_bitrate} bits/s "
            "(intelligentSwitch=1)",
        )
    return replace(spec, bitrate=source_bitrate)


def video_args(v: VideoSpec, *, passno: int = 0, passlog: str = "") -> list[str]:
    """``-c:v`` and its options; ``passno`` 1 or 2 for a two-pass encode (logs at
    ``passlog``, a path prefix)."""
    if v.codec == "copy":
        return ["-c:v", "copy"]
    args = ["-c:v", VIDEO_ENCODERS[v.codec]]
    if v.codec == "gif":
        return args
    if v.codec == "webp":
        if v.lossless:
            args += ["-lossless", "1"]
        if v.qscale is not None:
            args += ["-q:v", str(v.qscale)]
        if v.compression_level is not None:
            args += ["-compression_level:v", str(v.compression_level)]
        return args
    if v.codec == "vp9":
        return args + _vp9(v, passno, passlog)
    return args + _x26x(v, passno, passlog)


def _x26x(v: VideoSpec, passno: int, passlog: str) -> list[str]:
    h265 = v.codec == "h265"
    args: list[str] = []
    params: list[tuple[str, str]] = [("log-level", "error")] if h265 else []
    if v.lossless:
        if h265:
            params.append(("lossless", "1"))
        else:
            args += ["-qp", "0"]
    elif v.crf is not None:
        args += ["-crf", str(v.crf)]
        if v.bitrate:
            args += ["-maxrate", str(v.bitrate), "-bufsize", str(2 * v.bitrate)]
    elif v.bitrate:
        args += ["-b:v", str(v.bitrate)]
    if v.qpmax is not None:
        if h265:
            params.append(("qpmax", str(v.qpmax)))
        else:
            args += ["-qmax", str(v.qpmax)]
    if v.gop:
        args += ["-g", str(v.gop)]
    if v.preset:
        args += ["-preset", v.preset]
    if v.profile:
        args += ["-profile:v", v.profile]
    if v.level:
        if h265:
            params.append(("level-idc", v.level))
        else:
            args += ["-level:v", v.level]
    if v.rasl is not None:
        params.append(("open-gop", str(v.rasl)))
    if passno and h265:
        params += [("pass", str(passno)), ("stats", _escape(passlog + "-x265.log"))]
    elif passno:
        args += ["-pass", str(passno), "-passlogfile", passlog]
    if v.profile == "main10":
        args += ["-pix_fmt", "yuv420p10le"]
    elif not v.lossless:
        args += ["-pix_fmt", "yuv420p"]
    params += list(v.codec_params)
    if params:
        args += [
            "-x265-params" if h265 else "-x264-params",
            ":".join(f"{k}={x}" for k, x in params),
        ]
    return args


def _vp9(v: VideoSpec, passno: int, passlog: str) -> list[str]:
    args: list[str] = []
    if v.lossless:
        args += ["-lossless", "1"]
    elif v.crf is not None or not v.bitrate:
        crf = v.crf if v.crf is not None else VP9_DEFAULT_CRF
        args += ["-crf", str(crf), "-b:v", str(v.bitrate)]
    else:
        args += ["-b:v", str(v.bitrate)]
    if v.qpmax is not None:
        args += ["-qmax", str(v.qpmax)]
    if v.gop:
        args += ["-g", str(v.gop)]
    args += ["-deadline", "good", "-cpu-used", str(VP9_SPEED[v.preset or "medium"]), "-row-mt", "1"]
    if passno:
        args += ["-pass", str(passno), "-passlogfile", passlog]
    if not v.lossless:
        args += ["-pix_fmt", "yuv420p"]
    for key, value in v.codec_params:
        args += [f"-{key}", value]
    return args


def audio_filters(spec: AvtransSpec, options: AvtransOptions) -> list[str]:
    chain: list[str] = []
    if options.vol_db is not None:
        chain.append(f"volume={options.vol_db:g}dB")
    elif options.vol_percent is not None:
        chain.append(f"volume={options.vol_percent / 100:g}")
    if spec.audio.resampler == "soxr":
        # Last in the chain: the format the encoder needs is negotiated into this filter,
        # so every rate and layout conversion is made by it.
        chain.append("aresample=resampler=soxr")
    return chain


def audio_args(spec: AvtransSpec, source_rate: int) -> list[str]:
    a = spec.audio
    if a.codec == "copy":
        return ["-c:a", "copy"]
    he = a.profile in ("aac_he", "aac_he_v2")
    args = ["-c:a", FDK_AAC if he else AUDIO_ENCODERS[a.codec]]
    if a.profile:
        args += ["-profile:a", a.profile]
    if he and a.he_compatible:
        args += ["-signaling", "implicit"]
    if a.bitrate:
        args += ["-b:a", str(a.bitrate)]
    rate = a.sample_rate
    flv_rates = SAMPLE_RATES["flv+mp3"]
    if not rate and (spec.f, a.codec) == ("flv", "mp3") and source_rate not in flv_rates:
        rate = 44100  # FLV holds MP3 only at these rates; the encoder alone would keep 48000
    if rate:
        args += ["-ar", str(rate)]
    if a.channels:
        args += ["-ac", str(a.channels)]
    return args
