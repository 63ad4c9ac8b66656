"""Golden filtergraphs of several sources (``engine/concat.py``, ``engine/soundtrack.py``,
``engine/subtitles.py``), the joined media's facts (``worker/sources_part.py``), a whole
composed command, and the CreateTask rules (``presets/avtrans_sources.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from openkvs.engine.concat import Clip, Frame, Window, join_audio, join_video
from openkvs.engine.graph import Composition
from openkvs.engine.soundtrack import soundtrack
from openkvs.engine.subtitles import (
    BurnedSubtitles,
    kind_of,
    shift_cues,
    soft_codec,
    soft_track_args,
)
from openkvs.engine.transcode import SourceFacts, plan_transcode
from openkvs.errors import ApiError
from openkvs.presets.avtrans import parse
from openkvs.presets.avtrans_ext import read_options
from openkvs.presets.avtrans_sources import stored_order
from openkvs.worker.sources_part import frame_of, joined_facts, output_seconds

CLIPS = [Clip(0, 2.0, 0, 1), Clip(1, 1.5, 0, None), Clip(2, 1.0, 1, -1)]
FRAME = Frame(320, 240, 25.0, 44100, "stereo")


def test_join_video_golden() -> None:
    assert join_video(CLIPS[:2], FRAME) == (
        "[0:0]setpts=PTS-STARTPTS,fps=25,scale=320:240:force_original_aspect_ratio=decrease,"
        "pad=320:240:(ow-iw)/2:(oh-ih)/2,setsar=1[cv0];"
        "[1:0]setpts=PTS-STARTPTS,fps=25,scale=320:240:force_original_aspect_ratio=decrease,"
        "pad=320:240:(ow-iw)/2:(oh-ih)/2,setsar=1[cv1];"
        "[cv0][cv1]concat=n=2:v=1:a=0[vsrc]"
    )
    assert join_video(CLIPS, FRAME, Window(1.5, 2.0)).endswith(
        "[cv0][cv1][cv2]concat=n=3:v=1:a=0,trim=start=1.5:duration=2,setpts=PTS-STARTPTS[vsrc]"
    )
    assert join_video([Clip(0, 1, -1)], FRAME).startswith("[0:v:0]setpts")


def test_join_audio_golden() -> None:
    fmt = "aformat=sample_fmts=fltp:channel_layouts=stereo"
    assert join_audio(CLIPS, FRAME, Window(length=3.0), out="[acat]") == (
        f"[0:1]asetpts=PTS-STARTPTS,aresample=44100,{fmt},apad,atrim=duration=2[ca0];"
        f"anullsrc=r=44100:cl=stereo,{fmt},atrim=duration=1.5[ca1];"
        f"[2:a:0]asetpts=PTS-STARTPTS,aresample=44100,{fmt},apad,atrim=duration=1[ca2];"
        "[ca0][ca1][ca2]concat=n=3:v=0:a=1,atrim=duration=3,asetpts=PTS-STARTPTS[acat]"
    )


def test_soundtrack_golden() -> None:
    assert soundtrack("[1:0]", start=0, length=2.0) == (
        "[1:0]asetpts=PTS-STARTPTS,apad,atrim=duration=2[asrc]"
    )
    assert soundtrack("[1:0]", start=1.25, length=0) == (
        "[1:0]asetpts=PTS-STARTPTS,atrim=start=1.25,asetpts=PTS-STARTPTS[asrc]"
    )
    assert soundtrack("[2:a:0]", start=0, length=2.0, own="[0:1]", mix=True) == (
        "[0:1]apad,atrim=duration=2[mixown];"
        "[2:a:0]asetpts=PTS-STARTPTS,apad,atrim=duration=2[mixnew];"
        "[mixown][mixnew]amix=inputs=2:duration=longest:normalize=0[asrc]"
    )
    # Mixing into nothing is the soundtrack alone.
    assert soundtrack("[1:0]", start=0, length=2, own="", mix=True) == soundtrack(
        "[1:0]", start=0, length=2
    )


def test_burned_subtitles_golden() -> None:
    stage = BurnedSubtitles("/scratch/9-T1/subtitle0.srt", "srt")
    assert stage.fragment("[vmain]", 320, 240, "[vstage0]") == (
        "[vmain]subtitles=filename=/scratch/9-T1/subtitle0.srt:force_style="
        "FontName=DejaVu Sans\\,FontSize=18\\,Outline=1\\,Shadow=0[vstage0]"
    )
    ass = BurnedSubtitles("/s/it's: [a],b;c.ass", "ass", start=2.5)
    assert ass.fragment("[0:0]", 0, 0, "[o]") == (
        "[0:0]setpts=PTS+2.5/TB,subtitles=filename=/s/it\\\\\\'s\\\\: \\[a\\]\\,b\\;c.ass,"
        "setpts=PTS-STARTPTS[o]"
    )


def test_subtitle_kinds_and_soft_codecs() -> None:
    assert [kind_of(p) for p in ("a.SRT", "b.ass", "c.ssa", "d.vtt", "e.txt")] == [
        "srt", "ass", "ass", "webvtt", "",
    ]  # fmt: skip
    assert soft_codec("mp4", "srt") == "mov_text"
    assert soft_codec("mkv", "ass") == "copy"
    assert soft_codec("webm", "srt") == "webvtt"
    assert soft_codec("flv", "srt") == soft_codec("dash", "srt") == ""
    assert soft_codec("hls", "ass") == "webvtt"  # a WebVTT rendition (engine/hls_subtitles.py)
    assert soft_track_args(3, "mov_text", 0) == ("-map", "3:s:0", "-c:s:0", "mov_text")


SRT = (
    "1\r\n00:00:00,600 --> 00:00:01,400\r\nHELLO\r\n\r\n"
    "2\r\n00:00:02,000 --> 00:00:02,500\r\nTWO\r\n"
)
VTT = (
    "WEBVTT\n\n00:00.600 --> 00:01.400 align:start\nHELLO\n\nNOTE n\n\n"
    "01:00:02.000 --> 01:00:02.500\nTWO\n"
)
ASS = (
    "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    "Dialogue: 0,0:00:00.60,0:00:01.40,Default,,0,0,0,,HELLO, you\n"
    "Dialogue: 0,0:00:02.00,0:00:02.50,Default,,0,0,0,,TWO\n"
)


def test_cues_are_shifted_clamped_and_dropped() -> None:
    assert shift_cues(SRT, "srt", 1.0) == (
        "1\r\n00:00:00,000 --> 00:00:00,400\r\nHELLO\r\n\r\n"
        "2\r\n00:00:01,000 --> 00:00:01,500\r\nTWO\r\n"
    )
    assert shift_cues(SRT, "srt", 1.5) == "2\r\n00:00:00,500 --> 00:00:01,000\r\nTWO\r\n"
    assert shift_cues(VTT, "webvtt", 0.5) == (
        "WEBVTT\n\n00:00:00.100 --> 00:00:00.900 align:start\nHELLO\n\nNOTE n\n\n"
        "01:00:01.500 --> 01:00:02.000\nTWO\n"
    )
    assert shift_cues(ASS, "ass", 1.5).splitlines()[2:] == [
        "Dialogue: 0,0:00:00.50,0:00:01.00,Default,,0,0,0,,TWO"
    ]
    assert "0,0:00:00.00,0:00:00.40,Default,,0,0,0,,HELLO, you" in shift_cues(ASS, "ass", 1)


MASTER = SourceFacts(
    duration=2.0, has_video=True, has_audio=True, width=240, height=320, fps=15.0,
    video_codec="h264", audio_codec="aac", sample_rate=48000, channels=1,
    video_index=0, audio_index=1,
)  # fmt: skip


def test_the_joined_frame_and_facts() -> None:
    silent = SourceFacts(has_video=True, width=160, height=120, fps=30.0)
    stereo = SourceFacts(has_video=True, has_audio=True, sample_rate=44100, channels=2)
    assert frame_of(MASTER, [MASTER, silent]) == Frame(240, 320, 15.0, 48000, "mono")
    assert frame_of(MASTER, [MASTER, stereo]).layout == "stereo"
    turned = SourceFacts(has_video=True, width=321, height=240, rotation=90, sar=1.0)
    assert frame_of(turned, [turned, stereo]) == Frame(240, 320, 25.0, 44100, "stereo")
    facts = joined_facts(MASTER, frame_of(MASTER, [MASTER]), 4.5, True)
    assert (facts.duration, facts.width, facts.height, facts.video_codec) == (4.5, 240, 320, "")
    assert (facts.sample_rate, facts.channels, facts.video_index) == (48000, 1, -1)
    assert output_seconds(Window(1.0, None), 4.5) == 3.5
    assert output_seconds(Window(1.0, 2.0), 4.5) == 2.0
    assert output_seconds(Window(0, None), 0) == 0


def test_a_composed_concatenation_command() -> None:
    spec = parse({"f": "mp4", "VIDEO": {"width": 160, "height": 120}, "AUDIO": {"ab": "64k"}})
    options = read_options(spec, {"ss": 1, "duration": 2}, [{"path": "/b/a", "index": 0}])
    video = join_video(CLIPS[:2], FRAME, Window(1.0, 2.0))
    audio = join_audio(CLIPS[:2], FRAME, Window(1.0, 2.0))
    composition = Composition(
        inputs=(("-i", "/src/b.mp4"),), video_source=video, audio_source=audio, owns_clip=True
    )
    facts = joined_facts(MASTER, FRAME, 3.5, True)
    plan = plan_transcode(
        spec, options, facts, input_args=["-i", "/src/a.mp4"], scratch="/s",
        composition=composition,
    )  # fmt: skip
    (command,) = plan.commands
    assert plan.duration == 2.0
    assert "-ss" not in command and "-t" not in command  # the graph cuts the window
    assert command[command.index("-filter_complex") + 1] == (
        f"{video};[vsrc]scale=160:120,setsar=1[vmain];{audio}"
    )
    assert command[command.index("/src/a.mp4") + 1 :][:2] == ("-i", "/src/b.mp4")
    maps = [command[n + 1] for n, word in enumerate(command) if word == "-map"]
    assert maps == ["[vmain]", "[asrc]"]


SRC = [{"path": "/b/a.mp4", "index": 0}]


def _read(param: dict[str, Any], ext: dict[str, Any], sources: list[dict[str, Any]]) -> Any:
    return read_options(parse(param), ext, sources)


def test_sources_options_are_read() -> None:
    sources = [
        {"path": "/b/c.mp4", "index": 1},
        {"path": "/b/s.srt", "index": 3, "type": "subtitle"},
        {"path": "/b/t.m4a", "index": 2, "type": "audio"},
        {"path": "/b/a.mp4", "index": 0, "type": "video"},
    ]
    got = _read({"f": "mkv"}, {"masterSrcIndex": "1", "audio_mix": 1, "subtitle": "soft"}, sources)
    assert (got.master_index, got.audio_mix, got.subtitle_mode) == (1, True, "soft")
    assert stored_order(sources) == [3, 0, 2, 1]
    got = _read({"f": "mp4"}, {"subtitle": {"mode": "burn"}}, [*SRC, sources[1] | {"index": 1}])
    assert (got.master_index, got.audio_mix, got.subtitle_mode) == (None, False, "burn")
    # HLS takes soft subtitles as WebVTT renditions (one video rendition).
    hls = _read({"f": "hls"}, {"subtitle": {"mode": "soft"}}, [*SRC, sources[1] | {"index": 1}])
    assert hls.subtitle_mode == "soft"
    # An audio file alone is the task's source, as a video item would be.
    alone = _read({"f": "mp3"}, {}, [{"path": "/b/a.mp3", "index": 0, "type": "audio"}])
    assert (alone.master_index, alone.audio_mix) == (None, False)
    # One source keeps whatever index it has.
    assert _read({"f": "mp4"}, {}, [{"path": "/b/a.mp4", "index": 7}]).master_index is None


REFUSED: list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], int, str]] = [
    ({"f": "mp4"}, {}, [SRC[0] | {"index": 1}, {"path": "/b/c", "index": 2}], 1016, "indexes"),
    ({"f": "mp4"}, {}, [{"path": "/b/s.srt", "type": "subtitle", "index": 0}], 1016, "type video"),
    ({"f": "mp4"}, {}, [*SRC, {"path": "/b/s.txt", "type": "subtitle", "index": 1}], 1016, ".srt"),
    ({"f": "mp4"}, {}, [*SRC, {"path": "/b/x", "type": "image", "index": 1}], 1016, "type must"),
    (
        {"f": "mp4"},
        {},
        [
            *SRC,
            {"path": "/b/1", "type": "audio", "index": 1},
            {"path": "/b/2", "type": "audio", "index": 2},
        ],
        1016,
        "one item of type audio",
    ),
    (
        {"f": "mp4", "AUDIO": {"acodec": "copy"}},
        {},
        [*SRC, {"path": "/b/c", "index": 1}],
        1018,
        "acodec=copy cannot join",
    ),
    (
        {"f": "mp4", "AUDIO": {"acodec": "copy"}},
        {},
        [*SRC, {"path": "/b/t", "type": "audio", "index": 1}],
        1018,
        "needs re-encoded audio: the preset copies",
    ),
    (
        {"f": "gif"},
        {},
        [*SRC, {"path": "/b/t", "type": "audio", "index": 1}],
        1018,
        "the output has no audio",
    ),
    (
        {"f": "mp4", "VIDEO": {"vcodec": "copy"}},
        {},
        [*SRC, {"path": "/b/s.srt", "type": "subtitle", "index": 1}],
        1018,
        "burned subtitles need re-encoded video",
    ),
    (
        {"f": "mpegts"},
        {"subtitle": "soft"},
        [*SRC, {"path": "/b/s.srt", "type": "subtitle", "index": 1}],
        1018,
        "f=mpegts cannot hold soft srt subtitles",
    ),
    ({"f": "mp4"}, {"audio_mix": 1}, SRC, 1018, "audio_mix needs"),
    (
        {"f": "mp4"},
        {"audio_mix": 2},
        [*SRC, {"path": "/b/t", "type": "audio", "index": 1}],
        1018,
        "audio_mix must be 0 or 1",
    ),
    ({"f": "mp4"}, {"subtitle": {"mode": 1}}, SRC, 1018, "ExtParam subtitle must be"),
    (
        {"f": "mp4"},
        {"masterSrcIndex": 1},
        [*SRC, {"path": "/b/t", "type": "audio", "index": 1}],
        1018,
        "index of a video SrcInfo item [0]",
    ),
    (
        {"f": "mp4"},
        {"loudnorm": {"I": -16}},
        [*SRC, {"path": "/b/c", "index": 1}],
        1015,
        "loudnorm with a joined",
    ),
    (
        {"f": "mp4", "segment_time": 2},
        {"subtitle": "soft"},
        [*SRC, {"path": "/b/s.srt", "type": "subtitle", "index": 1}],
        1015,
        "soft subtitles in segment mode",
    ),
    (
        {"f": "hls"},
        {"subtitle": "soft", "mulHlsRate": 1},
        [*SRC, {"path": "/b/s.srt", "type": "subtitle", "index": 1}],
        1015,
        "ExtParam mulHlsRate=1 of 2 sources",
    ),
    (
        {"f": "dash"},
        {"subtitle": "soft"},
        [*SRC, {"path": "/b/s.srt", "type": "subtitle", "index": 1}],
        1018,
        "f=dash cannot hold soft srt subtitles (mp4, mov, mkv, webm and hls can",
    ),
]


@pytest.mark.parametrize(("param", "ext", "sources", "code", "says"), REFUSED)
def test_refusals(
    param: dict[str, Any], ext: dict[str, Any], sources: list[dict[str, Any]], code: int, says: str
) -> None:
    with pytest.raises(ApiError) as caught:
        _read(param, ext, sources)
    assert caught.value.code == code and says in caught.value.detail, caught.value.detail


def test_loudnorm_with_subtitles_only_is_allowed() -> None:
    sources = [*SRC, {"path": "/b/s.vtt", "type": "subtitle", "index": 1}]
    assert _read({"f": "mp4"}, {"loudnorm": {"I": -16}}, sources).loudnorm is not None
