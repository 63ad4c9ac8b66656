"""engine/progress.py: ffmpeg ``-progress pipe:1`` text → percent (golden samples).

The samples are verbatim stdout of ffmpeg 5.1 runs with ``-progress pipe:1 -nostats``,
captured while writing the parser (the command is above each). Samples marked "shaped"
follow ``print_report`` of FFmpeg 5.1's fftools for values that a short local run does not
print (``N/A`` before any packet has a timestamp, a negative time from encoder priming).
"""

from __future__ import annotations

import pytest

from openkvs.engine.progress import (
    BEFORE_END,
    ProgressParser,
    parse_clock,
    parse_micros,
    parse_speed,
    parse_text,
)

# ffmpeg -i src720.mp4 (testsrc2 1280x720 25 fps, 20 s) -c:v libx264 -preset veryfast
#   -s 640x360 -progress pipe:1 -nostats out.mp4
VIDEO_20S = """\
frame=1
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=   0x
progress=continue
frame=70
fps=0.00
stream_0_0_q=28.0
bitrate=   0.2kbits/s
total_size=48
out_time_us=2000078
out_time_ms=2000078
out_time=00:00:02.000078
dup_frames=0
drop_frames=0
speed=3.96x
progress=continue
frame=164
fps=161.93
stream_0_0_q=28.0
bitrate=   0.1kbits/s
total_size=48
out_time_us=5760078
out_time_ms=5760078
out_time=00:00:05.760078
dup_frames=0
drop_frames=0
speed=5.69x
progress=continue
frame=258
fps=170.36
stream_0_0_q=28.0
bitrate= 220.3kbits/s
total_size=262192
out_time_us=9520078
out_time_ms=9520078
out_time=00:00:09.520078
dup_frames=0
drop_frames=0
speed=6.29x
progress=continue
frame=348
fps=172.35
stream_0_0_q=28.0
bitrate= 319.7kbits/s
total_size=524336
out_time_us=13120078
out_time_ms=13120078
out_time=00:00:13.120078
dup_frames=0
drop_frames=0
speed= 6.5x
progress=continue
frame=416
fps=164.41
stream_0_0_q=28.0
bitrate= 264.8kbits/s
total_size=524336
out_time_us=15840078
out_time_ms=15840078
out_time=00:00:15.840078
dup_frames=0
drop_frames=0
speed=6.26x
progress=continue
frame=490
fps=160.84
stream_0_0_q=28.0
bitrate= 223.1kbits/s
total_size=524336
out_time_us=18800078
out_time_ms=18800078
out_time=00:00:18.800078
dup_frames=0
drop_frames=0
speed=6.17x
progress=continue
frame=500
fps=158.11
stream_0_0_q=-1.0
bitrate= 334.8kbits/s
total_size=831930
out_time_us=19880078
out_time_ms=19880078
out_time=00:00:19.880078
dup_frames=0
drop_frames=0
speed=6.29x
progress=end
"""

# ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=25:duration=2 -c:v libx264 -preset medium
#   -stats_period 0.1 -progress pipe:1 -nostats out.mp4: x264's lookahead holds the first
#   packets, so the first five blocks say 0 (and speed N/A), and the end is short of 2 s.
LOOKAHEAD_2S = """\
frame=1
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=12
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=   0x
progress=continue
frame=27
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=   0x
progress=continue
frame=42
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=   0x
progress=continue
frame=47
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=   0x
progress=continue
frame=50
fps=49.25
stream_0_0_q=-1.0
bitrate=2854.1kbits/s
total_size=670753
out_time_us=1880078
out_time_ms=1880078
out_time=00:00:01.880078
dup_frames=0
drop_frames=0
speed=1.85x
progress=end
"""

# ffmpeg -f lavfi -i sine=d=30 -c:a libmp3lame -progress pipe:1 -nostats a.mp3
AUDIO_30S = """\
bitrate=N/A
total_size=227
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
bitrate=  64.1kbits/s
total_size=240553
out_time_us=30015760
out_time_ms=30015760
out_time=00:00:30.015760
dup_frames=0
drop_frames=0
speed=97.4x
progress=end
"""

# Shaped: the first block of a run whose first packet has no timestamp yet, then one whose
# audio encoder's priming puts the first packet before zero (print_report prints the sign
# before the hours), then a normal block.
SHAPED_NA_NEGATIVE = """\
frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=N/A
out_time_us=N/A
out_time_ms=N/A
out_time=N/A
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=-23220
out_time_ms=-23220
out_time=-00:00:00.023220
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=25
fps=0.00
stream_0_0_q=28.0
bitrate= 101.2kbits/s
total_size=12345
out_time_us=1000000
out_time_ms=1000000
out_time=00:00:01.000000
dup_frames=0
drop_frames=0
speed=2.01x
progress=continue
"""


def test_video_run_reports_each_block_and_100_at_the_end() -> None:
    assert [round(p, 4) for p in parse_text(VIDEO_20S, 20.0)] == [
        10.0004,
        28.8004,
        47.6004,
        65.6004,
        79.2004,
        94.0004,
        100.0,
    ]


def test_the_parser_keeps_position_and_speed() -> None:
    parser = ProgressParser(20.0)
    for line in VIDEO_20S.splitlines():
        parser.feed(line)
    assert parser.ended and parser.percent == 100.0
    assert parser.out_time == pytest.approx(19.880078)
    assert parser.speed == pytest.approx(6.29)


def test_blocks_that_stay_at_zero_report_nothing_until_the_end() -> None:
    # Output 0.12 s short of the 2 s asked: still 100 at progress=end, and only then.
    assert parse_text(LOOKAHEAD_2S, 2.0) == [100.0]


def test_audio_run() -> None:
    assert parse_text(AUDIO_30S, 30.0) == [100.0]


def test_n_a_and_negative_times_are_not_progress() -> None:
    parser = ProgressParser(4.0)
    seen = [parser.feed(line) for line in SHAPED_NA_NEGATIVE.splitlines()]
    assert [p for p in seen if p is not None] == [25.0]
    assert parser.speed == pytest.approx(2.01)
    assert not parser.ended


def test_percent_stays_below_100_until_the_end() -> None:
    # ffmpeg may write more than the planned duration (rounding up to whole frames, audio
    # padding): capped at BEFORE_END while it runs.
    text = VIDEO_20S.replace("progress=end", "progress=continue")
    found = [round(p, 4) for p in parse_text(text, 10.0)]
    assert found == [20.0008, 57.6008, 95.2008, BEFORE_END]


def test_percent_never_decreases() -> None:
    blocks = "".join(f"out_time_us={s}000000\nprogress=continue\n" for s in (3, 1, 2, 5, 4))
    assert parse_text(blocks, 10.0) == [30.0, 50.0]


def test_unknown_duration_moves_only_at_the_end() -> None:
    for duration in (0.0, -1.0, float("nan"), float("inf")):
        assert parse_text(VIDEO_20S, duration) == [100.0]


def test_out_time_ms_and_out_time_are_used_when_out_time_us_is_missing() -> None:
    # out_time_ms is microseconds too (FFmpeg's naming mistake).
    assert parse_text("out_time_ms=5000000\nprogress=continue\n", 10.0) == [50.0]
    assert parse_text("out_time=00:01:00.500000\nprogress=continue\n", 121.0) == [50.0]
    assert parse_text("out_time_us=N/A\nout_time=00:00:05.000000\nprogress=continue\n", 10.0) == [
        50.0
    ]


def test_a_block_without_a_time_keeps_the_last_one() -> None:
    text = "out_time_us=5000000\nprogress=continue\nframe=9\nprogress=continue\n"
    assert parse_text(text, 10.0) == [50.0]


def test_lines_that_are_not_key_value_are_ignored() -> None:
    text = "\n  \ngarbage\nout_time_us=2500000\r\nprogress=continue\r\n"
    assert parse_text(text, 10.0) == [25.0]


def test_nothing_after_the_end_changes_it() -> None:
    parser = ProgressParser(10.0)
    for line in ("out_time_us=1000000", "progress=end", "out_time_us=2000000"):
        parser.feed(line)
    assert parser.feed("progress=continue") is None and parser.percent == 100.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:05.760078", 5.760078),
        ("01:02:03.5", 3723.5),
        ("-00:00:00.023220", -0.02322),
        ("100:00:00.000000", 360000.0),
        ("N/A", None),
        ("", None),
        ("5.0", None),
    ],
)
def test_parse_clock(text: str, seconds: float | None) -> None:
    found = parse_clock(text)
    assert found == (None if seconds is None else pytest.approx(seconds))


def test_parse_micros_and_speed() -> None:
    assert parse_micros("5760078") == pytest.approx(5.760078)
    assert parse_micros("-23220") == pytest.approx(-0.02322)
    assert parse_micros("N/A") is None
    assert parse_speed("3.96x") == pytest.approx(3.96)
    assert parse_speed("   0x") == 0.0
    assert parse_speed(" 6.5x") == 6.5
    assert parse_speed("N/A") is None
