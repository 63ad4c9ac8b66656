"""Golden segment-mode plans and list builders of ``engine.segments`` (spec §3.5, §5.3.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.test_transcode_command import FACTS, INPUT

from openkvs.engine.formats import BASELINE
from openkvs.engine.segments import (
    Segment,
    SegmentPlan,
    check_pattern,
    listed_files,
    m3u8_list,
    plan_segments,
    segments_info,
)
from openkvs.engine.split import refusal
from openkvs.errors import ApiError
from openkvs.presets.avtrans import parse
from openkvs.presets.avtrans_ext import read_options

#: One video source (what CreateTask gives the ExtParam reader).
SOURCE = [{"path": "/b/k", "index": 0}]

HEAD = ["ffmpeg", "-hide_banner", "-nostdin", "-y"]
MP4 = {"f": "mp4", "VIDEO": {"vcodec": "h264"}, "AUDIO": {"acodec": "aac"}}


def plan(
    param: dict[str, Any], ext: dict[str, Any] | None = None, key: str = "list.m3u8"
) -> SegmentPlan:
    spec = parse(param, BASELINE)
    options = read_options(spec, ext or {}, SOURCE)
    return plan_segments(spec, options, FACTS, input_args=INPUT, scratch="/scratch", list_key=key)


def segment_tail(time: str, start: str, pattern: str) -> list[str]:
    return [
        "-force_key_frames", f"expr:gte(t,n_forced*{time})",
        "-f", "segment", "-segment_format", "mp4",
        "-segment_format_options", "movflags=+faststart",
        "-segment_time", time, "-segment_start_number", start, "-reset_timestamps", "1",
        "-segment_list_type", "csv", "-segment_list", "/scratch/segments.csv", pattern,
    ]  # fmt: skip


def test_default_names_beside_the_list() -> None:
    got = plan({**MP4, "segment_time": 2}, key="ep7/parts/list.m3u8")
    encode = ["-map", "0:0", "-map", "0:1", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    assert got.plan.commands == (
        (*HEAD, *INPUT, *encode, "-c:a", "aac", *segment_tail("2", "0", "/scratch/list-%03d.mp4")),
    )
    assert got.plan.output == "/scratch/segments.csv"
    assert got.plan.duration == 10.0
    assert got.prefix == "ep7/parts/"
    assert got.content_type == "video/mp4"


def test_pattern_start_number_and_start_time() -> None:
    param = {**MP4, "segment_time": 4, "start_segment_num": 1, "start_segment_time": 2}
    got = plan(param, {"segment_filename": "part-%03d", "ss": 1}, key="list.m3u8")
    [command] = got.plan.commands
    assert list(command[:8]) == [*HEAD, "-ss", "3", *INPUT]
    assert list(command[-len(segment_tail("4", "1", "")) :]) == segment_tail(
        "4", "1", "/scratch/part-%03d.mp4"
    )
    assert got.plan.duration == 7.0
    assert got.prefix == ""


def test_two_pass_forces_the_same_keyframes_in_both() -> None:
    got = plan(
        {"f": "mp4", "segment_time": 4, "VIDEO": {"vcodec": "h264", "vb": "500k", "twopass": 1}}
    )
    first, second = got.plan.commands
    assert first[-5:] == ("-force_key_frames", "expr:gte(t,n_forced*4)", "-f", "null", "-")
    assert "-force_key_frames" in second and second[-1] == "/scratch/list-%03d.mp4"


def test_copy_forces_no_keyframes() -> None:
    got = plan(
        {"f": "mp4", "segment_time": 2, "VIDEO": {"vcodec": "copy"}, "AUDIO": {"acodec": "copy"}}
    )
    [command] = got.plan.commands
    assert "-force_key_frames" not in command and "segment" in command


@pytest.mark.parametrize("good", ["part-%d.mp4", "p%05d", "x-%03d-y.ts"])
def test_good_patterns(good: str) -> None:
    assert check_pattern(good) == good


@pytest.mark.parametrize(
    "bad", ["", "part.mp4", "../p-%d.mp4", "a/p-%d", "p-%d-%d", "p-%s", "100%-%d", ".p%d", 7]
)
def test_bad_patterns_are_1018(bad: object) -> None:
    with pytest.raises(ApiError) as caught:
        check_pattern(bad)
    assert caught.value.code == 1018


def test_segment_filename_read_only_in_segment_mode() -> None:
    spec = parse(MP4, BASELINE)
    assert read_options(spec, {"segment_filename": "bad"}, SOURCE).segment_filename == ""
    spec = parse({**MP4, "segment_time": 2}, BASELINE)
    with pytest.raises(ApiError):
        read_options(spec, {"segment_filename": "bad"}, SOURCE)


def test_listed_files_in_order() -> None:
    csv = "part-000.mp4,0.000000,2.000000\npart-001.mp4,2.000000,4.000000\n\n"
    assert listed_files(csv) == ["part-000.mp4", "part-001.mp4"]


SEGMENTS = [Segment("part-000.mp4", 10.0, 2311840), Segment("part-001.mp4", 9.96, 2198003)]


def test_segments_info_is_the_seed_string() -> None:
    assert segments_info(SEGMENTS) == (
        '[{"fileindex":0,"filename":"part-000.mp4","duration":"10.0000","filesize":2311840},'
        '{"fileindex":1,"filename":"part-001.mp4","duration":"9.9600","filesize":2198003}]'
    )
    assert json.loads(segments_info([])) == []


def test_m3u8_list() -> None:
    assert m3u8_list(SEGMENTS) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:10.000000,\npart-000.mp4\n"
        "#EXTINF:9.960000,\npart-001.mp4\n#EXT-X-ENDLIST\n"
    )


def test_segment_mode_is_never_split() -> None:
    spec = parse({**MP4, "segment_time": 2, "VIDEO": {"vcodec": "h264", "crf": 23}}, BASELINE)
    options = read_options(spec, {}, SOURCE)
    assert refusal(spec, options, FACTS, "mov,mp4,m4a,3gp,3g2,mj2", 1.0) == (
        "segment mode writes several files"
    )
    plain = parse({**MP4, "VIDEO": {"vcodec": "h264", "crf": 23}}, BASELINE)
    assert refusal(plain, options, FACTS, "mov,mp4,m4a,3gp,3g2,mj2", 1.0) == ""
