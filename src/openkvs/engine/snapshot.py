"""Still images of a video: what the source is, how big an image is, which frame is "the
image at time t", and the ffmpeg command for one image (``avsnapshot``).

The frame at time t
    is the frame on screen at t: the last frame whose timestamp is at or before t (the
    first frame when t is before it). Times count from the start of the file (the first
    timestamp of the container is 0), as a player shows them. ffmpeg is told to seek
    (``-ss`` before ``-i``, which decodes from the keyframe before the seek point and drops
    what precedes it) to a little before t (:attr:`VideoFacts.preroll`), then
    :func:`grid_filter` shifts the timestamps so t is 0 and the ``fps`` filter with
    ``round=up`` and ``start_time=0`` outputs, for slot k, the latest frame whose timestamp
    is at or before ``k·step``. Every timestamp is compared, none is guessed from a frame
    rate, so variable frame rates and odd time bases are exact too. ``avsample`` and the
    smart cover use the same filter with more slots.

Sizes (:func:`output_size`)
    The source's display size is its coded size with the pixel aspect ratio applied and
    turned upright (ffmpeg applies the rotation of the display matrix before our filters).
    Both ``width`` and ``height`` given: exactly that size. One of them: the other follows
    the display aspect ratio (rounded, at least 1). Only ``shortSide``: the shorter side
    gets it, the longer follows the aspect ratio. None: the display size. A side beyond
    :data:`MAX_SIDE` → 2315. Images have square pixels (``setsar=1``).
"""

from __future__ import annotations

import math
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openkvs.engine import runner, sandbox
from openkvs.engine.probe import first_video
from openkvs.errors import TaskError
from openkvs.presets.image import ImageSize
from openkvs.storage.mime import content_type_for

#: The largest side of an image (the preset's limit for ``width``/``height``).
MAX_SIDE = 8192
#: ffmpeg's words before every command: no banner, no questions, only errors on stderr.
FFMPEG_HEAD = ("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y")
#: Encoder options per image format.
ENCODERS: dict[str, tuple[str, ...]] = {
    "jpg": ("-c:v", "mjpeg", "-q:v", "2"),
    "png": ("-c:v", "png"),
    "webp": ("-c:v", "libwebp", "-quality", "85"),
}
#: The file name extension of each format (also the key extension ``avsample`` writes).
EXTENSIONS = {"jpg": "jpg", "png": "png", "webp": "webp"}
#: Seconds decoded before a time point at least (see :attr:`VideoFacts.preroll`).
MIN_PREROLL = 1.0

NO_LIMITS = runner.Limits()

#: ``on_progress(percent)`` of one run, 0-100.
Progress = Callable[[float], None]


@dataclass(frozen=True)
class VideoFacts:
    """What the image engines need to know about a source's video stream."""

    index: int  # the stream's absolute index (``-map 0:<index>``)
    width: int  # display width: pixel aspect ratio applied, upright
    height: int  # display height, upright
    duration: float  # seconds from the file's start to the video's end; 0 when unknown
    fps: float  # average frame rate; 0 when unknown

    @property
    def preroll(self) -> float:
        """Seconds decoded before a time point, so the frame on screen at it (which starts
        up to one frame earlier) is decoded too: a second, or two frames when longer."""
        return max(MIN_PREROLL, 2.0 / self.fps) if self.fps > 0 else MIN_PREROLL


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ratio(value: Any) -> float | None:
    """``"16:9"``/``"30000/1001"`` as a number; None for ``0:1``, ``N/A`` or garbage."""
    if not isinstance(value, str):
        return None
    for sep in (":", "/"):
        if sep in value:
            num, _, den = value.partition(sep)
            a, b = _number(num), _number(den)
            return a / b if a and b and a > 0 and b > 0 else None
    return None


def rotation_of(stream: dict[str, Any]) -> int:
    """Degrees (0, 90, 180, 270) the picture is turned when shown: the display matrix's
    rotation, else the old ``rotate`` tag. Only whether it is a quarter turn matters here
    (the size); ffmpeg itself turns the picture."""
    for side in stream.get("side_data_list") or []:
        if isinstance(side, dict) and "rotation" in side:
            degrees = _number(side["rotation"])
            if degrees is not None:
                return round(degrees) % 360
    degrees = _number((stream.get("tags") or {}).get("rotate"))
    return round(degrees) % 360 if degrees is not None else 0


def video_facts(probe_json: dict[str, Any]) -> VideoFacts:
    """The :class:`VideoFacts` of the first video stream of an ffprobe result (cover art,
    an ``attached_pic``, is not video). No video stream → ``TaskError(3155)``."""
    video = first_video(probe_json)
    if video is None:
        raise TaskError(3155, "the source has no video stream to take images from")
    width, height = int(_number(video.get("width")) or 0), int(_number(video.get("height")) or 0)
    if width <= 0 or height <= 0:
        raise TaskError(3155, "the source's video stream has no picture size")
    sar = _ratio(video.get("sample_aspect_ratio")) or 1.0
    display_w, display_h = max(1, round(width * sar)), height
    if rotation_of(video) % 180 == 90:
        display_w, display_h = display_h, display_w
    fmt = probe_json.get("format") or {}
    file_start = _number(fmt.get("start_time")) or 0.0
    stream_start = _number(video.get("start_time"))
    stream_duration = _number(video.get("duration"))
    if stream_duration and stream_duration > 0:
        start = stream_start if stream_start is not None else file_start
        duration = max(0.0, start + stream_duration - file_start)
    else:
        duration = max(0.0, _number(fmt.get("duration")) or 0.0)
    fps = _ratio(video.get("avg_frame_rate")) or _ratio(video.get("r_frame_rate")) or 0.0
    return VideoFacts(
        index=int(_number(video.get("index")) or 0),
        width=display_w,
        height=display_h,
        duration=duration,
        fps=fps if fps < 1000 else 0.0,  # a "90000/1" field is a time base, not a rate
    )


def _follow(side: int, other_given: int, other_source: int) -> int:
    """``side`` (a source side) scaled by ``other_given / other_source``: at least 1."""
    return max(1, round(side * other_given / other_source))


def output_size(size: ImageSize, facts: VideoFacts) -> tuple[int, int]:
    """(width, height) of the images (module docstring: Sizes); 2315 beyond :data:`MAX_SIDE`."""
    w, h = facts.width, facts.height
    if size.width and size.height:
        out = (size.width, size.height)
    elif size.width:
        out = (size.width, _follow(h, size.width, w))
    elif size.height:
        out = (_follow(w, size.height, h), size.height)
    elif size.short_side:
        if w <= h:
            out = (size.short_side, _follow(h, size.short_side, w))
        else:
            out = (_follow(w, size.short_side, h), size.short_side)
    else:
        out = (w, h)
    if max(out) > MAX_SIDE:
        raise TaskError(
            2315,
            f"the image would be {out[0]}x{out[1]}; a side may be at most {MAX_SIDE} pixels "
            "(give width and height, or a smaller size)",
        )
    return out


def grid_filter(at: float, step: float, count: int = 0) -> str:
    """Filters that keep, for k in 0..count-1, the frame on screen at ``at + k·step`` seconds
    of the filter's input timestamps (module docstring); ``step`` > 0; ``count`` 0: until
    the video ends."""
    rate = f"1/{int(step)}" if float(step).is_integer() else f"{1 / step:.9g}"
    grid = f"setpts=PTS-{at:.6f}/TB,fps=fps={rate}:round=up:start_time=0"
    return f"{grid},trim=end_frame={count}" if count > 0 else grid


def scale_filter(width: int, height: int) -> str:
    return f"scale={width}:{height},setsar=1"


def seek_args(at: float, preroll: float) -> tuple[list[str], float]:
    """(input options that seek to ``preroll`` seconds before ``at``, where the filters'
    timestamp 0 then is relative to ``at``): after ``-ss s`` ffmpeg's timestamps count from
    s, so ``at`` is ``at - s`` in them."""
    seek = max(0.0, at - preroll)
    return (["-ss", f"{seek:.6f}"] if seek > 0 else []), at - seek


def threads_args(threads: int) -> list[str]:
    return ["-threads", str(threads)] if threads > 0 else []


@dataclass(frozen=True)
class ImageCommand:
    """One ffmpeg run that writes one image."""

    args: tuple[str, ...]
    output: Path
    content_type: str


def image_command(
    source_args: Sequence[str],
    facts: VideoFacts,
    *,
    at: float,
    size: tuple[int, int],
    fmt: str,
    output: Path,
    threads: int = 0,
) -> ImageCommand:
    """The command writing the frame at ``at`` seconds, ``size``, as ``fmt``, to ``output``.
    ``source_args`` open the source (``SourceInput.args()``: ``-i`` included)."""
    seek, offset = seek_args(at, facts.preroll)
    graph = f"[0:{facts.index}]{grid_filter(offset, 1.0, 1)},{scale_filter(*size)}[image]"
    args = (
        *FFMPEG_HEAD,
        *threads_args(threads),
        *seek,
        *source_args,
        "-filter_complex",
        graph,
        "-map",
        "[image]",
        "-frames:v",
        "1",
        *ENCODERS[fmt],
        "-f",
        "image2",
        "-update",
        "1",
        str(output),
    )
    return ImageCommand(args, output, content_type_for(f"image.{EXTENSIONS[fmt]}"))


def command_line(commands: Sequence[Sequence[str]], opened: sandbox.SourceInput) -> str:
    """The commands as one shell line (each shell-quoted, joined with `` && ``), naming the
    source by its storage location instead of the sandbox's link."""
    return " && ".join(
        shlex.join(opened.source if word == opened.url else word for word in command)
        for command in commands
    )


def explain(opened: sandbox.SourceInput, error: TaskError) -> TaskError:
    """``error`` of a run on ``opened`` as the client and the operator see it (the sandbox's
    explanation, the link replaced by the source), keeping ffmpeg's stderr tail as ``log``."""
    explained = opened.explain(error)
    log = error.log.replace(opened.url, opened.source) if opened.url else error.log
    return TaskError(explained.code, explained.detail, log=log)


def run(
    args: Sequence[str],
    opened: sandbox.SourceInput,
    *,
    deadline: float,
    cancel: threading.Event | None = None,
    duration: float = 0.0,
    on_progress: Progress | None = None,
    folder: Path | None = None,
    limits: runner.Limits = NO_LIMITS,
) -> None:
    """Run one command on ``opened`` (``engine.runner.run_command``); its failures as
    :func:`explain` gives them."""
    try:
        runner.run_command(
            args,
            duration=duration,
            deadline=deadline,
            cancel=cancel,
            on_progress=on_progress,
            folder=folder,
            limits=limits,
        )
    except TaskError as exc:
        raise explain(opened, exc) from exc


def take_snapshot(
    opened: sandbox.SourceInput,
    facts: VideoFacts,
    *,
    at: float,
    size: tuple[int, int],
    fmt: str,
    output: Path,
    deadline: float,
    cancel: threading.Event | None = None,
    threads: int = 0,
    limits: runner.Limits = NO_LIMITS,
    record: Callable[[str], None] | None = None,
) -> ImageCommand:
    """Write the frame at ``at`` to ``output``. ``at`` at or past the video's end (when the
    duration is known) → 2337 before anything runs; no frame written → 2337 (or 2301 at 0:
    nothing could be decoded). ``record`` gets the command line before it runs."""
    if facts.duration > 0 and at >= facts.duration:
        raise TaskError(
            2337, f"ss {at:.3f} s is not before the end of the video ({facts.duration:.3f} s)"
        )
    command = image_command(
        opened.args(), facts, at=at, size=size, fmt=fmt, output=output, threads=threads
    )
    if record is not None:
        record(command_line([command.args], opened))
    run(command.args, opened, deadline=deadline, cancel=cancel, folder=output.parent, limits=limits)
    if not output.is_file() or output.stat().st_size == 0:
        if at > 0:
            raise TaskError(2337, f"no frame at or before {at:.3f} s could be decoded")
        raise TaskError(2301, "no frame could be decoded")
    return command
