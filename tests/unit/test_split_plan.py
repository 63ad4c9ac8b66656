"""Golden plans of ``engine.split``: which tasks split, where the chunks are cut, and the
exact probe, part, concat and stitch commands."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest

from openkvs.engine.split import (
    Chunk,
    concat_list,
    constant_rate,
    keyframe_offsets,
    keyframe_probe,
    output_fps,
    part_plan,
    plan_chunks,
    refusal,
    seconds,
    stitch_plan,
    targets,
)
from openkvs.engine.transcode import SourceFacts
from openkvs.presets.avtrans import AvtransOptions, parse
from openkvs.presets.avtrans_ext import read_options

#: A 3-minute 320x180 25 fps H.264 + mono 48 kHz AAC source.
FACTS = SourceFacts(
    duration=180.0,
    has_video=True,
    has_audio=True,
    width=320,
    height=180,
    fps=25.0,
    video_codec="h264",
    pix_fmt="yuv420p",
    audio_codec="aac",
    sample_rate=48000,
    channels=1,
    video_index=0,
    audio_index=1,
)
INPUT = ["-i", "/src/long.mp4"]
S = 1_000_000  # microseconds in a second
MP4 = "mov,mp4,m4a,3gp,3g2,mj2"  # what ffprobe calls an MP4 source's format
#: A keyframe every 2 s.
EVERY_2S = [Fraction(2 * n) for n in range(90)]


def _spec(param: dict[str, Any] | None = None) -> Any:
    return parse(param or {"f": "mp4", "VIDEO": {"preset": "veryfast"}})


def _options(spec: Any, ext: dict[str, Any] | None = None) -> AvtransOptions:
    return read_options(spec, ext or {}, [{"path": "/b/k", "index": 0}])


def test_seconds_are_exact_microseconds() -> None:
    assert seconds(60 * S) == "60"
    assert seconds(61_500_000) == "61.5"
    assert seconds(2_002_000) == "2.002"
    assert seconds(1) == "0.000001"
    assert seconds(0) == "0"


def test_targets_divide_the_clip_evenly() -> None:
    assert targets(0, 180 * S, 60) == [60 * S, 120 * S]
    assert targets(0, 200 * S, 60) == [66_666_666, 133_333_333]
    assert targets(10 * S, 90 * S, 60) == [55 * S]  # two parts of 45 s
    assert targets(0, 80 * S, 60) == []  # one part: no split


@pytest.mark.parametrize(
    ("param", "ext", "facts", "fmt", "why"),
    [
        ({"f": "mp4"}, {}, FACTS, MP4, ""),
        ({"f": "mkv", "VIDEO": {"vcodec": "h265"}}, {}, FACTS, "matroska,webm", ""),
        ({"f": "mp4"}, {}, FACTS, "mpegts", "a mpegts source cannot be cut exactly at keyframes"),
        ({"f": "mp4", "VIDEO": {"vcodec": "copy"}}, {}, FACTS, MP4, "only re-encoded"),
        ({"f": "gif"}, {}, FACTS, MP4, "f=gif is not split"),
        ({"f": "mp3"}, {}, FACTS, MP4, "f=mp3 is not split"),
        ({"f": "mp4", "VIDEO": {"fieldmatch": 1}}, {}, FACTS, MP4, "fieldmatch"),
        ({"f": "mp4", "VIDEO": {"crf": 20, "vb": "1m"}}, {}, FACTS, MP4, ""),
        ({"f": "mp4", "VIDEO": {"lossless": 1}}, {}, FACTS, MP4, ""),
        ({"f": "webm", "VIDEO": {}}, {}, FACTS, MP4, ""),
        ({"f": "mp4", "VIDEO": {"vb": "1m"}}, {}, FACTS, MP4, "a bit rate"),
        ({"f": "mp4", "VIDEO": {"vb": "1m", "twopass": 1}}, {}, FACTS, MP4, "a bit rate"),
        ({"f": "mp4"}, {"duration": 59}, FACTS, MP4, "shorter than 60 s"),
        ({"f": "mp4"}, {"ss": 121}, FACTS, MP4, "shorter than 60 s"),
        ({"f": "mp4"}, {}, replace(FACTS, has_video=False), MP4, "only re-encoded"),
        ({"f": "mp4", "autorotate": 0}, {}, replace(FACTS, rotation=90), MP4, "a rotation flag"),
    ],
)
def test_which_tasks_split(
    param: dict[str, Any], ext: dict[str, Any], facts: SourceFacts, fmt: str, why: str
) -> None:
    spec = _spec(param)
    found = refusal(spec, _options(spec, ext), facts, fmt, 60)
    assert found.startswith(why) if why else found == ""


def test_splitting_is_off_at_zero() -> None:
    spec = _spec()
    assert refusal(spec, _options(spec), FACTS, MP4, 0) == "splitting is off"


def test_keyframes_are_read_exactly_from_the_probe() -> None:
    answer = {
        "packets": [
            {"pts": 126000, "flags": "K__"},  # 1.4 s: the file's start
            {"pts": 129003, "flags": "___"},
            {"pts": 306180, "flags": "K_"},  # 2.002 s after the start
            {"pts": 306180, "flags": "K_"},  # read twice (two intervals): once
            {"pts": 100000, "flags": "K_"},  # before the start: dropped
            {"flags": "K_"},  # no pts
        ],
        "streams": [{"time_base": "1/90000"}],
        "format": {"start_time": "1.400000"},
    }
    assert keyframe_offsets(answer) == (Fraction(0), Fraction(180180, 90000))
    assert keyframe_offsets({"packets": [{"pts": 1, "flags": "K"}]}) == ()


def test_the_keyframe_probe_reads_a_window_after_each_boundary() -> None:
    assert keyframe_probe(INPUT, FACTS, 1.4, [60 * S, 120_500_000]) == [
        "ffprobe", "-v", "error", "-of", "json", "-select_streams", "0",
        "-read_intervals", "61.4%+20,121.9%+20",
        "-show_entries", "packet=pts,flags:stream=time_base:format=start_time",
        "-i", "/src/long.mp4",
    ]  # fmt: skip


def test_chunks_are_cut_at_the_keyframes_nearest_even_parts() -> None:
    chunks = plan_chunks(0, None, 180 * S, EVERY_2S, 60, fps=25)
    assert chunks == (
        Chunk(0, 0, 60 * S, 0),
        Chunk(1, 60 * S, 60 * S, 60 * S),
        Chunk(2, 120 * S, None, 120 * S),
    )
    # 200 s in three: the keyframes nearest 66.7 s and 133.3 s.
    chunks = plan_chunks(0, None, 200 * S, [Fraction(2 * n) for n in range(100)], 60, fps=25)
    assert [(c.start, c.length) for c in chunks] == [
        (0, 66 * S),
        (66 * S, 68 * S),
        (134 * S, None),
    ]


def test_a_clip_keeps_its_start_and_length() -> None:
    # CLIP ss=3.3 duration=100: the first chunk starts at 3.3 s, the last ends at 103.3 s.
    # The first frame is at 3.32 s, half a frame late: at a constant rate it is shown from
    # frame 0 and again at frame 1, so the keyframe at 54 s is frame 1268 (50.72 s).
    chunks = plan_chunks(3_300_000, 100 * S, 100 * S, EVERY_2S, 50, fps=25, constant=True)
    assert chunks == (
        Chunk(0, 3_300_000, 50_720_000, 0),
        Chunk(1, 54 * S, 49_280_000, 50_720_000),
    )
    # Otherwise ffmpeg gives it the timestamp of frame 1, which the chunks cannot keep.
    assert plan_chunks(3_300_000, 100 * S, 100 * S, EVERY_2S, 50, fps=25) == ()


def test_frames_at_29_97_are_placed_on_whole_frames() -> None:
    # Keyframes every 47 frames at 30000/1001 fps, the first 0.6963 frames after the
    # clip's start (the audio starts first): the single pass at a constant rate puts
    # them on whole frames.
    frame = Fraction(1001, 30000)
    first = frame * Fraction(6963, 10000)
    keys = [first + 47 * n * frame for n in range(50)]
    chunks = plan_chunks(0, None, 70 * S, keys, 20, fps=30000 / 1001, constant=True)
    assert chunks == (
        Chunk(0, 0, 17_283_933, 0),
        Chunk(1, 17_273_799, 17_250_566, 17_283_933),
        Chunk(2, 34_524_366, 17_250_566, 34_534_500),
        Chunk(3, 51_774_933, None, 51_785_066),
    )
    # Without a constant rate ffmpeg gives such a late first frame the next frame's
    # timestamp, which the joined chunks would not keep: no split.
    assert plan_chunks(0, None, 70 * S, keys, 20, fps=30000 / 1001) == ()
    # Less than half a frame late, the first frame keeps frame 0: split.
    early = [k - frame / 2 for k in keys]
    assert len(plan_chunks(0, None, 70 * S, early, 20, fps=30000 / 1001)) == 4


def test_keyframes_off_the_frame_grid_are_not_used() -> None:
    jittered = [k + Fraction(3, 1000) * (n % 3) for n, k in enumerate(EVERY_2S)]
    chunks = plan_chunks(0, None, 180 * S, jittered, 60, fps=25)
    starts = [c.start for c in chunks]
    assert starts == [0, 60 * S, 120 * S]  # 60 and 120 are on the grid of the first
    assert plan_chunks(0, None, 180 * S, EVERY_2S, 60, fps=0) == ()


def test_a_new_frame_rate_needs_keyframes_on_its_grid() -> None:
    # vr=12 from a clip starting at 1.01 s: 2k - 1.01 is never a whole number of 1/12 s.
    assert plan_chunks(1_010_000, None, 170 * S, EVERY_2S, 60, fps=12, filtered=True) == ()
    chunks = plan_chunks(1 * S, None, 170 * S, EVERY_2S, 60, fps=12, filtered=True)
    assert [c.start for c in chunks] == [1 * S, 58 * S, 114 * S]


def test_no_chunk_is_short() -> None:
    # Keyframes only at 5 s and 178 s: both too close to an end (under 15 s of 60 s).
    assert plan_chunks(0, None, 180 * S, [Fraction(5), Fraction(178)], 60, fps=25) == ()


def test_the_output_rate_and_the_constant_rate_containers() -> None:
    assert output_fps(_spec(), FACTS) == 25
    assert output_fps(_spec({"f": "mp4", "VIDEO": {"vr": 15}}), FACTS) == 15
    capped = {"f": "mp4", "intelligentSwitch": 2, "VIDEO": {"vr": 50}}
    assert output_fps(_spec(capped), FACTS) == 25
    assert constant_rate(_spec({"f": "mov"}))
    assert not constant_rate(_spec({"f": "mkv"}))
    assert not constant_rate(_spec({"f": "mp4", "VIDEO": {"vb": "500k", "twopass": 1}}))


def test_a_part_is_the_single_pass_video_cut_to_its_chunk() -> None:
    spec = _spec({"f": "mp4", "VIDEO": {"preset": "veryfast", "crf": 26}, "AUDIO": {"ab": "64k"}})
    options = _options(spec, {"passParams": {"tune": "film", "movflags": "frag_keyframe"}})
    plan = part_plan(
        spec, options, FACTS, Chunk(1, 60 * S, 60 * S, 60 * S),
        input_args=INPUT, scratch="/scratch/p1", threads=1,
    )  # fmt: skip
    assert plan.commands == (
        (
            "ffmpeg", "-hide_banner", "-nostdin", "-y", "-threads", "1", "-ss", "60", *INPUT,
            "-map", "0:0", "-t", "60", "-c:v", "libx264", "-crf", "26", "-preset", "veryfast",
            "-pix_fmt", "yuv420p", "-an", "-threads", "1", "-movflags", "+faststart",
            "-tune:v", "film", "-f", "mp4", "/scratch/p1/output.mp4",
        ),
    )  # fmt: skip
    assert plan.duration == 60
    last = part_plan(spec, options, FACTS, Chunk(2, 120 * S, None, 120 * S), input_args=INPUT,
                     scratch="/s")  # fmt: skip
    assert "-t" not in last.commands[0]


def test_two_passes_run_in_each_part() -> None:
    spec = _spec({"f": "mp4", "VIDEO": {"vb": "300k", "twopass": 1}})
    plan = part_plan(
        spec, _options(spec), FACTS, Chunk(0, 0, 60 * S, 0), input_args=INPUT, scratch="/p"
    )
    assert len(plan.commands) == 2
    assert "/p/passlog" in plan.commands[0] and "-an" in plan.commands[0]


def test_the_concat_list_states_each_chunk_s_duration() -> None:
    chunks = (
        Chunk(0, 0, 17_283_933, 0),
        Chunk(1, 17_273_565, 17_250_566, 17_283_933),
        Chunk(2, 34_524_132, None, 34_534_500),
    )
    names = ["part-0000/output.mp4", "part-0001/output.mp4", "part-0002/output.mp4"]
    assert concat_list(chunks, names) == (
        "ffconcat version 1.0\n"
        "file 'part-0000/output.mp4'\n"
        "duration 17.283933\n"
        "file 'part-0001/output.mp4'\n"
        "duration 17.250567\n"
        "file 'part-0002/output.mp4'\n"
    )
    with pytest.raises(ValueError):
        concat_list(chunks[:1], ["it's.mp4"])


def test_the_stitch_copies_the_video_and_encodes_the_audio_once() -> None:
    spec = _spec({"f": "mp4", "VIDEO": {"crf": 26}, "AUDIO": {"ab": "64k"}})
    options = _options(
        spec, {"ss": 3.3, "duration": 100, "vol_dB": -3, "passParams": {"movflags": "dash"}}
    )
    plan = stitch_plan(
        spec, options, FACTS, concat="/scratch/parts.ffconcat", input_args=INPUT,
        scratch="/scratch", threads=1,
    )  # fmt: skip
    assert plan.commands == (
        (
            "ffmpeg", "-hide_banner", "-nostdin", "-y",
            "-f", "concat", "-safe", "1", "-protocol_whitelist", "file",
            "-i", "/scratch/parts.ffconcat",
            "-threads", "1", "-ss", "3.3", *INPUT,
            "-map", "0:v:0", "-map", "1:1", "-af", "volume=-3dB", "-t", "100",
            "-c:v", "copy", "-c:a", "aac", "-b:a", "64000", "-threads", "1",
            "-map_metadata", "1", "-map_chapters", "1",
            "-movflags", "+faststart+dash", "-f", "mp4", "/scratch/output.mp4",
        ),
    )  # fmt: skip
    assert plan.duration == 100
    assert plan.content_type == "video/mp4"


def test_the_stitch_of_a_silent_output_without_metadata() -> None:
    spec = _spec({"f": "mkv", "clearmeta": 1, "AUDIO": {"an": 1}})
    plan = stitch_plan(
        spec, _options(spec), FACTS, concat="/s/parts.ffconcat", input_args=INPUT, scratch="/s"
    )
    command = plan.commands[0]
    assert command[command.index("-map") :] == (
        "-map", "0:v:0", "-c:v", "copy", "-an",
        "-map_metadata", "-1", "-map_chapters", "-1", "-f", "matroska", "/s/output.mkv",
    )  # fmt: skip
