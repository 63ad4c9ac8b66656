"""Renditions of a packaged output (HLS with ExtParam ``mulHlsRate=1``, DASH with
``mulrate=1``): what each one is, and the preset spec that encodes it.

Pure. A :class:`Rendition` is turned into an :class:`AvtransSpec` whose ``VIDEO`` size and
bit rates are the rendition's, every other preset key kept, so that
``engine.transcode.plan_transcode`` builds its encoder arguments like any other output.

The multi-rate HLS ladder (:data:`HLS_LADDER`, documented in ``docs/transcoding.md``): every
rung whose short side is at most the source's (after autorotation) is made, highest first;
a source smaller than the lowest rung gets one rendition at its own size with the lowest
rung's bit rates. The ladder never upscales.

DASH renditions come from the preset's lists (``VIDEO.mulVb``/``mulRes``/``mulVr``,
``AUDIO.mulAb``): a one-item list applies to every rendition, longer lists must have the
same length (checked at Preset time, ``service/preset_params.py``). Audio renditions are the
distinct ``mulAb`` values (one, at the preset's ``ab``, without ``mulAb``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from openkvs.engine.transcode import SourceFacts
from openkvs.presets.avtrans import AvtransSpec, MulSpec


@dataclass(frozen=True)
class Rung:
    """One rung of :data:`HLS_LADDER`: the short side of the picture and its bit rates."""

    name: str
    short_side: int
    video_bitrate: int  # bits/s
    audio_bitrate: int  # bits/s


#: The multi-rate HLS ladder, highest first (bit rates for H.264; H.265 uses the same caps).
HLS_LADDER: tuple[Rung, ...] = (
    Rung("1080p", 1080, 5_000_000, 128_000),
    Rung("720p", 720, 2_800_000, 128_000),
    Rung("480p", 480, 1_400_000, 96_000),
    Rung("360p", 360, 800_000, 96_000),
    Rung("240p", 240, 400_000, 64_000),
)


@dataclass(frozen=True)
class Rendition:
    """One video rendition: its name (in file names), short side or box (0 = the source's
    size), bit rates (0 = the preset's) and frame rate (0 = the preset's)."""

    name: str
    short_side: int = 0
    width: int = 0  # a WxH box from mulRes (the picture fits inside, keeping its shape)
    height: int = 0
    video_bitrate: int = 0
    audio_bitrate: int = 0
    fps: float = 0.0


def source_short_side(facts: SourceFacts) -> int:
    """The shorter side of the source picture (0 when unknown)."""
    sides = [side for side in (facts.width, facts.height) if side]
    return min(sides) if len(sides) == 2 else 0


def hls_ladder(facts: SourceFacts, ladder: tuple[Rung, ...] = HLS_LADDER) -> list[Rendition]:
    """The renditions of a multi-rate HLS output of ``facts``' source, highest first."""
    short = source_short_side(facts)
    rungs = [rung for rung in ladder if short and rung.short_side <= short]
    if not rungs:
        low = ladder[-1]
        return [Rendition(f"{short}p" if short else "src", 0, 0, 0, low.video_bitrate,
                          low.audio_bitrate)]  # fmt: skip
    top = rungs[0]
    renditions = []
    for rung in rungs:
        side = 0 if rung is top and rung.short_side == short else rung.short_side
        renditions.append(
            Rendition(rung.name, side, video_bitrate=rung.video_bitrate,
                      audio_bitrate=rung.audio_bitrate)
        )  # fmt: skip
    return renditions


def _pick(values: tuple[object, ...], index: int) -> object:
    if not values:
        return None
    return values[0] if len(values) == 1 else values[index]


def mul_count(mul: MulSpec) -> int:
    """How many video renditions the ``mul*`` lists describe (at least 1)."""
    return max(len(mul.vb), len(mul.res), len(mul.vr), 1)


def dash_renditions(mul: MulSpec) -> list[Rendition]:
    """The video renditions of ``mulrate=1`` (one per list item), in the lists' order."""
    renditions = []
    for index in range(mul_count(mul)):
        res = _pick(mul.res, index)
        width, _, height = str(res or "").partition("x")
        vb = _pick(mul.vb, index)
        vr = _pick(mul.vr, index)
        renditions.append(
            Rendition(
                f"v{index}",
                width=int(width) if width.isdigit() else 0,
                height=int(height) if height.isdigit() else 0,
                video_bitrate=int(vb) if isinstance(vb, int) else 0,
                fps=float(vr) if isinstance(vr, int | float) else 0.0,
            )
        )
    return renditions


def dash_audio_bitrates(mul: MulSpec) -> list[int]:
    """The audio renditions of ``mulrate=1``: the distinct ``mulAb`` values (``[0]`` =
    one at the preset's ``ab``)."""
    return list(dict.fromkeys(mul.ab)) or [0]


def rendition_spec(spec: AvtransSpec, rendition: Rendition) -> AvtransSpec:
    """``spec`` with the rendition's size, frame rate and bit rates. The preset's size keys
    give way to the rendition's (``as`` still decides whether a ``WxH`` box is filled or
    fitted); a ``crf`` stays, with the rendition's bit rate as its cap."""
    video = spec.video
    if video.codec not in ("", "copy"):
        video = replace(video, orientation_adapt=False)
        if rendition.short_side or rendition.width or rendition.height:
            video = replace(
                video,
                width=rendition.width,
                height=rendition.height,
                short_side=rendition.short_side,
            )
        if rendition.video_bitrate:
            video = replace(video, bitrate=rendition.video_bitrate)
        if rendition.fps:
            video = replace(video, fps=rendition.fps)
    audio = spec.audio
    if audio.codec not in ("", "copy") and rendition.audio_bitrate:
        audio = replace(audio, bitrate=rendition.audio_bitrate)
    return replace(spec, video=video, audio=audio)
