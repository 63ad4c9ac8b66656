"""Sprite sheets of sampled images and their WebVTT thumbnail track. Pure: no I/O.

Layout. Image k (0-based, in time order) goes to sheet ``k // (columns·rows)``; within the
sheet, tiles are filled row by row, left to right (as ffmpeg's ``tile`` filter fills them):
position ``p = k mod (columns·rows)`` is column ``p mod columns``, row ``p // columns``, at
``x = column·tile_width``, ``y = row·tile_height``. Every sheet is ``columns·tile_width`` ×
``rows·tile_height``; the tiles of the last sheet that no image fills are black.

Tile size. The sampled images' size (spec §8 Q-P6: tiles are ``width``×``height``), scaled
down, keeping its aspect ratio, only when a sheet would be wider or taller than
:data:`MAX_SHEET_SIDE` (:func:`fit_tile`).

Track. ``thumbnails.vtt`` beside the sheets has one cue per image: image k covers
``[start + k·interval, min(start + (k+1)·interval, end))`` seconds of the source, and its
payload is ``<sheet file name>#xywh=x,y,w,h`` (a URL relative to the track, the form
video.js, Shaka Player, JW Player and Plyr read).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: The widest and tallest sheet (WebP's own limit is 16383; a sheet is decoded whole in
#: memory by the players and by ffmpeg's ``tile`` filter, so it stays well below).
MAX_SHEET_SIDE = 8192


@dataclass(frozen=True)
class SpriteLayout:
    """A grid of ``columns`` × ``rows`` tiles of ``tile_width`` × ``tile_height`` pixels."""

    columns: int
    rows: int
    tile_width: int
    tile_height: int

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheet_size(self) -> tuple[int, int]:
        return self.columns * self.tile_width, self.rows * self.tile_height

    def sheets(self, images: int) -> int:
        """How many sheets ``images`` images fill."""
        return -(-images // self.per_sheet) if images > 0 else 0

    def place(self, k: int) -> tuple[int, int, int]:
        """(sheet, x, y) of image ``k``."""
        sheet, position = divmod(k, self.per_sheet)
        row, column = divmod(position, self.columns)
        return sheet, column * self.tile_width, row * self.tile_height


def fit_tile(columns: int, rows: int, width: int, height: int) -> SpriteLayout:
    """The layout of ``columns`` × ``rows`` tiles of ``width`` × ``height`` images, the tiles
    scaled down (aspect ratio kept, at least 1 pixel) when a sheet would exceed
    :data:`MAX_SHEET_SIDE` on a side."""
    factor = min(1.0, MAX_SHEET_SIDE / (columns * width), MAX_SHEET_SIDE / (rows * height))
    if factor >= 1.0:
        return SpriteLayout(columns, rows, width, height)
    tile_w = max(1, math.floor(width * factor))
    tile_h = max(1, math.floor(height * factor))
    return SpriteLayout(columns, rows, tile_w, tile_h)


def vtt_time(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (WebVTT allows more than 99 hours; rounded to the millisecond)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def cue_times(images: int, start: float, interval: float, end: float) -> list[tuple[float, float]]:
    """(from, to) seconds of each image's cue; ``end`` 0 means unknown (every cue is one
    ``interval`` long). A last cue that ``end`` would make empty keeps one millisecond."""
    times = []
    for k in range(images):
        begin = start + k * interval
        stop = begin + interval
        if end > 0:
            stop = max(min(stop, end), begin + 0.001)
        times.append((begin, stop))
    return times


def thumbnail_track(
    layout: SpriteLayout,
    sheet_names: Sequence[str],
    *,
    images: int,
    start: float,
    interval: float,
    end: float = 0.0,
) -> str:
    """The WebVTT text: one cue per image, addressing its tile on its sheet (module doc).
    ``sheet_names[n]`` is sheet n's URL relative to the track (e.g. ``"3.jpg"``)."""
    lines = ["WEBVTT", ""]
    for k, (begin, stop) in enumerate(cue_times(images, start, interval, end)):
        sheet, x, y = layout.place(k)
        lines.append(f"{vtt_time(begin)} --> {vtt_time(stop)}")
        lines.append(f"{sheet_names[sheet]}#xywh={x},{y},{layout.tile_width},{layout.tile_height}")
        lines.append("")
    return "\n".join(lines)


def thumbnails_info(sheets: Sequence[tuple[str, int]]) -> str:
    """The callback's ``thumbnailsinfo`` (spec §5.3.4): a JSON text of ``[{"fileindex",
    "thumbnailpath", "filesize"}]`` for ``(key, bytes)`` of each sheet, in order."""
    return json.dumps(
        [
            {"fileindex": index, "thumbnailpath": key, "filesize": size}
            for index, (key, size) in enumerate(sheets)
        ],
        separators=(",", ":"),
    )
