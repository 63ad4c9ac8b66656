"""Sprite sheets and the WebVTT thumbnail track (engine/sprite.py): pure rules."""

from __future__ import annotations

import json
import re

import pytest

from openkvs.engine.sprite import (
    MAX_SHEET_SIDE,
    SpriteLayout,
    cue_times,
    fit_tile,
    thumbnail_track,
    thumbnails_info,
    vtt_time,
)

CUE = re.compile(
    r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})\n"
    r"([^#\n]+)#xywh=(\d+),(\d+),(\d+),(\d+)\n"
)


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_track(text: str) -> list[tuple[float, float, str, tuple[int, int, int, int]]]:
    """(from, to, sheet name, (x, y, w, h)) of every cue; the text must be nothing else."""
    assert text.startswith("WEBVTT\n\n")
    body = text[len("WEBVTT\n\n") :]
    cues = []
    position = 0
    for found in CUE.finditer(body):
        assert found.start() == position, body[position : found.start()]
        g = found.groups()
        x, y, w, h = (int(v) for v in g[9:13])
        cues.append((_seconds(*g[0:4]), _seconds(*g[4:8]), g[8], (x, y, w, h)))
        position = found.end() + 1  # the blank line after each cue
    assert position >= len(body)
    return cues


def test_tiles_fill_rows_left_to_right_then_the_next_sheet() -> None:
    layout = SpriteLayout(columns=3, rows=2, tile_width=40, tile_height=30)
    assert layout.per_sheet == 6 and layout.sheet_size == (120, 60)
    assert [layout.place(k) for k in range(8)] == [
        (0, 0, 0), (0, 40, 0), (0, 80, 0),
        (0, 0, 30), (0, 40, 30), (0, 80, 30),
        (1, 0, 0), (1, 40, 0),
    ]  # fmt: skip
    assert [layout.sheets(n) for n in (0, 1, 6, 7, 12, 13)] == [0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize(("columns", "rows", "images"), [(1, 1, 5), (10, 10, 250), (4, 3, 11)])
def test_every_image_has_its_own_tile_inside_its_sheet(
    columns: int, rows: int, images: int
) -> None:
    layout = SpriteLayout(columns, rows, 16, 9)
    places = [layout.place(k) for k in range(images)]
    assert len(set(places)) == images
    width, height = layout.sheet_size
    for sheet, x, y in places:
        assert 0 <= sheet < layout.sheets(images)
        assert 0 <= x <= width - 16 and 0 <= y <= height - 9
        assert x % 16 == 0 and y % 9 == 0


def test_tiles_keep_the_image_size_unless_the_sheet_gets_too_big() -> None:
    assert fit_tile(10, 10, 160, 90) == SpriteLayout(10, 10, 160, 90)
    big = fit_tile(10, 10, 1920, 1080)  # 19200 x 10800 would be the sheet
    assert big.sheet_size[0] <= MAX_SHEET_SIDE and big.sheet_size[1] <= MAX_SHEET_SIDE
    assert big.tile_width == 819 and big.tile_height == 460  # 1920 x 0.4267, aspect kept
    tall = fit_tile(1, 40, 300, 400)  # 40 rows of 400 px
    assert tall.sheet_size[1] <= MAX_SHEET_SIDE and tall.tile_width == 153
    assert fit_tile(1, 1, 8192, 8192) == SpriteLayout(1, 1, 8192, 8192)


def test_vtt_times() -> None:
    assert vtt_time(0) == "00:00:00.000"
    assert vtt_time(1.5) == "00:00:01.500"
    assert vtt_time(61.0004) == "00:01:01.000"
    assert vtt_time(3599.9996) == "01:00:00.000"
    assert vtt_time(360000 + 0.25) == "100:00:00.250"


def test_cues_cover_each_interval_and_end_at_the_end() -> None:
    assert cue_times(3, 0.5, 2, 5.2) == [(0.5, 2.5), (2.5, 4.5), (4.5, 5.2)]
    assert cue_times(2, 0, 5, 0) == [(0, 5), (5, 10)]  # end unknown


def test_track_addresses_every_tile_once_with_its_time() -> None:
    layout = SpriteLayout(columns=2, rows=2, tile_width=80, tile_height=45)
    text = thumbnail_track(layout, ["0.jpg", "1.jpg"], images=6, start=10.0, interval=5, end=38.0)
    cues = parse_track(text)
    assert [(c[0], c[1]) for c in cues] == [
        (10, 15), (15, 20), (20, 25), (25, 30), (30, 35), (35, 38),
    ]  # fmt: skip
    assert [(c[2], c[3]) for c in cues] == [
        ("0.jpg", (0, 0, 80, 45)),
        ("0.jpg", (80, 0, 80, 45)),
        ("0.jpg", (0, 45, 80, 45)),
        ("0.jpg", (80, 45, 80, 45)),
        ("1.jpg", (0, 0, 80, 45)),
        ("1.jpg", (80, 0, 80, 45)),
    ]
    assert len({(c[2], c[3]) for c in cues}) == len(cues)


def test_thumbnailsinfo_is_a_json_text_in_sheet_order() -> None:
    text = thumbnails_info([("d/sprite/0.jpg", 1234), ("d/sprite/1.jpg", 99)])
    assert isinstance(text, str) and " " not in text
    assert json.loads(text) == [
        {"fileindex": 0, "thumbnailpath": "d/sprite/0.jpg", "filesize": 1234},
        {"fileindex": 1, "thumbnailpath": "d/sprite/1.jpg", "filesize": 99},
    ]
