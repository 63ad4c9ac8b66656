"""Soft subtitles in an HLS output, end to end (real ``openkvs serve``, the official SDK, real
ffmpeg): a WebVTT subtitle rendition listed by a master playlist at DstObjectKey, its cue in
step with the picture, the video rendition still playable segment by segment."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import m3u8
import pytest
from tests.integration.conftest import BUCKET, Deployment

pytestmark = pytest.mark.slow

PRESET = "hls_soft_subtitles"
PARAM = {
    "f": "hls",
    "hls_time": 1,
    "VIDEO": {"vcodec": "h264", "preset": "ultrafast", "crf": 23},
    "AUDIO": {"acodec": "aac", "ab": "64k"},
}
TEXT = "OPENKVS HLS SUBTITLE"
_MAP = re.compile(r"X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:(\S+)")
_CUE = re.compile(r"^((?:\d+:)?\d{2}:\d{2}\.\d{3}) --> ", re.M)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True, timeout=60)


def _json(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def _seconds(stamp: str) -> float:
    fields = [float(f) for f in stamp.split(":")]
    return sum(value * 60**power for power, value in enumerate(reversed(fields)))


def _package(kvs: Deployment, sources: tuple[str, str], key: str, **ext: Any) -> Path:
    """The master playlist of a task on ``sources`` (video, subtitles), soft subtitles."""
    reply = kvs.client.create_task(
        Preset=PRESET,
        SrcInfo=[
            {"path": sources[0], "index": 0},
            {"path": sources[1], "index": 1, "type": "subtitle"},
        ],
        DstBucket=BUCKET,
        DstObjectKey=key,
        ExtParam=json.dumps({"subtitle": "soft", **ext}),
    )
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=120)
    assert info["TaskStatus"] == "succ", info
    return kvs.data_dir / "buckets" / BUCKET / key


@pytest.fixture(scope="module")
def sources(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A 3 s video and one cue from 1.0 to 2.0 s; the preset."""
    folder = tmp_path_factory.mktemp("hls-subtitles")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        str(folder / "a.mp4"),
    )  # fmt: skip
    (folder / "cue.en.srt").write_text(f"1\n00:00:01,000 --> 00:00:02,000\n{TEXT}\n")
    reply = kvs.client.preset(Preset=PRESET, PresetType="avtrans", Param=PARAM)
    assert reply["ErrNum"] in (0, 1201), reply
    return (
        kvs.upload(folder / "a.mp4", "hlssub/a.mp4"),
        kvs.upload(folder / "cue.en.srt", "hlssub/cue.en.srt"),
    )


@pytest.fixture(scope="module")
def package(kvs: Deployment, sources: tuple[str, str]) -> Path:
    return _package(kvs, sources, "hlssub/out/movie.m3u8")


def _cue_times(master: m3u8.M3U8, folder: Path, start: float) -> list[tuple[int, float]]:
    """(segment number, where the picture shows it (s)) of every segment with the cue."""
    [media] = [m for m in master.media if m.type == "SUBTITLES"]
    subtitles = m3u8.load(str(folder / media.uri))
    found = []
    for number, segment in enumerate(subtitles.segments):
        text = (folder / segment.uri).read_text(encoding="utf-8")
        assert text.startswith("WEBVTT\n")
        mapped = _MAP.search(text)
        assert mapped, text
        if TEXT in text:
            [stamp] = _CUE.findall(text)
            shown = _seconds(stamp) - _seconds(mapped[2]) + int(mapped[1]) / 90000 - start
            found.append((number, shown))
    return found


def test_the_master_lists_a_webvtt_rendition_in_step_with_the_picture(package: Path) -> None:
    master = m3u8.load(str(package))
    assert master.is_variant
    [media] = [m for m in master.media if m.type == "SUBTITLES"]
    assert (media.group_id, media.language, media.default, media.autoselect) == (
        "subs", "en", "NO", "YES",
    )  # fmt: skip
    assert media.uri and media.name == "cue.en"
    [variant] = master.playlists
    info = variant.stream_info
    assert info.subtitles == "subs" and info.bandwidth > 0 and info.resolution == (320, 240)
    assert info.codecs.startswith("avc1.") and "mp4a.40.2" in info.codecs

    # The video rendition plays: every segment decodes, about 3 s in all.
    video = m3u8.load(str(package.parent / variant.uri))
    assert abs(sum(s.duration for s in video.segments) - 3.0) < 0.15
    for segment in video.segments:
        decoded = _json("-count_frames", "-show_streams", str(package.parent / segment.uri))
        frames = [int(s.get("nb_read_frames") or 0) for s in decoded["streams"]]
        assert min(frames) > 0, decoded
    first = _json("-show_streams", str(package.parent / video.segments[0].uri))
    start = next(float(s["start_time"]) for s in first["streams"] if s["codec_type"] == "video")

    # The subtitle rendition: one .vtt per video segment, the cue where the picture has it.
    subtitles = m3u8.load(str(package.parent / media.uri))
    assert len(subtitles.segments) == len(video.segments)
    assert subtitles.target_duration == video.target_duration
    found = _cue_times(master, package.parent, start)
    # hls_time 1: the cue (1.0 to 2.0 s) is in the second segment only.
    assert [number for number, _ in found] == [1], found
    assert abs(found[0][1] - 1.0) < 0.1, found


def test_ffprobe_reads_the_package(package: Path) -> None:
    # FFmpeg's HLS demuxer opens subtitle renditions only with -strict experimental.
    probed = _json(
        "-strict", "experimental", "-allowed_extensions", "ALL",
        "-protocol_whitelist", "file,crypto", "-show_streams", str(package),
    )  # fmt: skip
    kinds = sorted((s["codec_type"], s["codec_name"]) for s in probed["streams"])
    assert ("video", "h264") in kinds and ("audio", "aac") in kinds
    assert ("subtitle", "webvtt") in kinds, kinds


def test_fmp4_segments_and_ss(kvs: Deployment, sources: tuple[str, str], tmp_path: Path) -> None:
    """With ss=0.5 the cue shows 0.5 s into the output, in fMP4 segments too."""
    passed = {"hls_segment_type": "fmp4"}
    top = _package(kvs, sources, "hlssub/fmp4/m.m3u8", ss="0.5", passParams=passed)
    master = m3u8.load(str(top))
    video = m3u8.load(str(top.parent / master.playlists[0].uri))
    first = tmp_path / "first.mp4"
    first.write_bytes(
        (top.parent / video.segment_map[0].uri).read_bytes()
        + (top.parent / video.segments[0].uri).read_bytes()
    )
    streams = _json("-show_streams", str(first))["streams"]
    start = next(float(s["start_time"]) for s in streams if s["codec_type"] == "video")
    found = _cue_times(master, top.parent, start)
    assert [number for number, _ in found] == [0, 1], found  # 0.5 to 1.5 s
    assert all(abs(shown - 0.5) < 0.1 for _, shown in found), found
