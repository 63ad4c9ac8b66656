"""Object serving, pure parts: the Range header and Content-Type by extension."""

from __future__ import annotations

import pytest

from openkvs.api.objects import Unsatisfiable, parse_range
from openkvs.storage.mime import content_type_for


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-500", 100, (0, 99)),  # a suffix longer than the object: all of it
        ("bytes=90-500", 100, (90, 99)),  # the end is clamped
        ("bytes=99-99", 100, (99, 99)),
        ("BYTES=1-2", 100, (1, 2)),
        (" bytes=1-2 ", 100, (1, 2)),
        # ignored (the whole object): malformed, other units, several ranges, end < start
        ("bytes=5-3", 100, None),
        ("bytes=-", 100, None),
        ("bytes=abc", 100, None),
        ("bytes=1-2,4-5", 100, None),
        ("items=0-1", 100, None),
        ("bytes=+1-2", 100, None),
        ("bytes=1_0-20", 100, None),
        ("bytes=١-٢", 100, None),
        ("bytes=0-" + "9" * 40, 100, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100), ("bytes=0-", 0)],
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_content_types() -> None:
    assert content_type_for("in/song.MP3") == "audio/mpeg"
    assert content_type_for("v/a.mp4") == "video/mp4"
    assert content_type_for("hls/index.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type_for("out/wave.json") == "application/json"
    assert content_type_for("subs/a.ass") == "text/x-ssa"
    assert content_type_for("noext") == "application/octet-stream"
    assert content_type_for("dir.mp4/file") == "application/octet-stream"
