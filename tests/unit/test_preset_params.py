"""Preset ``Param`` validation (spec §3): golden bodies that pass, one rejection per rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkvs.errors import ApiError
from openkvs.service.preset_params import (
    PRESET_TYPES,
    canonical_type,
    parse_bitrate,
    parse_param,
    parse_time,
    validate_param,
)

LOGO = "/media-in/logo.png"


def trans(**top: Any) -> dict[str, Any]:
    return {"f": "mp4", **top}


def video(**fields: Any) -> dict[str, Any]:
    return trans(VIDEO=fields)


def audio(**fields: Any) -> dict[str, Any]:
    return trans(AUDIO=fields)


def logo(**fields: Any) -> dict[str, Any]:
    return trans(LOGOS=[[{"url": LOGO, **fields}]])


# --- golden bodies -------------------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    # §2.1 example
    (
        "avtrans",
        {
            "f": "mp4",
            "VIDEO": {
                "vcodec": "h264",
                "width": 1280,
                "height": 720,
                "vb": "1800k",
                "vr": "25",
                "as": 1,
            },
            "AUDIO": {"acodec": "aac", "ab": "128k", "ar": "44100", "channels": 2},
        },
    ),
    # §2.2 example
    (
        "avtrans",
        {
            "f": "mp4",
            "VIDEO": {"vcodec": "h264", "width": 1280, "height": 720, "vb": "2500k", "vr": "30"},
            "AUDIO": {"acodec": "aac", "ab": "128k"},
        },
    ),
    # SDK style: legacy type, lower-case sections, numbers as strings and strings as numbers
    (
        "avop",
        {
            "f": "flv",
            "video": {"vr": "13", "width": 500, "height": "0", "vb": 800000, "as": "1"},
            "audio": {"ab": "64kb", "ar": 22050, "channels": "1", "an": "0"},
        },
    ),
    ("avop", {"f": "flv", "VIDEO": {"vb": "800k"}}),
    ("avtrans", {"f": "mp4"}),
    ("avtrans", {"f": "mp4", "VIDEO": {"vb": "", "vr": None}, "AUDIO": {}, "unknownKey": [1]}),
    (
        "avtrans",
        {
            "f": "hls",
            "hls_time": "6",
            "segfile_acl": "private",
            "intelligentSwitch": 2,
            "clearmeta": 1,
            "autorotate": "0",
            "ss": "00:00:05.5",
            "VIDEO": {
                "vcodec": "h265",
                "profile": "main10",
                "preset": "veryfast",
                "crf": 28,
                "gop": 50,
                "rotate": "auto",
                "shortSide": 720,
                "orientationAdapt": 1,
                "level": "4.0",
                "codecParams": "aq-mode=3:rc-lookahead=30",
                "deinterlace": 1,
            },
            "AUDIO": {"acodec": "aac", "profile": "aac_low", "ar": 48000, "channels": 6},
        },
    ),
    (
        "avtrans",
        {
            "f": "dash",
            "mulrate": 1,
            # mulVr has one item: it applies to every rendition
            "VIDEO": {"mulVb": "400k,800k,1.5m", "mulRes": "640x360,1280x720,1920x0", "mulVr": 25},
            "AUDIO": {"mulAb": "64k,128k"},
        },
    ),
    ("avtrans", {"f": "mp4", "segment_time": 10, "start_segment_num": "1"}),
    ("avtrans", {"f": "flac", "AUDIO": {"acodec": "flac"}}),
    # containers and codecs beyond the 2017 list
    ("avtrans", {"f": "mp4", "VIDEO": {"vcodec": "vp9"}, "AUDIO": {"acodec": "opus"}}),
    ("avtrans", {"f": "webm", "VIDEO": {"crf": 30}, "AUDIO": {"ab": "96k"}}),
    ("avtrans", {"f": "mkv", "VIDEO": {"vcodec": "h265"}, "AUDIO": {"acodec": "flac"}}),
    ("avtrans", {"f": "mov", "VIDEO": {"vcodec": "copy"}, "AUDIO": {"acodec": "copy"}}),
    ("avtrans", {"f": "wav", "AUDIO": {"ar": 22050, "channels": 1}}),
    ("avtrans", {"f": "webp", "VIDEO": {"qscale": 80, "compressionlevel": 4, "loop": 0}}),
    ("avtrans", {"f": "gif", "VIDEO": {"vcodec": "gif", "intervalframes": 2, "loop": 0}}),
    ("avtrans", {"f": "mp4", "CLIP": {"ss": "1.5", "duration": "00:00:10"}}),
    ("avtrans", {"f": "mp4", "zdParams": {"video_tpye": "3"}}),
    # §3.4 watermarks: every documented key, pixel and fraction geometry, aliases
    (
        "avtrans",
        {
            "f": "mp4",
            "LOGOS": [
                [
                    {
                        "url": LOGO,
                        "logotype": "image",
                        "referPos": "BottomRight",
                        "dx": "10",
                        "dy": 0.05,
                        "width": "0.2",
                        "opacity": "0.8",
                        "ss": 0,
                        "duration": 5,
                        "disable_scale": 1,
                        "optimal_w": 1280,
                        "optimal_h": 720,
                        "usage_scenario": "brand",
                    },
                    {"pic": "https://cdn.example.com/a.gif", "logotype": "gif", "loop": 1},
                ],
                [{"pic_url": "http://example.com/b.png", "offsetX": 5, "offsetY": "6"}],
            ],
        },
    ),
    ("avtrans", {"f": "mp4", "image": [{"logoUrl": LOGO, "offsetX": 1.5, "shortSide": 720}]}),
    ("avm3u8", {"f": "hls", "hls_time": 10}),
    ("avlogo", {"LOGOS": [[{"url": LOGO}]]}),
    ("avlogo", {"IMAGE": [{"pic": LOGO}]}),
    ("avsnapshot", {}),
    ("avsnapshot", {"f": "png", "width": "640", "ss": "00:01:02.5"}),
    ("avsample", {"f": "jpg", "interval": "5", "spriteflag": 1, "spritew": 10, "spriteh": "10"}),
    ("avinfo", {}),
    ("avinfo", {"anything": {"goes": True}}),
    ("audiowave", {}),
    ("audiowave", {"points": "4095"}),
    ("aiproduction", {"function_name": "smart_cover"}),
]


@pytest.mark.parametrize(("preset_type", "param"), VALID)
def test_valid_presets(preset_type: str, param: dict[str, Any]) -> None:
    snapshot = json.dumps(param, sort_keys=True)
    validate_param(preset_type, param)
    assert json.dumps(param, sort_keys=True) == snapshot  # validation never rewrites Param


# --- one rejection per rule ----------------------------------------------------------------

REJECTED: list[tuple[str, dict[str, Any], str]] = [
    # avtrans top level
    ("avtrans", {}, "Param.f is required"),
    ("avtrans", {"f": ""}, "Param.f is required"),
    ("avop", {"VIDEO": {}}, "Param.f is required"),
    ("avtrans", {"f": "MP4"}, "Param.f must be one of mp4, flv, hls, mpegts, mp3, adts, dash"),
    ("avtrans", {"f": "avi"}, "Param.f must be one of"),
    ("avtrans", trans(intelligentSwitch=3), "Param.intelligentSwitch must be one of 0, 1, 2"),
    ("avtrans", trans(clearmeta=2), "Param.clearmeta must be 0 or 1, got 2"),
    ("avtrans", trans(autorotate="yes"), "Param.autorotate must be an integer, got 'yes'"),
    ("avtrans", trans(autorotate=True), "Param.autorotate must be an integer"),
    ("avtrans", trans(hls_time=-1), "Param.hls_time must be at least 0, got -1"),
    ("avtrans", trans(segment_time="1.5"), "Param.segment_time must be an integer"),
    ("avtrans", trans(start_segment_num=-2), "Param.start_segment_num must be at least 0"),
    ("avtrans", trans(start_segment_time="x"), "Param.start_segment_time must be an integer"),
    ("avtrans", trans(segfile_acl="public"), "Param.segfile_acl must be one of private, public-"),
    ("avtrans", trans(mulrate=2), "Param.mulrate must be 0 or 1"),
    ("avtrans", trans(mulrate=1), "Param.mulrate may be 1 only with f=dash, got f='mp4'"),
    ("avtrans", trans(ss="soon"), "Param.ss must be seconds"),
    ("avtrans", trans(CLIP="0-10"), "Param.CLIP must be an object"),
    ("avtrans", trans(CLIP={"duration": -1}), "Param.CLIP.duration must be seconds"),
    ("avtrans", trans(zdParams={"video_tpye": 4}), "Param.zdParams.video_tpye must be one of"),
    ("avtrans", trans(VIDEO="h264"), "Param.VIDEO must be an object"),
    ("avtrans", trans(VIDEO={}, video={}), "Param.video conflicts with Param.VIDEO"),
    # VIDEO
    (
        "avtrans",
        video(vcodec="av1"),
        "Param.VIDEO.vcodec must be one of h264, h265, vp9, copy, gif, webp",
    ),
    (
        "avtrans",
        video(vcodec="vp9", profile="main"),
        "Param.VIDEO.profile does not apply to vcodec=vp9",
    ),
    (
        "avtrans",
        video(vcodec="h265", codecParams="rctype=3:crf=28"),
        "Param.VIDEO.codecParams rctype is not an option openkvs passes to libx265",
    ),
    (
        "avtrans",
        video(vb="50k"),
        "Param.VIDEO.vb must be between 100000 and 10000000 bits/s, got '50k'",
    ),
    ("avtrans", video(vb="20m"), "Param.VIDEO.vb must be between 100000 and 10000000 bits/s"),
    ("avtrans", video(vb="fast"), "Param.VIDEO.vb must be a bit rate"),
    ("avtrans", trans(video={"vb": "1e6"}), "Param.video.vb must be a bit rate"),
    ("avtrans", video(vr="121"), "Param.VIDEO.vr must be between 1 and 120, got '121'"),
    ("avtrans", video(vr=0), "Param.VIDEO.vr must be between 1 and 120"),
    ("avtrans", video(vr="25fps"), "Param.VIDEO.vr must be a number, got '25fps'"),
    ("avtrans", video(width=8193), "Param.VIDEO.width must be between 0 and 8192"),
    ("avtrans", video(height=-1), "Param.VIDEO.height must be between 0 and 8192"),
    ("avtrans", video(shortSide="720p"), "Param.VIDEO.shortSide must be an integer"),
    ("avtrans", video(**{"as": 2}), "Param.VIDEO.as must be 0 or 1"),
    ("avtrans", video(vn="2"), "Param.VIDEO.vn must be 0 or 1"),
    ("avtrans", video(orientationAdapt=5), "Param.VIDEO.orientationAdapt must be 0 or 1"),
    ("avtrans", video(twopass=2), "Param.VIDEO.twopass must be 0 or 1"),
    ("avtrans", video(lossless=-1), "Param.VIDEO.lossless must be 0 or 1"),
    ("avtrans", video(rotate="361"), "Param.VIDEO.rotate must be between 0 and 360 or 'auto'"),
    ("avtrans", video(rotate="left"), "Param.VIDEO.rotate must be between 0 and 360 or 'auto'"),
    ("avtrans", video(rotate=45.5), "Param.VIDEO.rotate must be between 0 and 360"),
    ("avtrans", video(gop=0), "Param.VIDEO.gop must be at least 1, got 0"),
    ("avtrans", video(crf=52), "Param.VIDEO.crf must be between 0 and 51, got 52"),
    ("avtrans", video(preset="turbo"), "Param.VIDEO.preset must be one of ultrafast,"),
    ("avtrans", video(profile="main10"), "Param.VIDEO.profile must be one of baseline, main, high"),
    (
        "avtrans",
        video(vcodec="h265", profile="high"),
        "Param.VIDEO.profile must be one of main, main10 for h265",
    ),
    ("avtrans", video(compressionlevel=7), "Param.VIDEO.compressionlevel must be between 0 and 6"),
    ("avtrans", video(intervalframes=0), "Param.VIDEO.intervalframes must be at least 1"),
    ("avtrans", video(codecParams={"crf": 28}), "Param.VIDEO.codecParams must be a string"),
    ("avtrans", video(mulVb="400k,50k"), "Param.VIDEO.mulVb[1] must be between 100000"),
    ("avtrans", video(mulVb=["400k"]), "Param.VIDEO.mulVb must be a comma-separated list"),
    ("avtrans", video(mulRes="640x360,big"), "Param.VIDEO.mulRes[1] must be WxH"),
    ("avtrans", video(mulRes="0x0"), "Param.VIDEO.mulRes[0] must be WxH"),
    ("avtrans", video(mulVr="25,200"), "Param.VIDEO.mulVr[1] must be between 1 and 120"),
    (
        "avtrans",
        video(mulVb="400k,800k", mulRes="640x360,960x540,1280x720"),
        "Param.VIDEO.mulRes must have as many items as mulVb (2), got 3",
    ),
    (
        "avtrans",
        video(mulVb="400k,800k", mulRes="640x360", mulVr="25,30,30"),
        "Param.VIDEO.mulVr must have as many items as mulVb (2), got 3",
    ),
    # AUDIO
    (
        "avtrans",
        audio(acodec="vorbis"),
        "Param.AUDIO.acodec must be one of aac, mp3, copy, flac, opus",
    ),
    (
        "avtrans",
        audio(acodec="flac"),
        "Param.AUDIO.acodec flac cannot go in f=mp4 (it holds aac, mp3, opus or copy)",
    ),
    ("avtrans", audio(profile="aac_he_v2", channels=1), "Param.AUDIO.channels must be 2 for"),
    ("avtrans", audio(ab="8k"), "Param.AUDIO.ab must be between 20000 and 320000 bits/s, got '8k'"),
    ("avtrans", audio(ab="1m"), "Param.AUDIO.ab must be between 20000 and 320000 bits/s"),
    ("avtrans", audio(ar=4000), "Param.AUDIO.ar must be between 8000 and 96000, got 4000"),
    ("avtrans", audio(ar="44.1k"), "Param.AUDIO.ar must be an integer"),
    ("avtrans", audio(channels=3), "Param.AUDIO.channels must be one of 1, 2, 6, got 3"),
    ("avtrans", audio(an=2), "Param.AUDIO.an must be 0 or 1"),
    ("avtrans", audio(profile="aac_lc"), "Param.AUDIO.profile must be one of aac_low, aac_he,"),
    ("avtrans", trans(audio={"ab": "x"}), "Param.audio.ab must be a bit rate"),
    ("avtrans", audio(mulAb="64k,900k"), "Param.AUDIO.mulAb[1] must be between 20000"),
    # LOGOS
    ("avtrans", trans(LOGOS={"url": LOGO}), "Param.LOGOS must be an array of arrays"),
    ("avtrans", trans(LOGOS=[{"url": LOGO}]), "Param.LOGOS[0] must be an array of logo objects"),
    ("avtrans", trans(LOGOS=[["/b/k"]]), "Param.LOGOS[0][0] must be an object"),
    ("avtrans", trans(logos=[[{"referPos": "TopLeft"}]]), "Param.logos[0][0].url is required"),
    ("avtrans", logo(url=5), "Param.LOGOS[0][0].url must be /<bucket>/<key> or an http(s) URL"),
    ("avtrans", trans(LOGOS=[[{"pic": "logo.png"}]]), "Param.LOGOS[0][0].pic must be /<bucket>/"),
    ("avtrans", trans(LOGOS=[[{"pic_url": "ftp://x/y"}]]), "Param.LOGOS[0][0].pic_url must be"),
    (
        "avtrans",
        trans(LOGOS=[[{"url": LOGO}, {"url": LOGO, "referPos": "Center"}]]),
        "Param.LOGOS[0][1].referPos must be one of TopLeft, TopRight, BottomLeft, BottomRight",
    ),
    ("avtrans", logo(logotype="png"), "Param.LOGOS[0][0].logotype must be one of image, gif"),
    ("avtrans", logo(dx="1.5"), "Param.LOGOS[0][0].dx must be whole pixels or a fraction"),
    ("avtrans", logo(dy=-3), "Param.LOGOS[0][0].dy must be whole pixels or a fraction"),
    ("avtrans", logo(width="wide"), "Param.LOGOS[0][0].width must be whole pixels or a fraction"),
    ("avtrans", logo(height=2.5), "Param.LOGOS[0][0].height must be whole pixels or a fraction"),
    ("avtrans", logo(opacity="1.2"), "Param.LOGOS[0][0].opacity must be between 0 and 1"),
    ("avtrans", logo(ss=-1), "Param.LOGOS[0][0].ss must be at least 0, got -1"),
    ("avtrans", logo(duration="x"), "Param.LOGOS[0][0].duration must be a number"),
    ("avtrans", logo(loop=2), "Param.LOGOS[0][0].loop must be 0 or 1"),
    ("avtrans", logo(disable_scale=3), "Param.LOGOS[0][0].disable_scale must be 0 or 1"),
    ("avtrans", logo(optimal_w=10000), "Param.LOGOS[0][0].optimal_w must be between 0 and 8192"),
    ("avtrans", logo(offsetX=-1), "Param.LOGOS[0][0].offsetX must be at least 0"),
    # IMAGE
    ("avtrans", trans(IMAGE={"logoUrl": LOGO}), "Param.IMAGE must be an array of objects"),
    ("avtrans", trans(IMAGE=[LOGO]), "Param.IMAGE[0] must be an object"),
    ("avtrans", trans(image=[{"offsetX": 1}]), "Param.image[0].logoUrl is required"),
    ("avtrans", trans(IMAGE=[{"pic": "x"}]), "Param.IMAGE[0].pic must be /<bucket>/<key>"),
    ("avtrans", trans(IMAGE=[{"pic": LOGO, "offsetY": "-2"}]), "Param.IMAGE[0].offsetY must be"),
    # avlogo
    ("avlogo", {}, "Param.LOGOS is required for an avlogo preset"),
    ("avlogo", {"LOGOS": [[]]}, "Param.LOGOS must contain at least one logo"),
    ("avlogo", {"LOGOS": [[{"referPos": "x"}]]}, "Param.LOGOS[0][0].url is required"),
    # avsnapshot / avsample
    ("avsnapshot", {"f": "gif"}, "Param.f must be one of jpg, png, webp"),
    ("avsnapshot", {"width": 0.5}, "Param.width must be an integer"),
    ("avsnapshot", {"height": 9000}, "Param.height must be between 0 and 8192"),
    ("avsnapshot", {"shortSide": -4}, "Param.shortSide must be between 0 and 8192"),
    ("avsnapshot", {"ss": "1:99"}, "Param.ss must be seconds (e.g. 12.5) or HH:MM:SS[.fff]"),
    ("avsample", {"ss": -1}, "Param.ss must be seconds"),
    ("avsample", {"interval": 0}, "Param.interval must be at least 1, got 0"),
    ("avsample", {"spriteflag": 2}, "Param.spriteflag must be 0 or 1"),
    ("avsample", {"spritew": 0}, "Param.spritew must be at least 1"),
    ("avsample", {"spriteh": "none"}, "Param.spriteh must be an integer"),
    # audiowave / aiproduction
    ("audiowave", {"points": 0}, "Param.points must be between 1 and 4095, got 0"),
    ("audiowave", {"points": 4096}, "Param.points must be between 1 and 4095"),
    ("aiproduction", {}, "Param.function_name is required"),
    ("aiproduction", {"function_name": "smart_crop"}, "Param.function_name must be one of smart_"),
]


@pytest.mark.parametrize(("preset_type", "param", "expected"), REJECTED)
def test_rejections_name_the_field(preset_type: str, param: dict[str, Any], expected: str) -> None:
    with pytest.raises(ApiError) as info:
        validate_param(preset_type, param)
    assert info.value.code == 1001
    assert info.value.detail.startswith(expected), info.value.detail
    assert info.value.message == f"invalid parameter: {info.value.detail}"


def test_snapshot_keys_do_not_apply_to_other_types() -> None:
    validate_param("avsnapshot", {"interval": 0, "spriteflag": 9})  # avsample-only keys: ignored
    validate_param("avinfo", {"f": "nonsense", "VIDEO": 1})


# --- types ---------------------------------------------------------------------------------


def test_preset_types_and_families() -> None:
    assert PRESET_TYPES == (
        "avtrans",
        "avsnapshot",
        "avsample",
        "avinfo",
        "audiowave",
        "aiproduction",
        "avop",
        "avm3u8",
        "avlogo",
    )
    families = {name: canonical_type(name) for name in PRESET_TYPES}
    assert families["avop"] == families["avm3u8"] == "avtrans"
    assert families["avlogo"] == "avlogo"
    assert all(families[name] == name for name in PRESET_TYPES[:6])


@pytest.mark.parametrize("bad", ["AVTRANS", "avscreenshot", "", None, 5, ["avtrans"]])
def test_unknown_type_is_1015(bad: object) -> None:
    with pytest.raises(ApiError) as info:
        canonical_type(bad)
    assert info.value.code == 1015
    assert info.value.detail.startswith(f"PresetType {bad!r} is not one of avtrans, avsnapshot")
    with pytest.raises(ApiError) as info:
        validate_param(str(bad), {})
    assert info.value.code == 1015


# --- Param carrier -------------------------------------------------------------------------


def test_parse_param_object_or_json_string() -> None:
    body = {"f": "mp4", "VIDEO": {"vb": "1m"}}
    assert parse_param(body) is body
    assert parse_param(json.dumps(body)) == body
    assert parse_param("{}") == {}


@pytest.mark.parametrize("raw", ["[1, 2]", "{nope", "42", '"mp4"', 42, [{"f": "mp4"}], True])
def test_parse_param_rejects_non_objects(raw: object) -> None:
    with pytest.raises(ApiError) as info:
        parse_param(raw)
    assert info.value.code == 1001
    assert info.value.detail.startswith("Param must be an object")


@pytest.mark.parametrize("raw", [None, ""])
def test_parse_param_absent_is_missing(raw: object) -> None:
    with pytest.raises(ApiError) as info:
        parse_param(raw)
    assert info.value.code == 1000


# --- value parsers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "bits"),
    [
        (800000, 800000),
        (800000.0, 800000),
        ("500000", 500000),
        (" 500000 ", 500000),
        ("500k", 500000),
        ("500kb", 500000),
        ("500K", 500000),
        ("1.5m", 1500000),
        ("1.5mb", 1500000),
        ("2M", 2000000),
        (".5m", 500000),
        ("128.4k", 128400),
        ("0", 0),
    ],
)
def test_parse_bitrate(raw: object, bits: int) -> None:
    assert parse_bitrate(raw) == bits


@pytest.mark.parametrize(
    "raw", ["", "k", "fast", "-500k", -1, "1e6", "500 k", "500kbps", "nan", "inf", True, None, [1]]
)
def test_parse_bitrate_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_bitrate(raw)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (12, 12.0),
        (12.5, 12.5),
        ("12", 12.0),
        ("12.5", 12.5),
        ("0", 0.0),
        ("00:01:02.5", 62.5),
        ("01:00:00", 3600.0),
        ("1:02", 62.0),
        ("90:00", 5400.0),
        ("100:00:00.250", 360000.25),
    ],
)
def test_parse_time(raw: object, seconds: float) -> None:
    assert parse_time(raw) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "raw", ["", "soon", "-1", -0.5, "00:61:00", "00:00:60", "1:2:3:4", "12s", True, None, "nan"]
)
def test_parse_time_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_time(raw)
