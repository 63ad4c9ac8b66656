"""``aiproduction`` ``smart_cover``: the most representative frame that is neither black,
blank nor blurred, as one image.

1. Candidates. :data:`CANDIDATES` frames spread evenly over the video: candidate k is the
   frame on screen (``engine/snapshot.py``) at ``(k + ½)·duration / CANDIDATES``, so neither
   the first nor the last frame (often black, a fade or a title) is favoured. Sources up to
   :data:`FULL_DECODE_SECONDS` are decoded once for all candidates; longer ones get one
   seek per candidate, so the work does not grow with the length. A source whose duration
   is unknown gives candidates one second apart from the start. Candidates are scaled to
   :data:`ANALYSIS_WIDTH` pixels wide, RGB.
2. Rejections (:func:`measure`, on the luma ``Y = 0.299 R + 0.587 G + 0.114 B``):
   *black*: at least :data:`BLACK_SHARE` of the pixels darker than :data:`BLACK_LEVEL`
   (ffmpeg's ``blackframe`` rule); *blank*: luma standard deviation below
   :data:`BLANK_STDDEV` (a uniform frame of any colour); *blurred*: sharpness (variance of
   the 4-neighbour Laplacian of the luma) below :data:`BLUR_RATIO` times the 75th
   percentile of the sharpness of the candidates that are neither black nor blank. A
   relative blur bar adapts to the source (a soft, grainy or cartoon picture is not blurred
   by its own standard), where an absolute one would reject whole videos.
3. Choice (:func:`choose`) among the survivors: ffmpeg's ``thumbnail`` filter rule, the frame
   whose colour histogram (256 bins per channel) is nearest (least squared difference) to
   the survivors' mean histogram; the earliest on ties.
4. Fallback: when every candidate is black or blank (a video that is dark throughout), the
   one with the most luma contrast (the earliest on ties): the task still gives a cover.
5. The chosen time is extracted again at the source's full display size, upright, in the
   format of DstObjectKey's extension (``.jpg``/``.jpeg``, ``.png``, ``.webp``; any other
   extension, or none: JPEG).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from openkvs.engine.snapshot import (
    FFMPEG_HEAD,
    VideoFacts,
    grid_filter,
    scale_filter,
    seek_args,
    threads_args,
)
from openkvs.errors import TaskError

CANDIDATES = 32
FULL_DECODE_SECONDS = 120.0
ANALYSIS_WIDTH = 256
BLACK_LEVEL = 24.0  # luma 0-255 of full-range RGB (ffmpeg's 32 on limited-range Y)
BLACK_SHARE = 0.98
BLANK_STDDEV = 6.0
BLUR_RATIO = 0.25
#: Key extension → image format; anything else is JPEG.
FORMATS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}

Frame = npt.NDArray[np.uint8]  # height × width × 3, RGB


def cover_format(key: str) -> str:
    """The image format DstObjectKey's extension asks for (JPEG by default)."""
    return FORMATS.get(PurePosixPath(key).suffix.lower(), "jpg")


def candidate_times(duration: float, count: int = CANDIDATES) -> list[float]:
    """Seconds of each candidate (step 1 of the module doc); one per second from 0 when the
    duration is unknown (0)."""
    if duration <= 0:
        return [float(k) for k in range(count)]
    step = duration / count
    return [(k + 0.5) * step for k in range(count)]


def analysis_size(facts: VideoFacts) -> tuple[int, int]:
    width = min(ANALYSIS_WIDTH, facts.width)
    return width, max(1, round(width * facts.height / facts.width))


@dataclass(frozen=True)
class Measure:
    """What the rejections look at, for one candidate."""

    black: bool
    blank: bool
    sharpness: float  # variance of the luma's Laplacian
    contrast: float  # luma standard deviation


def luma(frame: Frame) -> npt.NDArray[np.float64]:
    rgb = frame.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def laplacian_variance(y: npt.NDArray[np.float64]) -> float:
    if y.shape[0] < 3 or y.shape[1] < 3:
        return 0.0
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(lap.var())


def measure(frame: Frame) -> Measure:
    y = luma(frame)
    contrast = float(y.std())
    return Measure(
        black=float((y < BLACK_LEVEL).mean()) >= BLACK_SHARE,
        blank=contrast < BLANK_STDDEV,
        sharpness=laplacian_variance(y),
        contrast=contrast,
    )


def histogram(frame: Frame) -> npt.NDArray[np.float64]:
    """256 bins per channel, as ffmpeg's ``thumbnail`` filter counts them."""
    return np.concatenate(
        [np.bincount(frame[..., c].ravel(), minlength=256) for c in range(3)]
    ).astype(np.float64)


@dataclass(frozen=True)
class Choice:
    index: int  # of the chosen candidate
    fallback: bool  # every candidate was black or blank
    rejected: dict[str, int]  # how many were rejected, by reason


def choose(frames: Sequence[Frame]) -> Choice:
    """The candidate to use (module doc, steps 2-4); ``frames`` must not be empty."""
    if not frames:
        raise ValueError("no candidates")
    measures = [measure(frame) for frame in frames]
    usable = [i for i, m in enumerate(measures) if not (m.black or m.blank)]
    rejected = {
        "black": sum(m.black for m in measures),
        "blank": sum(m.blank and not m.black for m in measures),
        "blurred": 0,
    }
    if not usable:
        best = max(range(len(frames)), key=lambda i: (measures[i].contrast, -i))
        return Choice(best, True, rejected)
    bar = BLUR_RATIO * float(np.percentile([measures[i].sharpness for i in usable], 75))
    sharp = [i for i in usable if measures[i].sharpness >= bar]
    rejected["blurred"] = len(usable) - len(sharp)
    hists = {i: histogram(frames[i]) for i in sharp}
    mean = np.mean(list(hists.values()), axis=0)
    best = min(sharp, key=lambda i: (float(((hists[i] - mean) ** 2).sum()), i))
    return Choice(best, False, rejected)


@dataclass(frozen=True)
class AnalysisPlan:
    """The commands that write the candidates as raw RGB frames, and where."""

    commands: tuple[tuple[str, ...], ...]
    times: tuple[float, ...]
    size: tuple[int, int]
    files: tuple[Path, ...]  # one file of all candidates (one decode) or one per candidate

    def frames(self) -> list[tuple[float, Frame]]:
        """(time, frame) of every candidate that was written."""
        width, height = self.size
        frame_bytes = width * height * 3
        out: list[tuple[float, Frame]] = []
        if len(self.files) > 1:  # one file per candidate: a missing one is skipped
            for time, path in zip(self.times, self.files, strict=True):
                data = path.read_bytes() if path.is_file() else b""
                if len(data) >= frame_bytes:
                    out.append((time, _frame(data[:frame_bytes], width, height)))
            return out
        raw = self.files[0].read_bytes() if self.files[0].is_file() else b""
        count = min(len(raw) // frame_bytes, len(self.times))
        for k in range(count):
            chunk = raw[k * frame_bytes : (k + 1) * frame_bytes]
            out.append((self.times[k], _frame(chunk, width, height)))
        return out


def _frame(data: bytes, width: int, height: int) -> Frame:
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def plan_analysis(
    facts: VideoFacts, *, source_args: list[str], scratch: Path, threads: int = 0
) -> AnalysisPlan:
    """The candidate-writing commands of step 1 (module doc)."""
    times = candidate_times(facts.duration)
    size = analysis_size(facts)
    tail = [scale_filter(*size), "format=rgb24"]
    raw = ["-c:v", "rawvideo", "-f", "rawvideo"]
    if facts.duration <= FULL_DECODE_SECONDS:
        step = times[1] - times[0] if len(times) > 1 else 1.0
        path = scratch / "candidates.rgb"
        graph = ",".join([grid_filter(times[0], step, len(times)), *tail])
        command = (
            *FFMPEG_HEAD, *threads_args(threads), *source_args,
            "-filter_complex", f"[0:{facts.index}]{graph}[frames]",
            "-map", "[frames]", *raw, str(path),
        )  # fmt: skip
        return AnalysisPlan((command,), tuple(times), size, (path,))
    commands, files = [], []
    for k, time in enumerate(times):
        seek, offset = seek_args(time, facts.preroll)
        path = scratch / f"candidate-{k}.rgb"
        graph = ",".join([grid_filter(offset, 1.0, 1), *tail])
        commands.append(
            (
                *FFMPEG_HEAD, *threads_args(threads), *seek, *source_args,
                "-filter_complex", f"[0:{facts.index}]{graph}[frame]",
                "-map", "[frame]", "-frames:v", "1", *raw, str(path),
            )
        )  # fmt: skip
        files.append(path)
    return AnalysisPlan(tuple(commands), tuple(times), size, tuple(files))


def pick(plan: AnalysisPlan) -> tuple[float, Choice]:
    """(time of the cover, the choice) from the written candidates; none written → 2301."""
    found = plan.frames()
    if not found:
        raise TaskError(2301, "no frame could be decoded for the cover")
    choice = choose([frame for _time, frame in found])
    return found[choice.index][0], choice
