"""Golden pieces of ExtParam ``loudnorm``: the option's checks, the measure command, the
parser of loudnorm's JSON block, the normalising filters in the transcode, the split refusal."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from openkvs.engine.formats import BASELINE
from openkvs.engine.loudnorm import (
    LoudnessTarget,
    MeasuredLoudness,
    apply_chain,
    output_measure,
    parse_stats,
    shown_loudness,
)
from openkvs.engine.split import refusal
from openkvs.engine.transcode import SourceFacts, loudness_measure, plan_transcode
from openkvs.errors import ApiError
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec, parse
from openkvs.presets.avtrans_ext import read_options

FACTS = SourceFacts(
    duration=10.0,
    has_video=True,
    has_audio=True,
    width=320,
    height=240,
    fps=25.0,
    video_codec="h264",
    audio_codec="aac",
    sample_rate=44100,
    channels=2,
    video_index=0,
    audio_index=1,
)
INPUT = ["-i", "/src/in.mp4"]
SOURCES = [{"path": "/b/k", "index": 0}]
MEASURED = MeasuredLoudness(i=-41.75, tp=-38.06, lra=0.0, thresh=-51.75, offset=0.05)

#: What ffmpeg 5 prints at the end of a measure pass (its stderr, abridged).
STDERR = """size=N/A time=00:00:02.00 bitrate=N/A speed=51.2x
video:0kB audio:750kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown
[Parsed_loudnorm_1 @ 0x5602ccf6cac0]
{
\t"input_i" : "-41.75",
\t"input_tp" : "-38.06",
\t"input_lra" : "0.00",
\t"input_thresh" : "-51.75",
\t"output_i" : "-16.05",
\t"output_tp" : "-12.31",
\t"output_lra" : "0.00",
\t"output_thresh" : "-26.05",
\t"normalization_type" : "linear",
\t"target_offset" : "0.05"
}
"""


def _spec(param: dict[str, Any] | None = None) -> AvtransSpec:
    return parse(param or {"f": "mp4"}, BASELINE)


def _options(ext: dict[str, Any], param: dict[str, Any] | None = None) -> AvtransOptions:
    return read_options(_spec(param), ext, SOURCES)


def _refused(ext: dict[str, Any], param: dict[str, Any] | None = None) -> ApiError:
    with pytest.raises(ApiError) as info:
        _options(ext, param)
    return info.value


def test_targets_and_defaults() -> None:
    assert _options({}).loudnorm is None
    got = _options({"loudnorm": {"I": -16, "TP": "-1.5", "LRA": 11}}).loudnorm
    assert got == LoudnessTarget(i=-16.0, tp=-1.5, lra=11.0)
    assert _options({"loudnorm": {"I": -23}}).loudnorm == LoudnessTarget(-23.0, -2.0, 7.0)
    assert _options({"loudnorm": {}}).loudnorm == LoudnessTarget(-24.0, -2.0, 7.0)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"I": -4}, "ExtParam loudnorm.I must be a number from -70 to -5"),
        ({"I": -71}, "ExtParam loudnorm.I"),
        ({"TP": 0.5}, "ExtParam loudnorm.TP must be a number from -9 to 0"),
        ({"LRA": 0}, "ExtParam loudnorm.LRA must be a number from 1 to 50"),
        ({"LRA": "wide"}, "ExtParam loudnorm.LRA"),
        ("loud", "ExtParam loudnorm must be an object"),
    ],
)
def test_bad_values_are_1018_naming_the_key(value: Any, named: str) -> None:
    error = _refused({"loudnorm": value})
    assert error.code == 1018
    assert named in error.detail


@pytest.mark.parametrize(
    ("param", "code", "why"),
    [
        ({"f": "mp4", "AUDIO": {"acodec": "copy"}}, 1018, "the preset copies the audio"),
        ({"f": "mp4", "AUDIO": {"an": 1}}, 1018, "the output has no audio"),
        ({"f": "gif"}, 1018, "the output has no audio"),
    ],
)
def test_needs_reencoded_audio(param: dict[str, Any], code: int, why: str) -> None:
    error = _refused({"loudnorm": {"I": -16}}, param)
    assert (error.code, why in error.detail) == (code, True)


def test_parse_stats() -> None:
    assert parse_stats(STDERR) == MEASURED
    out = parse_stats(STDERR, "output")
    assert (out.i, out.tp, out.lra, out.thresh) == (-16.05, -12.31, 0.0, -26.05)
    silent = parse_stats(STDERR.replace('"-41.75"', '"-inf"'))
    assert silent.i == -math.inf
    with pytest.raises(ValueError, match="no loudnorm statistics"):
        parse_stats("Error while filtering\n")


def test_shown() -> None:
    silent = replace(MEASURED, i=-math.inf)
    assert shown_loudness(MEASURED, silent) == {
        "Input": {"I": -41.75, "TP": -38.06, "LRA": 0.0, "Thresh": -51.75},
        "Output": {"I": None, "TP": -38.06, "LRA": 0.0, "Thresh": -51.75},
    }


def test_measure_command_uses_the_clip_window_and_volume() -> None:
    spec = _spec()
    ext = {"loudnorm": {"I": -16, "TP": -1.5, "LRA": 11}, "ss": 2, "duration": 5, "vol_dB": 3}
    got = loudness_measure(spec, read_options(spec, ext, SOURCES), FACTS, input_args=INPUT)
    assert got == [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-ss", "2", *INPUT, "-nostats",
        "-map", "0:1", "-t", "5", "-vn", "-sn", "-dn",
        "-af", "volume=3dB,loudnorm=I=-16:TP=-1.5:LRA=11:print_format=json", "-f", "null", "-",
    ]  # fmt: skip


def test_no_measure_without_loudnorm_or_audio() -> None:
    spec = _spec()
    plain = read_options(spec, {}, SOURCES)
    assert loudness_measure(spec, plain, FACTS, input_args=INPUT) is None
    loud = read_options(spec, {"loudnorm": {}}, SOURCES)
    silent = replace(FACTS, has_audio=False)
    assert loudness_measure(spec, loud, silent, input_args=INPUT) is None


def test_output_measure() -> None:
    assert output_measure("/scratch/output.mp4", LoudnessTarget()) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-i", "/scratch/output.mp4", "-nostats",
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-af", "loudnorm=I=-24:TP=-2:LRA=7:print_format=json", "-f", "null", "-",
    ]  # fmt: skip


def test_apply_chain_clamps_silence() -> None:
    target = LoudnessTarget(-16, -1.5, 11)
    assert apply_chain(target, replace(MEASURED, i=-math.inf), 48000, soxr=True) == [
        "loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-99:measured_TP=-38.06:measured_LRA=0"
        ":measured_thresh=-51.75:offset=0.05:linear=true",
        "aresample=48000:resampler=soxr",
    ]


def _af(param: dict[str, Any], ext: dict[str, Any], loudness: MeasuredLoudness | None) -> str:
    spec = _spec(param)
    options = read_options(spec, ext, SOURCES)
    plan = plan_transcode(
        spec, options, FACTS, input_args=INPUT, scratch="/scratch", loudness=loudness
    )
    command = list(plan.commands[-1])
    return command[command.index("-af") + 1] if "-af" in command else ""


def test_transcode_applies_the_measured_values() -> None:
    ext = {"loudnorm": {"I": -16, "TP": -1.5, "LRA": 11}, "vol_percent": 50}
    normalise = (
        "loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-41.75:measured_TP=-38.06:measured_LRA=0"
        ":measured_thresh=-51.75:offset=0.05:linear=true"
    )
    # Back to the source's rate, or to the preset's ``ar``; soxr keeps doing the resampling.
    assert _af({"f": "mp4"}, ext, MEASURED) == f"volume=0.5,{normalise},aresample=44100"
    assert _af({"f": "mp4", "AUDIO": {"ar": 48000, "resampler": "soxr"}}, ext, MEASURED) == (
        f"volume=0.5,{normalise},aresample=48000:resampler=soxr"
    )
    # Without a measure (a source without audio) nothing is normalised.
    assert _af({"f": "mp4"}, ext, None) == "volume=0.5"


def test_loudnorm_tasks_do_not_split() -> None:
    spec = _spec({"f": "mp4", "VIDEO": {"crf": 23}})
    long = replace(FACTS, duration=600.0)
    options = read_options(spec, {"loudnorm": {}}, SOURCES)
    assert refusal(spec, options, long, "mov,mp4,m4a,3gp,3g2,mj2", 60).startswith("loudnorm")
    assert refusal(spec, read_options(spec, {}, SOURCES), long, "mov,mp4,m4a,3gp,3g2,mj2", 60) == ""


def test_segment_mode_is_refused_with_1015() -> None:
    error = _refused({"loudnorm": {}}, {"f": "mp4", "segment_time": 2})
    assert error.code == 1015 and "loudnorm" in error.detail
