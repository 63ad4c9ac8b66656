"""The watermark filter builder (``engine/watermark.py``) and the typed logos
(``presets/logos.py``): golden fragments, geometry, timing, ExtParam checks."""

from __future__ import annotations

from typing import Any

import pytest

from openkvs.engine.graph import EMPTY, Composition
from openkvs.engine.transcode import SourceFacts, plan_transcode
from openkvs.engine.watermark import (
    LogoFile,
    logo_input,
    place,
    scale_factor,
    watermark_part,
    window,
)
from openkvs.errors import ApiError, TaskError
from openkvs.presets.avtrans import AvtransOptions, parse, task_options
from openkvs.presets.codec import load
from openkvs.presets.logos import Length, LogoSpec, ext_tracks, image_item, logo_of, preset_tracks
from openkvs.worker.logos import sniff

SOURCES = [{"path": "/b/in.mp4", "index": 0}]


def _logo(**keys: Any) -> LogoSpec:
    return logo_of({"url": "/b/logo.png", **keys})


def _file(spec: LogoSpec, n: int = 0, demuxer: str = "png_pipe") -> LogoFile:
    return LogoFile(spec, f"/scratch/logos/logo-{n}.png", demuxer)


# -- the typed logos ------------------------------------------------------------------------


def test_a_logo_object_is_read_with_its_aliases_and_defaults() -> None:
    assert logo_of({"pic_url": "http://h/l.png"}) == LogoSpec(url="http://h/l.png")
    assert logo_of({"pic": "/b/l.png", "url": "/b/first.png"}).url == "/b/first.png"
    full = logo_of(
        {"url": "/b/l.gif", "logotype": "gif", "referPos": "BottomRight", "dx": "0.25",
         "dy": 12, "width": "0.5", "height": 0, "opacity": "0.3", "ss": 2, "duration": "1.5",
         "loop": "1", "disable_scale": 1, "optimal_w": 1280, "optimal_h": "720",
         "shortSide": 720}
    )  # fmt: skip
    assert full == LogoSpec(
        url="/b/l.gif",
        logotype="gif",
        refer_pos="BottomRight",
        dx=Length(0.25, relative=True),
        dy=Length(12),
        width=Length(0.5, relative=True),
        height=None,  # 0: not given
        opacity=0.3,
        ss=2,
        duration=1.5,
        loop=True,
        disable_scale=True,
        optimal_w=1280,
        optimal_h=720,
        short_side=720,
    )


def test_legacy_offsets_are_pixels_and_dx_wins() -> None:
    assert _logo(offsetX=7, offsetY=9) == LogoSpec("/b/logo.png", dx=Length(7), dy=Length(9))
    assert _logo(offsetX=7, dx=0.5).dx == Length(0.5, relative=True)
    item = image_item({"pic": "/b/i.png", "offsetX": 0.5, "offsetY": 3, "shortSide": 480})
    assert item == LogoSpec("/b/i.png", dx=Length(0.5), dy=Length(3), short_side=480)


def test_preset_tracks_put_image_items_after_the_logos_tracks() -> None:
    tracks = preset_tracks([[{"url": "/b/a.png"}, {"url": "/b/b.png"}], []], [{"logoUrl": "/b/c"}])
    assert [[logo.url for logo in track] for track in tracks] == [
        ["/b/a.png", "/b/b.png"],
        ["/b/c"],
    ]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ([[{"url": "/b/l.png", "opacity": 2}]], "ExtParam LOGOS[0][0].opacity"),
        ([[{"dx": 3}]], "ExtParam LOGOS[0][0].url is required"),
        ([{"url": "/b/l.png"}], "ExtParam LOGOS[0] must be an array"),
        ({"url": "/b/l.png"}, "ExtParam LOGOS must be an array"),
        ([[{"url": "/b/l.png", "dx": 1.5}]], "ExtParam LOGOS[0][0].dx"),
        ([[{"url": "/b/l.png"}] * 17], "at most 16"),
    ],
)
def test_bad_extparam_logos_are_1018_naming_the_key(raw: Any, words: str) -> None:
    with pytest.raises(ApiError) as info:
        ext_tracks({"LOGOS": raw})
    assert info.value.code == 1018 and words in info.value.detail, info.value.detail


def test_extparam_logos_replace_the_presets_and_travel_with_the_task() -> None:
    spec = parse({"f": "mp4", "LOGOS": [[{"url": "/b/preset.png"}]]})
    stored = task_options(spec, {"LOGOS": [[{"url": "/b/task.png", "ss": 1}]]}, SOURCES)
    logos = load(AvtransOptions, stored).logos
    assert logos == ((LogoSpec("/b/task.png", ss=1),),)
    assert load(AvtransOptions, task_options(spec, {"LOGOS": []}, SOURCES)).logos == ()
    assert load(AvtransOptions, task_options(spec, {"LOGOS": ""}, SOURCES)).logos is None
    assert ext_tracks({}) is None


@pytest.mark.parametrize(
    ("param", "ext", "code", "words"),
    [
        ({"f": "mp4", "VIDEO": {"vcodec": "copy"}}, {"LOGOS": [[{"url": "/b/l"}]]}, 1018,
         "ExtParam LOGOS needs re-encoded video"),
        ({"f": "mp4", "LOGOS": [[{"url": "/b/l.png"}] * 17]}, {}, 1015, "at most 16"),
        ({"f": "mp4", "LOGOS": [[{"url": "/b/l.png"}]]}, {"f": "flv"}, 1015, "ExtParam f="),
    ],
)  # fmt: skip
def test_task_refusals(param: dict[str, Any], ext: dict[str, Any], code: int, words: str) -> None:
    with pytest.raises(ApiError) as info:
        task_options(parse(param), ext, SOURCES)
    assert info.value.code == code and words in info.value.detail, info.value.detail


def test_the_presets_own_f_in_extparam_is_fine() -> None:
    spec = parse({"f": "mp4", "LOGOS": [[{"url": "/b/l.png"}]]})
    assert load(AvtransOptions, task_options(spec, {"f": "mp4"}, SOURCES)).logos is None


# -- geometry and timing --------------------------------------------------------------------


def test_scale_factor_follows_the_reference_size() -> None:
    assert scale_factor(_logo(), 320, 240) == 1
    assert scale_factor(_logo(optimal_w=640), 320, 240) == 0.5
    assert scale_factor(_logo(optimal_h=120), 320, 240) == 2
    assert scale_factor(_logo(optimal_w=640, optimal_h=240), 320, 240) == 0.5  # the smaller
    assert scale_factor(_logo(shortSide=480), 320, 240) == 0.5
    assert scale_factor(_logo(optimal_w=640, shortSide=120), 320, 240) == 0.5  # optimal wins
    assert scale_factor(_logo(optimal_w=640, disable_scale=1), 320, 240) == 1
    assert scale_factor(_logo(optimal_w=640), 0, 0) == 1


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, ("", "", "0", "0")),
        ({"dx": 10, "dy": 20}, ("", "", "10", "20")),
        ({"referPos": "TopRight", "dx": 10}, ("", "", "W-w-10", "0")),
        ({"referPos": "BottomLeft", "dy": 5}, ("", "", "0", "H-h-5")),
        ({"referPos": "BottomRight", "dx": 0.1, "dy": 0.1}, ("", "", "W-w-32", "H-h-24")),
        ({"width": 80}, ("80", "-1", "0", "0")),
        ({"height": "0.25"}, ("-1", "60", "0", "0")),
        ({"width": 40, "height": 30}, ("40", "30", "0", "0")),
        ({"optimal_w": 640, "dx": 60, "dy": 41}, ("round(iw*0.5)", "round(ih*0.5)", "30", "20")),
        ({"optimal_w": 640, "width": 80, "dx": 0.5}, ("40", "-1", "160", "0")),
        ({"optimal_w": 640, "width": 80, "disable_scale": 1}, ("80", "-1", "0", "0")),
    ],
)
def test_placement(keys: dict[str, Any], expected: tuple[str, str, str, str]) -> None:
    got = place(_logo(**keys), 320, 240)
    assert (got.width, got.height, got.x, got.y) == expected


def test_a_fraction_needs_the_output_size() -> None:
    with pytest.raises(TaskError) as info:
        place(_logo(dx=0.5), 0, 0)
    assert info.value.code == 2003


def test_time_window() -> None:
    assert window(_logo()) == ""
    assert window(_logo(ss=1.5)) == "gte(t,1.5)"
    assert window(_logo(ss=1, duration=2)) == "between(t,1,3)"
    assert window(_logo(duration=0.25)) == "between(t,0,0.25)"


# -- the graph ------------------------------------------------------------------------------


def test_golden_fragment_and_inputs() -> None:
    still = _file(_logo(dx=30, dy=40, width=80, opacity=0.5, ss=1, duration=1))
    gif_spec = logo_of(
        {"url": "http://h/b.gif", "referPos": "BottomRight", "dx": "0.1", "dy": 0.1,
         "loop": 1, "optimal_w": 640}
    )  # fmt: skip
    looping = LogoFile(gif_spec, "/scratch/logos/logo-1.gif", "gif")
    part = watermark_part([still, looping], first=2)
    assert part.inputs == (
        ("-protocol_whitelist", "file", "-f", "png_pipe", "-i", "/scratch/logos/logo-0.png"),
        ("-stream_loop", "-1", "-protocol_whitelist", "file", "-f", "gif",
         "-i", "/scratch/logos/logo-1.gif"),
    )  # fmt: skip
    (stage,) = part.video_stages
    assert stage.fragment("[vmain]", 320, 240, "[vstage0]").split(";") == [
        "[2:v]scale=w=80:h=-1,format=rgba,colorchannelmixer=aa=0.5,"
        "tpad=stop=-1:stop_mode=clone,setpts=PTS-STARTPTS+1/TB[wm0]",
        "[vmain][wm0]overlay=x=30:y=40:shortest=1:enable='between(t,1,2)'[wmv0]",
        "[3:v]scale=w=round(iw*0.5):h=round(ih*0.5),format=rgba,setpts=PTS-STARTPTS[wm1]",
        "[wmv0][wm1]overlay=x=W-w-32:y=H-h-24:shortest=1[vstage0]",
    ]


def test_a_gif_without_loop_plays_once_and_holds_its_last_frame() -> None:
    once = LogoFile(_logo(loop=0), "/s/logo-0.gif", "gif")
    assert logo_input(once)[:2] == ("-protocol_whitelist", "file")
    fragment = watermark_part([once], first=1).video_stages[0].fragment("[0:0]", 64, 64, "[o]")
    assert fragment == (
        "[1:v]format=rgba,tpad=stop=-1:stop_mode=clone,setpts=PTS-STARTPTS[wm0];"
        "[0:0][wm0]overlay=x=0:y=0:shortest=1[o]"
    )
    # loop=1 on a still image changes nothing: it is not animated.
    assert logo_input(_file(_logo(loop=1)))[0] == "-protocol_whitelist"


def test_no_logos_is_the_empty_part() -> None:
    assert watermark_part([], first=1) is EMPTY
    # A task with logos is never split (the executor splits only empty compositions).
    assert not watermark_part([_file(_logo())], first=1).empty


def test_the_transcode_command_carries_the_stage_after_the_presets_chain() -> None:
    spec = parse({"f": "mp4", "VIDEO": {"width": 160}})
    facts = SourceFacts(
        has_video=True, has_audio=False, width=320, height=240, video_codec="h264", duration=3.0
    )
    part: Composition = watermark_part([_file(_logo(referPos="TopRight"))], first=1)
    plan = plan_transcode(
        spec, AvtransOptions(), facts, input_args=["-i", "in.mp4"], scratch="/s", composition=part
    )
    command = list(plan.commands[-1])
    at = command.index("/scratch/logos/logo-0.png")
    assert command[command.index("in.mp4") + 1 : at + 1] == [
        "-protocol_whitelist", "file", "-f", "png_pipe", "-i", "/scratch/logos/logo-0.png",
    ]  # fmt: skip
    graph = command[command.index("-filter_complex") + 1]
    assert "[vmain][wm0]overlay=x=W-w-0:y=0:shortest=1[vstage0]" in graph
    assert command[command.index("-map") + 1] == "[vstage0]"


def test_sniffing_image_formats() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n....") == ("png_pipe", ".png")
    assert sniff(b"\xff\xd8\xff\xe0") == ("jpeg_pipe", ".jpg")
    assert sniff(b"GIF89a") == ("gif", ".gif")
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("webp_pipe", ".webp")
    assert sniff(b"BM\x00\x00") == ("bmp_pipe", ".bmp")
    assert sniff(b"#EXTM3U\n") is None
    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") is None
