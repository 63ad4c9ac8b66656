"""The watermark part of an avtrans command (spec §3.4): logo inputs and one overlay stage.

Pure: given the logos already fetched to local files (:class:`LogoFile`, see
``worker/logos.py``) and the number of the first logo input, :func:`watermark_part` gives
the :class:`~openkvs.engine.graph.Composition` part; the stage's fragment is built when the
output size is known (``engine/transcode.py``).

Each logo is one input, opened as one file of a fixed image format (the worker sniffed its
bytes) with only the ``file`` protocol. Its chain, in the graph:

``[N:v]`` → ``scale`` (the requested or proportionally scaled size; one side given keeps the
aspect) → ``format=rgba`` → ``colorchannelmixer=aa=<opacity>`` (when below 1) → ``tpad``
cloning the last frame for ever (a still image, or a GIF that plays once and then holds its
last frame; a looping GIF is instead read again and again with ``-stream_loop -1``) →
``setpts`` starting it at its ``ss`` on the output timeline, then
``overlay=x:y:shortest=1:enable='between(t,ss,ss+duration)'`` onto the picture. The logo
streams never end, so ``shortest=1`` ends each overlay with the picture. Logos are drawn in
track order, a later one on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openkvs.engine.graph import EMPTY, Composition
from openkvs.errors import TaskError
from openkvs.presets.logos import Length, LogoSpec

#: Image formats a logo may have, by the demuxer that reads it (sniffed by the worker).
DEMUXERS = ("png_pipe", "jpeg_pipe", "gif", "webp_pipe", "bmp_pipe")


@dataclass(frozen=True)
class LogoFile:
    """A logo fetched to a local file, with the demuxer its bytes call for."""

    spec: LogoSpec
    path: str
    demuxer: str  # one of DEMUXERS

    @property
    def looping(self) -> bool:
        """An animated GIF asked to loop for its whole display time."""
        return self.demuxer == "gif" and self.spec.loop


@dataclass(frozen=True)
class Placement:
    """A logo's size (``scale`` values, ``""`` = its own) and position (``overlay`` x/y),
    in output pixels or ffmpeg expressions."""

    width: str
    height: str
    x: str
    y: str


def _num(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def scale_factor(spec: LogoSpec, width: int, height: int) -> float:
    """How much the logo's pixel geometry is scaled for a ``width``×``height`` output: the
    output over the reference size (``optimal_w``/``optimal_h``: the smaller ratio when both
    are given; else ``shortSide`` against the output's short side); 1 with
    ``disable_scale=1``, without a reference, or when the output size is unknown."""
    if spec.disable_scale or not (width and height):
        return 1.0
    ratios = []
    if spec.optimal_w:
        ratios.append(width / spec.optimal_w)
    if spec.optimal_h:
        ratios.append(height / spec.optimal_h)
    if not ratios and spec.short_side:
        ratios.append(min(width, height) / spec.short_side)
    return min(ratios) if ratios else 1.0


def _pixels(length: Length, full: int, factor: float, what: str) -> int:
    if length.relative:
        if not full:
            raise TaskError(2003, f"a watermark {what} given as a fraction needs the output size")
        return round(length.value * full)
    return round(length.value * factor)


def place(spec: LogoSpec, width: int, height: int) -> Placement:
    """Where and how big ``spec`` is drawn on a ``width``×``height`` output."""
    factor = scale_factor(spec, width, height)
    w = str(max(1, _pixels(spec.width, width, factor, "width"))) if spec.width else ""
    h = str(max(1, _pixels(spec.height, height, factor, "height"))) if spec.height else ""
    if w or h:
        w, h = w or "-1", h or "-1"
    elif factor != 1:
        w, h = f"round(iw*{_num(factor)})", f"round(ih*{_num(factor)})"
    dx = _pixels(spec.dx, width, factor, "dx")
    dy = _pixels(spec.dy, height, factor, "dy")
    x = f"W-w-{dx}" if spec.refer_pos.endswith("Right") else str(dx)
    y = f"H-h-{dy}" if spec.refer_pos.startswith("Bottom") else str(dy)
    return Placement(w, h, x, y)


def window(spec: LogoSpec) -> str:
    """The overlay's ``enable`` expression (``""``: always)."""
    if spec.duration:
        return f"between(t,{_num(spec.ss)},{_num(spec.ss + spec.duration)})"
    return f"gte(t,{_num(spec.ss)})" if spec.ss else ""


def logo_chain(logo: LogoFile, placement: Placement) -> list[str]:
    """The filters on one logo's stream before it is overlaid."""
    spec = logo.spec
    filters = [f"scale=w={placement.width}:h={placement.height}"] if placement.width else []
    filters.append("format=rgba")
    if spec.opacity < 1:
        filters.append(f"colorchannelmixer=aa={_num(spec.opacity)}")
    if not logo.looping:
        filters.append("tpad=stop=-1:stop_mode=clone")
    filters.append(f"setpts=PTS-STARTPTS+{_num(spec.ss)}/TB" if spec.ss else "setpts=PTS-STARTPTS")
    return filters


def overlay(spec: LogoSpec, placement: Placement) -> str:
    enable = window(spec)
    return f"overlay=x={placement.x}:y={placement.y}:shortest=1" + (
        f":enable='{enable}'" if enable else ""
    )


@dataclass(frozen=True)
class WatermarkStage:
    """Every logo of a task overlaid on the picture (a :class:`~openkvs.engine.graph.VideoStage`);
    logo ``n`` is input ``first + n``."""

    logos: tuple[LogoFile, ...]
    first: int

    def fragment(self, source: str, width: int, height: int, out: str) -> str:
        chains: list[str] = []
        pad = source
        for n, logo in enumerate(self.logos):
            placement = place(logo.spec, width, height)
            chains.append(f"[{self.first + n}:v]{','.join(logo_chain(logo, placement))}[wm{n}]")
            result = out if n == len(self.logos) - 1 else f"[wmv{n}]"
            chains.append(f"{pad}[wm{n}]{overlay(logo.spec, placement)}{result}")
            pad = result
        return ";".join(chains)


def logo_input(logo: LogoFile) -> tuple[str, ...]:
    """The argv that opens one logo: its file only, read with its own demuxer."""
    loop = ("-stream_loop", "-1") if logo.looping else ()
    return (*loop, "-protocol_whitelist", "file", "-f", logo.demuxer, "-i", logo.path)


def watermark_part(logos: Sequence[LogoFile], first: int) -> Composition:
    """The composition part of ``logos`` (in track order) whose first input is ``first``."""
    if not logos:
        return EMPTY
    return Composition(
        inputs=tuple(logo_input(logo) for logo in logos),
        video_stages=(WatermarkStage(tuple(logos), first),),
    )
