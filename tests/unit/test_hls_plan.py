"""The HLS builders (engine/hls.py, engine/hls_key.py, engine/ladder.py): golden commands,
the key's forms, the ladder, playlist measurement and the master playlist."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_transcode_command import FACTS, INPUT

from openkvs.engine.hls import (
    Entry,
    Variant,
    bit_rates,
    codec_tag,
    key_info,
    master_playlist,
    plan_hls,
    playlist_entries,
    segment_pattern,
)
from openkvs.engine.hls_key import HlsKey, parse_key
from openkvs.engine.ladder import HLS_LADDER, Rendition, hls_ladder
from openkvs.engine.split import refusal
from openkvs.engine.transcode import SourceFacts
from openkvs.errors import ApiError
from openkvs.presets.avtrans import AvtransOptions, parse
from openkvs.presets.avtrans_ext import read_options

SOURCES = [{"path": "/in/a.mp4", "index": 0, "type": "video"}]
HEAD = ["ffmpeg", "-hide_banner", "-nostdin", "-y", *INPUT]
HLS = ["-hls_time", "2", "-hls_list_size", "0", "-start_number", "5"]
KEYFRAMES = ["-force_key_frames", "expr:gte(t,n_forced*2)"]


def options(param: dict[str, Any], ext: dict[str, Any]) -> AvtransOptions:
    return read_options(parse(param), ext, SOURCES)


def test_single_rendition_command() -> None:
    param = {"f": "hls", "hls_time": 2, "start_segment_num": 5, "VIDEO": {"preset": "ultrafast"}}
    planned = plan_hls(
        parse(param), AvtransOptions(), FACTS, input_args=INPUT, scratch="/s",
        playlist_key="vod/movie.m3u8",
    )  # fmt: skip
    assert planned.plan.commands == (
        (
            *HEAD, "-map", "0:0", "-map", "0:1", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", "-c:a", "aac", *KEYFRAMES, *HLS, "-hls_playlist_type", "vod",
            "-hls_segment_filename", "/s/package/movie-%d.ts", "-f", "hls",
            "/s/package/movie.m3u8",
        ),
    )  # fmt: skip
    assert planned.folder == "/s/package" and planned.master == "" and planned.key_name == ""
    assert planned.plan.output == "/s/package/movie.m3u8"


def test_ladder_key_fmp4_and_copy() -> None:
    param = {"f": "hls", "hls_time": 2, "start_segment_num": 5}
    ext = {"mulHlsRate": 1, "passParams": {"hls_segment_type": "fmp4", "hls_playlist_type": "vod"}}
    planned = plan_hls(
        parse(param), options(param, ext), FACTS, input_args=INPUT, scratch="/s",
        playlist_key="m.m3u8", renditions=hls_ladder(FACTS),
    )  # fmt: skip
    [command] = planned.plan.commands
    assert command[: len(HEAD)] == tuple(HEAD)
    outputs = [command[i + 1] for i, word in enumerate(command) if word == "-f"]
    assert outputs == ["hls"] * 4
    assert command[-1] == "/s/package/m-240p.m3u8"
    names = [o.playlist for o in planned.outputs]
    assert names == ["m-720p.m3u8", "m-480p.m3u8", "m-360p.m3u8", "m-240p.m3u8"]
    assert planned.master == "m.m3u8"
    assert command.count("-hls_segment_type") == 4 and command.count("-hls_playlist_type") == 4
    assert "/s/package/m-480p-%d.m4s" in command and "m-480p-init.mp4" in command
    assert command.count("-force_key_frames") == 4
    assert "scale=852:480,setsar=1" in command and "scale=426:240,setsar=1" in command
    assert "-vf" not in command[: command.index("/s/package/m-720p.m3u8")]  # 720p: as is

    key = HlsKey("ab" * 16)
    copy = {"f": "hls", "hls_time": 2, "VIDEO": {"vcodec": "copy"}}
    planned = plan_hls(
        parse(copy), AvtransOptions(), FACTS, input_args=INPUT, scratch="/s",
        playlist_key="a/b/c.m3u8", key=key,
    )  # fmt: skip
    [command] = planned.plan.commands
    assert "-force_key_frames" not in command  # cuts on the source's keyframes
    assert command[command.index("-hls_key_info_file") + 1] == "/s/hls.keyinfo"
    assert planned.key_name == "c.key"
    assert key_info(key, "/s/package/c.key", "c") == "c.key\n/s/package/c.key\n"
    with_iv = HlsKey("ab" * 16, "https://k.example/1", "cd" * 16)
    assert key_info(with_iv, "/k", "c") == f"https://k.example/1\n/k\n{'cd' * 16}\n"


def test_segment_names() -> None:
    assert segment_pattern(AvtransOptions(), "movie") == "movie-%d.ts"
    assert segment_pattern(AvtransOptions(), "movie", "720p") == "movie-720p-%d.ts"
    named = AvtransOptions(segment_filename="seg_%03d")
    assert segment_pattern(named, "movie") == "seg_%03d.ts"
    assert segment_pattern(named, "movie", "720p") == "720p-seg_%03d.ts"
    fmp4 = AvtransOptions(pass_params={"hls_segment_type": "fmp4"})
    assert segment_pattern(fmp4, "movie") == "movie-%d.m4s"
    single = AvtransOptions(pass_params={"hls_flags": "single_file"})
    assert segment_pattern(single, "movie") == "movie.ts"
    assert segment_pattern(single, "movie", "720p") == "movie-720p.ts"
    named_single = AvtransOptions(
        segment_filename="%d.ts", pass_params={"hls_flags": "single_file"}
    )
    assert segment_pattern(named_single, "movie") == "movie.ts"
    assert options({"f": "hls"}, {"segment_filename": "p%02d.ts"}).segment_filename == "p%02d.ts"
    with pytest.raises(ApiError) as info:
        options({"f": "hls"}, {"segment_filename": "a/%d.ts"})
    assert info.value.code == 1018


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("AB" * 16, HlsKey("ab" * 16)),
        ({"key": "ab" * 16, "url": "https://k/1", "iv": "CD" * 16},
         HlsKey("ab" * 16, "https://k/1", "cd" * 16)),
        ({"key": "ab" * 16, "acl": "public-read"}, HlsKey("ab" * 16, acl="public-read")),
    ],
)  # fmt: skip
def test_key_forms(raw: Any, expected: HlsKey | None) -> None:
    assert parse_key(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["ab", "zz" * 16, {"key": "ab" * 16, "iv": "1"}, {"iv": "ab" * 16}, {"key": "ab" * 16,
     "url": "a\nb"}, {"key": "ab" * 16, "acl": "x"}, {"key": "ab" * 16, "k": 1}, 7, ["ab" * 16]],
)  # fmt: skip
def test_bad_keys_are_1018(raw: Any) -> None:
    with pytest.raises(ApiError) as info:
        parse_key(raw)
    assert info.value.code == 1018 and "hlsKey" in info.value.detail


def test_ext_params_of_hls() -> None:
    got = options({"f": "hls"}, {"mulHlsRate": "1", "hlsKey": "ab" * 16})
    assert got.mul_hls_rate and got.hls_key == HlsKey("ab" * 16)
    assert not options({"f": "hls"}, {"mulHlsRate": 0}).mul_hls_rate
    for param, ext, code in (
        ({"f": "mp4"}, {"mulHlsRate": 1}, 1018),
        ({"f": "hls"}, {"mulHlsRate": 2}, 1018),
        ({"f": "hls", "VIDEO": {"vcodec": "copy"}}, {"mulHlsRate": 1}, 1018),
        ({"f": "dash"}, {"hlsKey": "ab" * 16}, 1018),
        ({"f": "hls"}, {"passParams": {"hls_flags": "omit_endlist"}}, 1018),
        ({"f": "mp4"}, {"passParams": {"hls_segment_type": "fmp4"}}, 1018),
    ):
        with pytest.raises(ApiError) as info:
            options(param, ext)
        assert info.value.code == code, (param, ext)


def test_packages_are_never_split() -> None:
    for f in ("hls", "dash"):
        spec = parse({"f": f, "VIDEO": {"crf": 23}})
        assert refusal(spec, AvtransOptions(), FACTS, "mov,mp4,m4a,3gp,3g2,mj2", 1.0) != ""


def test_ladder_never_upscales() -> None:
    def ladder(width: int, height: int) -> list[tuple[str, int]]:
        facts = SourceFacts(has_video=True, width=width, height=height)
        return [(r.name, r.short_side) for r in hls_ladder(facts)]

    assert ladder(1920, 1080) == [("1080p", 0), ("720p", 720), ("480p", 480), ("360p", 360),
                                  ("240p", 240)]  # fmt: skip
    assert ladder(640, 360) == [("360p", 0), ("240p", 240)]
    assert ladder(360, 640) == [("360p", 0), ("240p", 240)]  # portrait: the short side
    assert ladder(1000, 500) == [("480p", 480), ("360p", 360), ("240p", 240)]
    assert ladder(160, 120) == [("120p", 0)]  # below the lowest rung: the source's size
    low = hls_ladder(SourceFacts(has_video=True, width=160, height=120))[0]
    assert low == Rendition("120p", 0, 0, 0, HLS_LADDER[-1].video_bitrate, 64_000)


def test_playlist_measure_and_master() -> None:
    text = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000000,\nm-0.ts\n"
        "#EXTINF:1.5,\n#EXT-X-BYTERANGE:100@0\nm-1.ts\n#EXT-X-ENDLIST\n"
    )
    entries = playlist_entries(text)
    assert entries == [Entry("m-0.ts", 2.0), Entry("m-1.ts", 1.5, 100)]
    assert bit_rates(entries, [1000, 300]) == (4000, 2972)
    assert codec_tag({"codec_name": "h264", "profile": "High", "level": 31}) == "avc1.64001f"
    assert codec_tag({"codec_name": "h264", "profile": "Constrained Baseline", "level": 30}) == (
        "avc1.42e01e"
    )
    assert codec_tag({"codec_name": "h264", "profile": "Main", "level": 40}) == "avc1.4d4028"
    assert codec_tag({"codec_name": "aac", "profile": "LC"}) == "mp4a.40.2"
    assert codec_tag({"codec_name": "aac", "profile": "HE-AAC"}) == "mp4a.40.5"
    assert codec_tag({"codec_name": "hevc", "profile": "Main", "level": 93}) == "hvc1.1.6.L93.90"
    assert codec_tag({"codec_name": "mp3"}) == "mp4a.40.34"
    assert codec_tag({"codec_name": "opus"}) == ""
    master = master_playlist(
        [
            Variant("m-360p.m3u8", 900_000, 700_000, 640, 360, 25.0, "avc1.64001e,mp4a.40.2"),
            Variant("m-240p.m3u8", 450_000, 380_000, 426, 240, 25.0, ""),
        ],
        independent=True,
    )
    assert master == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,RESOLUTION=640x360,"
        'FRAME-RATE=25.000,CODECS="avc1.64001e,mp4a.40.2"\nm-360p.m3u8\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=450000,AVERAGE-BANDWIDTH=380000,RESOLUTION=426x240,"
        "FRAME-RATE=25.000\nm-240p.m3u8\n"
    )
