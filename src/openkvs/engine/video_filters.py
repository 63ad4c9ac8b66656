"""The video filter chain of an ``avtrans`` task: geometry (rotation, size, the
``intelligentSwitch`` rule), frame rate, deinterlacing, denoising and the GIF palette.

Pure. Sizes are computed here from the probed source rather than left to filter
expressions, so the command states the exact output size and ``intelligentSwitch`` can be
judged before anything runs. Order of the chain: deinterlace (or inverse telecine) → denoise
→ the preset's extra rotation → scale → frame rate → frame selection (``intervalframes``).
Turning a rotated source upright is FFmpeg's own autorotation, which runs before the chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransSpec

#: Codecs whose 4:2:0 pictures need even sides.
EVEN_CODECS = frozenset({"h264", "h265", "vp9"})
DEINTERLACE = {
    "bwdif": "bwdif=deint=all",
    "auto": "bwdif=deint=interlaced",
    "yadif": "yadif=deint=all",
}
FIELDMATCH = "fieldmatch=order=auto:combmatch=full,yadif=deint=interlaced,decimate"
DENOISE = {"light": "hqdn3d", "medium": "hqdn3d=8:6:12:9", "strong": "nlmeans=s=4:p=7:r=9"}
TRANSPOSE = {90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}
#: Upscaling policy (``intelligentSwitch``).
ALLOW, REFUSE, CLAMP = 0, 1, 2
#: The longest side a preset may ask for; a side computed from the request beyond it is 2003.
MAX_SIDE = 8192


@dataclass(frozen=True)
class Geometry:
    """The picture entering the scaler and the size it leaves with (0: the source's size
    is unknown, the filters compute it)."""

    width: int  # coded pixels, after autorotation and the preset's rotation
    height: int
    out_width: int
    out_height: int
    resize: bool  # the preset asked for a size: scaled, with square pixels


def _side(value: float, even: bool) -> int:
    side = max(1, round(value))
    return max(2, side - side % 2) if even else side


def _turned(width: float, height: float, degrees: int) -> tuple[float, float]:
    if degrees % 180 == 90:
        return height, width
    if degrees % 90 == 0:
        return width, height
    a = math.radians(degrees)
    return (
        abs(width * math.cos(a)) + abs(height * math.sin(a)),
        abs(width * math.sin(a)) + abs(height * math.cos(a)),
    )


def _requested(spec: AvtransSpec, width: float, height: float) -> tuple[float, float] | None:
    """The size the preset asks for, exact (before rounding); None = the source's size."""
    v = spec.video
    if v.short_side:
        scale = v.short_side / min(width, height)
        return width * scale, height * scale
    box_w, box_h = v.width, v.height
    if v.orientation_adapt and height > width:
        box_w, box_h = box_h, box_w
    if box_w and box_h:
        if not v.keep_aspect:
            return box_w, box_h
        scale = min(box_w / width, box_h / height)
        return width * scale, height * scale
    if box_w:
        return box_w, height * box_w / width
    if box_h:
        return width * box_h / height, box_h
    return None


def geometry(spec: AvtransSpec, src_width: int, src_height: int, sar: float) -> Geometry:
    """Where the picture goes. ``src_*`` is the coded size after autorotation (0 unknown),
    ``sar`` the source's pixel shape (sizes follow the displayed picture).

    ``intelligentSwitch`` 1 → ``TaskError(2049)`` when the output would be wider or taller
    than the picture it is made from; 2 → the output is shrunk (keeping its own shape) to
    fit inside it.
    """
    v = spec.video
    even = v.codec in EVEN_CODECS
    resize = bool(v.width or v.height or v.short_side)
    if not (src_width and src_height):
        return Geometry(0, 0, 0, 0, resize)
    turned_w, turned_h = _turned(src_width, src_height, v.rotate)
    if v.rotate % 90:  # the rotate filter's box is made even too
        width, height = _side(turned_w, even), _side(turned_h, even)
    else:
        width, height = round(turned_w), round(turned_h)
    shown_w, shown_h = _turned(src_width * (sar or 1.0), src_height, v.rotate)
    asked = _requested(spec, shown_w, shown_h) if resize else None
    if asked is None:
        return Geometry(width, height, _side(width, even), _side(height, even), False)
    ow, oh = asked
    if ow > shown_w + 0.5 or oh > shown_h + 0.5:
        if spec.intelligent_switch == REFUSE:
            raise TaskError(
                2049,
                f"the output {round(ow)}x{round(oh)} is larger than the source "
                f"{round(shown_w)}x{round(shown_h)} (intelligentSwitch=1)",
            )
        if spec.intelligent_switch == CLAMP:
            shrink = min(shown_w / ow, shown_h / oh)
            ow, oh = ow * shrink, oh * shrink
    return _bounded(Geometry(width, height, _side(ow, even), _side(oh, even), True))


def _bounded(geo: Geometry) -> Geometry:
    if max(geo.out_width, geo.out_height) > MAX_SIDE:
        raise TaskError(
            2003,
            f"the output would be {geo.out_width}x{geo.out_height}: "
            f"sides are limited to {MAX_SIDE} pixels",
        )
    return geo


def _unknown_size_scale(spec: AvtransSpec) -> str:
    """The scale filter when the source's size is unknown: FFmpeg computes the sides."""
    v = spec.video
    if v.short_side:
        s = v.short_side
        return f"scale=w='if(gte(iw,ih),-2,{s})':h='if(gte(iw,ih),{s},-2)'"
    if v.width and v.height:
        fit = ":force_original_aspect_ratio=decrease:force_divisible_by=2" if v.keep_aspect else ""
        return f"scale={v.width}:{v.height}{fit}"
    if v.width or v.height:
        return f"scale={v.width or -2}:{v.height or -2}"
    return ""


def video_filters(spec: AvtransSpec, geo: Geometry, source_fps: float) -> list[str]:
    """The filters of the chain, in order (without the GIF palette)."""
    v = spec.video
    chain: list[str] = []
    if v.fieldmatch:
        chain.append(FIELDMATCH)
    elif v.deinterlace:
        chain.append(DEINTERLACE[v.deinterlace])
    if v.denoise:
        chain.append(DENOISE.get(v.denoise, v.denoise))
    if v.rotate in TRANSPOSE:
        chain.append(TRANSPOSE[v.rotate])
    elif v.rotate:
        size = f"ow={geo.width}:oh={geo.height}" if geo.width else "ow='rotw(a)':oh='roth(a)'"
        chain.append(f"rotate={v.rotate}*PI/180:{size}")
    if not geo.out_width:
        if scale := _unknown_size_scale(spec):
            chain += [scale, "setsar=1"]
    elif geo.resize:
        chain += [f"scale={geo.out_width}:{geo.out_height}", "setsar=1"]
    elif (geo.out_width, geo.out_height) != (geo.width, geo.height):
        chain.append(f"scale={geo.out_width}:{geo.out_height}")  # odd sides made even
    fps = v.fps
    if fps and spec.intelligent_switch and source_fps and fps > source_fps:
        if spec.intelligent_switch == REFUSE:
            raise TaskError(
                2049, f"vr {fps:g} is above the source's {source_fps:g} fps (intelligentSwitch=1)"
            )
        fps = source_fps
    if fps:
        chain.append(f"fps={fps:.10g}")
    if v.interval_frames > 1:
        chain.append(f"select='not(mod(n\\,{v.interval_frames}))'")
    return chain


def gif_graph(chain: list[str], source: str) -> str:
    """One ``-filter_complex`` graph from the stream ``source`` (``0:1``): the chain, then
    a palette made from the clip itself (``palettegen``) applied to it (``paletteuse``)."""
    body = ",".join([*chain, "split[a][b]"])
    return f"[{source}]{body};[a]palettegen[p];[b][p]paletteuse[v]"
