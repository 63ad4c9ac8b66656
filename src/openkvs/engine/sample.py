"""``avsample``: an image every ``interval`` seconds, and sprite sheets, in one ffmpeg run.

Which images (the count rule). With ``start`` = ExtParam ``ss`` (else the preset's ``ss``,
else 0) and ``end`` = ``start + duration`` (ExtParam ``duration``) or the end of the video,
whichever is earlier, the images are the frames at ``start + k·interval`` for every k ≥ 0
with ``start + k·interval < end``: ``ceil((end - start) / interval)`` images
(:func:`sample_count`, computed in whole microseconds). Image k is the frame on screen at
its time (``engine/snapshot.py``). ``start`` at or past the end → 2337. When the source's
duration is unknown, images are taken until the video ends. A source whose video ends
earlier than its container says gives the images its frames reach.

How. One ffmpeg decodes the range once: the ``fps`` grid of ``engine/snapshot.py``
(``grid_filter``) keeps one frame per slot, ``trim`` stops at the count (ffmpeg then stops
reading), ``scale`` sizes the images, and with sprites ``split`` feeds the same frames to the
``tile`` filter, so images and sheets come from the same frames. Images are written as
``<n>.<f>`` and sheets as ``sprite/<n>.<f>`` in the scratch folder, n from 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openkvs.engine.snapshot import (
    ENCODERS,
    EXTENSIONS,
    FFMPEG_HEAD,
    VideoFacts,
    grid_filter,
    output_size,
    scale_filter,
    seek_args,
    threads_args,
)
from openkvs.engine.sprite import SpriteLayout, fit_tile
from openkvs.errors import TaskError
from openkvs.presets.image import ImageOptions, SampleSpec

#: Where the sprite sheets go, under the task's DstDir and under the scratch folder.
SPRITE_DIR = "sprite"
#: The WebVTT thumbnail track's name in :data:`SPRITE_DIR`.
TRACK_NAME = "thumbnails.vtt"


def sample_count(start: float, end: float, interval: float) -> int:
    """How many k ≥ 0 have ``start + k·interval < end``: ``ceil((end - start) / interval)``,
    0 when ``end <= start``. Computed in whole microseconds, so ``end - start`` that is a
    multiple of ``interval`` never gains an image from a rounding error."""
    span = round((end - start) * 1_000_000)
    step = round(interval * 1_000_000)
    if step <= 0:
        raise ValueError("interval must be positive")
    return -(-span // step) if span > 0 else 0


@dataclass(frozen=True)
class SamplePlan:
    """One ``avsample`` run: the command and what it will write."""

    args: tuple[str, ...]
    start: float  # seconds of the source the first image is taken at
    interval: int
    end: float  # end of the sampled range in source seconds; 0 when unknown
    count: int  # images planned; 0 when the end is unknown (as many as the video gives)
    size: tuple[int, int]
    fmt: str
    images: Path  # folder of <n>.<ext>
    layout: SpriteLayout | None  # None: no sprites
    sprites: Path  # folder of sprite/<n>.<ext>

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.fmt]

    @property
    def media_seconds(self) -> float:
        """Seconds of output timeline the run writes (progress is measured on it)."""
        return self.count * self.interval

    def prepare(self) -> None:
        """Make the folders ffmpeg writes into (it does not make them)."""
        self.images.mkdir(parents=True, exist_ok=True)
        if self.layout is not None:
            self.sprites.mkdir(parents=True, exist_ok=True)

    def written_images(self) -> list[Path]:
        return _numbered(self.images, self.extension)

    def written_sheets(self) -> list[Path]:
        return _numbered(self.sprites, self.extension) if self.layout is not None else []


def _numbered(folder: Path, extension: str) -> list[Path]:
    """``0.ext``, ``1.ext``… in ``folder`` up to the first missing number."""
    found: list[Path] = []
    while (path := folder / f"{len(found)}.{extension}").is_file():
        found.append(path)
    return found


def sample_range(spec: SampleSpec, options: ImageOptions, facts: VideoFacts) -> tuple[float, float]:
    """(start, end) of the sampled range in source seconds, end 0 when unknown; start at
    or past a known end → 2337."""
    start = options.start(spec)
    end = facts.duration
    if options.duration is not None:
        end = min(end, start + options.duration) if end > 0 else start + options.duration
    if end > 0 and start >= end:
        raise TaskError(
            2337, f"ss {start:.3f} s is not before the end of the video ({facts.duration:.3f} s)"
        )
    return start, end


def plan_sample(
    spec: SampleSpec,
    options: ImageOptions,
    facts: VideoFacts,
    *,
    source_args: list[str],
    scratch: Path,
    threads: int = 0,
) -> SamplePlan:
    """The plan of one ``avsample`` task; ``source_args`` open the source (``-i`` included)."""
    start, end = sample_range(spec, options, facts)
    count = sample_count(start, end, spec.interval) if end > 0 else 0
    size = output_size(spec.size, facts)
    layout = fit_tile(spec.sprite_columns, spec.sprite_rows, *size) if spec.sprite else None
    ext = EXTENSIONS[spec.f]
    images, sprites = scratch / "images", scratch / "images" / SPRITE_DIR
    seek, offset = seek_args(start, facts.preroll)
    limit = []
    if options.duration is not None and end > 0:
        # Read no further than the range's end (seconds after the seek point).
        limit = ["-t", f"{end - (start - offset):.6f}"]
    graph = f"[0:{facts.index}]{grid_filter(offset, spec.interval, count)},{scale_filter(*size)}"
    outputs: list[str] = []
    if layout is None:
        graph += "[images]"
    else:
        graph += "[images_all];[images_all]split=2[images][tiles];[tiles]"
        if (layout.tile_width, layout.tile_height) != size:
            graph += f"scale={layout.tile_width}:{layout.tile_height},"
        graph += f"tile={layout.columns}x{layout.rows}[sheets]"
        outputs = [
            "-map", "[sheets]", *ENCODERS[spec.f],
            "-f", "image2", "-start_number", "0", str(sprites / f"%d.{ext}"),
        ]  # fmt: skip
    args = (
        *FFMPEG_HEAD,
        *threads_args(threads),
        *seek,
        *limit,
        *source_args,
        "-filter_complex",
        graph,
        "-map",
        "[images]",
        *ENCODERS[spec.f],
        "-f",
        "image2",
        "-start_number",
        "0",
        str(images / f"%d.{ext}"),
        *outputs,
    )
    return SamplePlan(
        args=args,
        start=start,
        interval=spec.interval,
        end=end,
        count=count,
        size=size,
        fmt=spec.f,
        images=images,
        layout=layout,
        sprites=sprites,
    )
