"""The filtergraph that joins several video sources into one (spec §4.2 item 5).

Pure. Each clip is one ffmpeg input. Every clip is made like the master clip (ExtParam
``masterSrcIndex``) before the ``concat`` filter joins them:

* picture: timestamps from 0, the master's frame rate (``fps``), scaled to fit the master's
  size keeping its shape and centred on black bars (``scale`` +
  ``force_original_aspect_ratio=decrease`` + ``pad``), square pixels (``setsar=1``);
* sound: timestamps from 0, one rate and channel layout (``aresample`` + ``aformat``), then
  padded with silence and cut to the clip's own length (``apad`` + ``atrim``), so each join
  falls exactly where the picture's does; a clip without sound gets generated silence of
  its length (``anullsrc`` + ``atrim``).

Pictures and sounds are joined by two ``concat`` filters (``v=1:a=0`` and ``v=0:a=1``):
each part is built on its own, and a command that writes only one kind of stream uses only
that part. The clip window (``ss``/``duration``) applies to the joined result (``trim``/
``atrim`` after the join), so the command does not seek input 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openkvs.engine.graph import AUDIO_SOURCE, VIDEO_SOURCE

#: Sample format of the joined sound (what most encoders take without converting again).
SAMPLE_FORMAT = "fltp"


@dataclass(frozen=True)
class Clip:
    """One source to join, as ffmpeg sees it."""

    input: int  # the ffmpeg input number
    seconds: float  # the clip's length (its picture's); its sound is padded or cut to it
    video_index: int = -1  # absolute stream index; -1: the first video stream
    audio_index: int | None = None  # absolute stream index; -1: the first; None: no sound


@dataclass(frozen=True)
class Frame:
    """What every clip is made into: the master's picture size and rate, one sound format."""

    width: int
    height: int
    fps: float
    sample_rate: int
    layout: str  # "mono" or "stereo"


@dataclass(frozen=True)
class Window:
    """The part of the joined media to keep (``ss``/``duration``); the default keeps all."""

    start: float = 0.0
    length: float | None = None

    @property
    def whole(self) -> bool:
        return not self.start and not self.length


def seconds(value: float) -> str:
    """A time as ffmpeg reads it: at most 6 decimals, no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _stream(clip: Clip, kind: str, index: int) -> str:
    return f"[{clip.input}:{index}]" if index >= 0 else f"[{clip.input}:{kind}:0]"


def _trim(kind: str, window: Window) -> str:
    """``trim``/``atrim`` of the window and timestamps from 0 again."""
    a = "a" if kind == "a" else ""
    bounds = [f"start={seconds(window.start)}"] if window.start else []
    if window.length:
        bounds.append(f"duration={seconds(window.length)}")
    return f"{a}trim={':'.join(bounds)},{a}setpts=PTS-STARTPTS"


def join_video(
    clips: Sequence[Clip], frame: Frame, window: Window = Window(), out: str = VIDEO_SOURCE
) -> str:
    """The fragment joining the clips' pictures, ending in ``out``."""
    w, h = frame.width, frame.height
    parts = []
    for n, clip in enumerate(clips):
        parts.append(
            f"{_stream(clip, 'v', clip.video_index)}setpts=PTS-STARTPTS,fps={frame.fps:.10g},"
            f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1[cv{n}]"
        )
    pads = "".join(f"[cv{n}]" for n in range(len(clips)))
    joined = f"{pads}concat=n={len(clips)}:v=1:a=0"
    if window.whole:
        parts.append(joined + out)
    else:
        parts.append(f"{joined},{_trim('v', window)}{out}")
    return ";".join(parts)


def join_audio(
    clips: Sequence[Clip], frame: Frame, window: Window = Window(), out: str = AUDIO_SOURCE
) -> str:
    """The fragment joining the clips' sounds (silence for a clip without), ending in
    ``out``."""
    fmt = f"aformat=sample_fmts={SAMPLE_FORMAT}:channel_layouts={frame.layout}"
    parts = []
    for n, clip in enumerate(clips):
        length = f"atrim=duration={seconds(clip.seconds)}"
        if clip.audio_index is None:
            head = f"anullsrc=r={frame.sample_rate}:cl={frame.layout},{fmt}"
        else:
            head = (
                f"{_stream(clip, 'a', clip.audio_index)}asetpts=PTS-STARTPTS,"
                f"aresample={frame.sample_rate},{fmt},apad"
            )
        parts.append(f"{head},{length}[ca{n}]")
    pads = "".join(f"[ca{n}]" for n in range(len(clips)))
    joined = f"{pads}concat=n={len(clips)}:v=0:a=1"
    if window.whole:
        parts.append(joined + out)
    else:
        parts.append(f"{joined},{_trim('a', window)}{out}")
    return ";".join(parts)
