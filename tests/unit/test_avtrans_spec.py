"""``avtrans`` presets and ExtParam: parse → typed spec → stored form → spec, every refusal
naming its key (spec §3.1, §3.2, §3.8)."""

from __future__ import annotations

from typing import Any

import pytest

from openkvs.engine.capabilities import installed
from openkvs.engine.formats import BASELINE, CONTAINERS, FDK_AAC, Capabilities
from openkvs.errors import ApiError
from openkvs.kinds import kind
from openkvs.presets.avtrans import (
    AudioSpec,
    AvtransOptions,
    AvtransSpec,
    ClipSpec,
    MulSpec,
    SegmentSpec,
    VideoSpec,
    parse,
    task_options,
)
from openkvs.presets.codec import dump, load

SOURCES = [{"path": "/media/in.mp4", "index": 0}]


def refused(param: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(ApiError) as info:
        parse(param, **kw)
    assert info.value.code == 1001, info.value
    return info.value.detail


def ext_refused(param: dict[str, Any], ext: dict[str, Any], sources: Any = None) -> ApiError:
    with pytest.raises(ApiError) as info:
        task_options(parse(param), ext, SOURCES if sources is None else sources)
    return info.value


# --- defaults per container ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "video", "audio"),
    [
        ("mp4", "h264", "aac"),
        ("mov", "h264", "aac"),
        ("mkv", "h264", "aac"),
        ("flv", "h264", "aac"),
        ("mpegts", "h264", "aac"),
        ("hls", "h264", "aac"),
        ("dash", "h264", "aac"),
        ("webm", "vp9", "opus"),
        ("gif", "gif", ""),
        ("webp", "webp", ""),
        ("mp3", "", "mp3"),
        ("adts", "", "aac"),
        ("flac", "", "flac"),
        ("wav", "", "pcm"),
    ],
)
def test_each_container_has_its_default_codecs(f: str, video: str, audio: str) -> None:
    spec = parse({"f": f})
    assert (spec.video.codec, spec.audio.codec) == (video, audio)
    assert spec.autorotate is True and spec.intelligent_switch == 0


def test_every_key_lands_in_its_field() -> None:
    spec = parse(
        {
            "f": "mp4",
            "intelligentSwitch": "2",
            "clearmeta": 1,
            "autorotate": "0",
            "ss": "3",
            "CLIP": {"duration": "00:00:10.5"},
            "segfile_acl": "private",
            "hls_time": 6,
            "zdParams": {"video_tpye": 3},
            "video": {
                "vcodec": "h264",
                "vb": "1.5m",
                "vr": "29.97",
                "width": "1280",
                "height": 720,
                "as": 1,
                "orientationAdapt": 1,
                "rotate": "90",
                "gop": 50,
                "preset": "veryfast",
                "profile": "high",
                "level": "4.0",
                "crf": "23",
                "qpmax": 40,
                "deinterlace": "auto",
                "denoise": "hqdn3d=4:3",
                "codecParams": "aq-mode=2:deblock=-1,-1",
            },
            "audio": {
                "acodec": "aac",
                "ab": "128kb",
                "ar": "48000",
                "channels": 2,
                "profile": "aac_low",
                "resampler": "soxr",
            },
        }
    )
    assert spec.video == VideoSpec(
        codec="h264",
        bitrate=1_500_000,
        fps=29.97,
        width=1280,
        height=720,
        keep_aspect=True,
        orientation_adapt=True,
        rotate=90,
        gop=50,
        preset="veryfast",
        profile="high",
        level="4",
        crf=23,
        qpmax=40,
        deinterlace="auto",
        denoise="hqdn3d=4:3",
        codec_params=(("aq-mode", "2"), ("deblock", "-1,-1")),
    )
    assert spec.audio == AudioSpec("aac", 128_000, 48_000, 2, "aac_low", False, "soxr")
    assert spec.clip == ClipSpec(ss=3.0, duration=10.5)
    assert (spec.intelligent_switch, spec.clearmeta, spec.autorotate) == (2, True, False)
    assert spec.segment == SegmentSpec(hls_time=6, segfile_acl="private")
    assert spec.zd_video_type == 3


@pytest.mark.parametrize(
    ("vb", "bits"),
    [(800000, 800_000), ("500000", 500_000), ("500k", 500_000), ("500kb", 500_000),
     ("500K", 500_000), ("1.5m", 1_500_000), ("2mb", 2_000_000), (".5m", 500_000)],
)  # fmt: skip
def test_bit_rates_take_the_suffixes_of_3_1(vb: object, bits: int) -> None:
    assert parse({"f": "mp4", "VIDEO": {"vb": vb}}).video.bitrate == bits
    audio = parse({"f": "mp4", "AUDIO": {"ab": "64k" if bits > 320_000 else vb}}).audio
    assert audio.bitrate == (64_000 if bits > 320_000 else bits)


def test_gif_webp_and_flags() -> None:
    gif = parse({"f": "gif", "VIDEO": {"intervalframes": 3, "loop": 2, "finaldelay": 50}})
    assert (gif.video.interval_frames, gif.video.loop, gif.video.final_delay) == (3, 2, 50)
    webp = parse({"f": "webp", "VIDEO": {"lossless": 1, "compressionlevel": 6, "loop": "1"}})
    assert (webp.video.lossless, webp.video.compression_level, webp.video.loop) == (True, 6, 1)
    assert parse({"f": "webp", "VIDEO": {"qscale": "80"}}).video.qscale == 80
    h265 = parse({"f": "mp4", "VIDEO": {"vcodec": "h265", "rasl": 0, "fieldmatch": "auto"}})
    assert (h265.video.rasl, h265.video.fieldmatch) == (0, True)
    assert parse({"f": "mp4", "VIDEO": {"rotate": "auto"}}).video.rotate_auto is True
    assert parse({"f": "mp4", "VIDEO": {"rotate": 360}}).video.rotate == 0
    assert parse({"f": "mp4", "VIDEO": {"twopass": 1, "vb": "1m"}}).video.twopass is True
    assert parse({"f": "mp4", "VIDEO": {"denoise": "1"}}).video.denoise == "light"
    assert parse({"f": "mp4", "VIDEO": {"deinterlace": 1}}).video.deinterlace == "bwdif"
    assert parse({"f": "mp4", "VIDEO": {"vn": 1, "vb": "1m"}}).video.codec == ""  # vn wins
    assert parse({"f": "mp3", "VIDEO": {"vn": 1, "vb": "1m"}}).video.codec == ""


# --- stored form ---------------------------------------------------------------------------


ROUND_TRIP: list[dict[str, Any]] = [
    {"f": "mp4"},
    {"f": "gif", "VIDEO": {"intervalframes": 2}, "CLIP": {"ss": 1, "duration": 2}},
    {"f": "mkv", "VIDEO": {"vcodec": "vp9", "codecParams": "row-mt=1:cpu-used=4"}},
    {
        "f": "dash",
        "mulrate": 1,
        "VIDEO": {"mulVb": "400k,800k", "mulRes": "640x360,1280x720", "mulVr": 25},
        "AUDIO": {"mulAb": "64k"},
    },
    {
        "f": "mp4",
        "LOGOS": [[{"url": "/b/logo.png", "dx": "0.1", "opacity": 0.5}]],
        "IMAGE": [{"logoUrl": "/b/l.png", "offsetX": 4}],
    },
]


@pytest.mark.parametrize("param", ROUND_TRIP)
def test_dump_load_round_trip(param: dict[str, Any]) -> None:
    spec = parse(param)
    assert load(AvtransSpec, dump(spec)) == spec
    assert kind("avtrans").parse(param) == spec
    assert load(kind("avtrans").spec_class(), dump(spec)) == spec


def test_renditions_and_watermarks_are_kept_typed() -> None:
    dash = parse(ROUND_TRIP[3])
    assert dash.mul == MulSpec(
        True, (400_000, 800_000), ("640x360", "1280x720"), (25.0,), (64_000,)
    )
    marked = parse(ROUND_TRIP[4])
    assert marked.logos == (({"url": "/b/logo.png", "dx": "0.1", "opacity": 0.5},),)
    assert marked.image == ({"logoUrl": "/b/l.png", "offsetX": 4},)


# --- refusals, each naming its key ---------------------------------------------------------

REFUSED: list[tuple[dict[str, Any], str]] = [
    # the container x codec matrix
    ({"f": "flv", "VIDEO": {"vcodec": "h265"}}, "Param.VIDEO.vcodec h265 cannot go in f=flv"),
    ({"f": "webm", "VIDEO": {"vcodec": "h264"}}, "Param.VIDEO.vcodec h264 cannot go in f=webm"),
    ({"f": "mov", "VIDEO": {"vcodec": "vp9"}}, "Param.VIDEO.vcodec vp9 cannot go in f=mov"),
    ({"f": "mpegts", "VIDEO": {"vcodec": "vp9"}}, "Param.VIDEO.vcodec vp9 cannot go in f=mpegts"),
    ({"f": "mp4", "VIDEO": {"vcodec": "gif"}}, "Param.VIDEO.vcodec gif cannot go in f=mp4"),
    ({"f": "gif", "VIDEO": {"vcodec": "h264"}}, "Param.VIDEO.vcodec h264 cannot go in f=gif"),
    ({"f": "gif", "VIDEO": {"vcodec": "copy"}}, "Param.VIDEO.vcodec copy cannot make f=gif"),
    ({"f": "flv", "AUDIO": {"acodec": "opus"}}, "Param.AUDIO.acodec opus cannot go in f=flv"),
    ({"f": "webm", "AUDIO": {"acodec": "aac"}}, "Param.AUDIO.acodec aac cannot go in f=webm"),
    ({"f": "mp3", "AUDIO": {"acodec": "aac"}}, "Param.AUDIO.acodec aac cannot go in f=mp3"),
    ({"f": "mov", "AUDIO": {"acodec": "opus"}}, "Param.AUDIO.acodec opus cannot go in f=mov"),
    ({"f": "adts", "AUDIO": {"acodec": "mp3"}}, "Param.AUDIO.acodec mp3 cannot go in f=adts"),
    # audio-only containers hold no video, image containers no audio
    ({"f": "mp3", "VIDEO": {"vb": "1m"}}, "Param.VIDEO.vb does not apply to f=mp3, which holds"),
    ({"f": "wav", "VIDEO": {"vcodec": "h264"}}, "Param.VIDEO.vcodec does not apply to f=wav"),
    ({"f": "gif", "AUDIO": {"ab": "64k"}}, "Param.AUDIO.ab does not apply to f=gif, which holds"),
    # nothing left to write
    ({"f": "mp4", "VIDEO": {"vn": 1}, "AUDIO": {"an": 1}}, "Param.AUDIO.an with Param.VIDEO.vn=1"),
    ({"f": "mp3", "AUDIO": {"an": 1}}, "Param.AUDIO.an leaves f=mp3 with nothing to write"),
    ({"f": "gif", "VIDEO": {"vn": 1}}, "Param.VIDEO.vn leaves f=gif with nothing to write"),
    # copy cannot change the picture or the sound
    ({"f": "mp4", "VIDEO": {"vcodec": "copy", "width": 640}}, "Param.VIDEO.width needs a re-enc"),
    ({"f": "mp4", "VIDEO": {"vcodec": "copy", "vr": 25}}, "Param.VIDEO.vr needs a re-encode"),
    ({"f": "mp4", "VIDEO": {"vcodec": "copy", "rotate": 90}}, "Param.VIDEO.rotate needs a re-enc"),
    ({"f": "mp4", "VIDEO": {"vcodec": "copy", "denoise": 1}}, "Param.VIDEO.denoise needs a re-e"),
    ({"f": "mp4", "VIDEO": {"vcodec": "copy", "crf": 20}}, "Param.VIDEO.crf needs a re-encode"),
    ({"f": "mp4", "AUDIO": {"acodec": "copy", "ab": "64k"}}, "Param.AUDIO.ab needs a re-encode"),
    ({"f": "mp4", "AUDIO": {"acodec": "copy", "ar": 8000}}, "Param.AUDIO.ar needs a re-encode"),
    (
        {"f": "mp4", "VIDEO": {"vcodec": "copy"}, "LOGOS": [[{"url": "/b/l.png"}]]},
        "Param.LOGOS needs the video re-encoded",
    ),
    ({"f": "mp3", "IMAGE": [{"logoUrl": "/b/l.png"}]}, "Param.IMAGE needs a video stream"),
    # rate control and quality
    ({"f": "mp4", "VIDEO": {"twopass": 1, "crf": 23}}, "Param.VIDEO.twopass cannot be combined"),
    ({"f": "mp4", "VIDEO": {"twopass": 1}}, "Param.VIDEO.twopass needs a target bit rate"),
    ({"f": "mp4", "VIDEO": {"lossless": 1, "vb": "1m"}}, "Param.VIDEO.lossless cannot be combin"),
    ({"f": "mp4", "VIDEO": {"lossless": 1, "profile": "high"}}, "Param.VIDEO.lossless h264 lossl"),
    ({"f": "gif", "VIDEO": {"lossless": 1}}, "Param.VIDEO.lossless does not apply to f=gif"),
    ({"f": "mp4", "VIDEO": {"qpmax": 60}}, "Param.VIDEO.qpmax must be between 0 and 51 for h264"),
    ({"f": "mp4", "VIDEO": {"qpmax": 64}}, "Param.VIDEO.qpmax must be between 0 and 63"),
    ({"f": "mp4", "VIDEO": {"level": "3.3"}}, "Param.VIDEO.level must be one of 1, 1b, 1.1"),
    ({"f": "mp4", "VIDEO": {"vcodec": "h265", "level": "1b"}}, "Param.VIDEO.level must be one of"),
    ({"f": "webm", "VIDEO": {"level": "4"}}, "Param.VIDEO.level does not apply to vcodec=vp9"),
    ({"f": "mp4", "VIDEO": {"shortSide": 720, "width": 1280}}, "Param.VIDEO.shortSide cannot be"),
    ({"f": "mp4", "VIDEO": {"longterm": 1}}, "Param.VIDEO.longterm 1 is not supported"),
    ({"f": "mp4", "VIDEO": {"rasl": 1}}, "Param.VIDEO.rasl applies only to vcodec=h265"),
    ({"f": "mp4", "VIDEO": {"deinterlace": "on"}}, "Param.VIDEO.deinterlace must be one of 0, 1"),
    (
        {"f": "mp4", "VIDEO": {"fieldmatch": "2"}},
        "Param.VIDEO.fieldmatch must be one of 0, 1, auto",
    ),
    ({"f": "mp4", "VIDEO": {"denoise": "hqdn3d=300"}}, "Param.VIDEO.denoise must be 0, 1, light"),
    ({"f": "mp4", "VIDEO": {"denoise": "nlmeans=99"}}, "Param.VIDEO.denoise must be 0, 1, light"),
    ({"f": "mp4", "VIDEO": {"denoise": "unsharp"}}, "Param.VIDEO.denoise must be 0, 1, light"),
    # keys of one output kind on another
    ({"f": "mp4", "VIDEO": {"intervalframes": 2}}, "Param.VIDEO.intervalframes applies only to"),
    ({"f": "mp4", "VIDEO": {"loop": 0}}, "Param.VIDEO.loop applies only to f=gif and f=webp"),
    ({"f": "webp", "VIDEO": {"finaldelay": 10}}, "Param.VIDEO.finaldelay applies only to f=gif"),
    ({"f": "gif", "VIDEO": {"qscale": 50}}, "Param.VIDEO.qscale applies only to f=webp"),
    ({"f": "gif", "VIDEO": {"vb": "1m"}}, "Param.VIDEO.vb does not apply to f=gif"),
    ({"f": "webp", "VIDEO": {"crf": 20}}, "Param.VIDEO.crf does not apply to f=webp"),
    # codecParams: the chosen encoder's own options only
    ({"f": "mp4", "VIDEO": {"codecParams": "crf=20"}}, "Param.VIDEO.codecParams crf: use Param."),
    ({"f": "mp4", "VIDEO": {"codecParams": "keyint=50"}}, "Param.VIDEO.codecParams keyint: use"),
    ({"f": "mp4", "VIDEO": {"codecParams": "rctype=3"}}, "Param.VIDEO.codecParams rctype is not"),
    ({"f": "mp4", "VIDEO": {"codecParams": "ctu=32"}}, "Param.VIDEO.codecParams ctu is not an op"),
    ({"f": "mp4", "VIDEO": {"codecParams": "ref=99"}}, "Param.VIDEO.codecParams ref must be an i"),
    ({"f": "mp4", "VIDEO": {"codecParams": "me=x:y"}}, "Param.VIDEO.codecParams me must be one o"),
    ({"f": "mp4", "VIDEO": {"codecParams": "ref=2:ref=3"}}, "Param.VIDEO.codecParams ref is give"),
    ({"f": "mp4", "VIDEO": {"codecParams": "ref"}}, "Param.VIDEO.codecParams must be key=value"),
    ({"f": "webm", "VIDEO": {"codecParams": "speed=4"}}, "Param.VIDEO.codecParams speed is not"),
    ({"f": "mp4", "VIDEO": {"vcodec": "copy", "codecParams": "ref=2"}}, "Param.VIDEO.codecParams"),
    (
        {"f": "mp4", "VIDEO": {"vcodec": "h265", "rasl": 1, "codecParams": "open-gop=0"}},
        "Param.VIDEO.codecParams open-gop conflicts with Param.VIDEO.rasl",
    ),
    # audio values per codec
    ({"f": "mp4", "AUDIO": {"acodec": "opus", "ar": 44100}}, "Param.AUDIO.ar must be one of 8000"),
    ({"f": "flv", "AUDIO": {"acodec": "mp3", "ar": 48000}}, "Param.AUDIO.ar must be one of 11025"),
    ({"f": "mp3", "AUDIO": {"channels": 6}}, "Param.AUDIO.channels must be at most 2 for mp3"),
    ({"f": "flac", "AUDIO": {"ab": "128k"}}, "Param.AUDIO.ab does not apply to lossless flac"),
    ({"f": "wav", "AUDIO": {"ab": "128k"}}, "Param.AUDIO.ab does not apply to lossless pcm"),
    (
        {"f": "mp3", "AUDIO": {"profile": "aac_low"}},
        "Param.AUDIO.profile applies only to acodec=aac",
    ),
    ({"f": "mp4", "AUDIO": {"resampler": "speex"}}, "Param.AUDIO.resampler must be one of swr, so"),
    # top level
    ({"f": "mp4", "CLIP": {"duration": 0}}, "Param.CLIP.duration must be more than 0 seconds"),
]


@pytest.mark.parametrize(("param", "expected"), REFUSED)
def test_refusals_name_the_key(param: dict[str, Any], expected: str) -> None:
    detail = refused(param)
    assert detail.startswith(expected), detail


def test_he_aac_is_valid_kvs_but_a_task_needs_an_ffmpeg_that_makes_it() -> None:
    """A preset asking HE-AAC is stored (it is valid KVS); judged against this openkvs's
    baseline it is 1001 naming the key, and a task of it on an ffmpeg without libfdk_aac
    is 1018 naming the key."""
    he = {"f": "mp4", "AUDIO": {"profile": "aac_he"}}
    assert parse(he).audio.profile == "aac_he"
    assert refused(he, capabilities=BASELINE).startswith(
        "Param.AUDIO.profile aac_he needs the libfdk_aac"
    )
    if installed().he_aac:
        pytest.skip("this machine's ffmpeg has libfdk_aac: HE-AAC tasks run here")
    error = ext_refused(he, {})
    assert error.code == 1018
    assert error.detail.startswith("Param.AUDIO.profile aac_he needs the libfdk_aac encoder")


def test_he_aac_and_soxr_follow_the_capabilities() -> None:
    with_fdk = Capabilities(BASELINE.encoders | {FDK_AAC})
    param = {"f": "mp4", "AUDIO": {"profile": "aac_he_v2", "aacheCompatible": 1}}
    audio = parse(param, with_fdk).audio
    assert (audio.profile, audio.he_compatible) == ("aac_he_v2", True)
    mono = {"f": "mp4", "AUDIO": {"profile": "aac_he_v2", "channels": 1}}
    assert refused(mono, capabilities=with_fdk).startswith("Param.AUDIO.channels must be 2")
    no_soxr = Capabilities(BASELINE.encoders, frozenset({"swr"}))
    soxr = {"f": "mp4", "AUDIO": {"resampler": "soxr"}}
    assert refused(soxr, capabilities=no_soxr).startswith("Param.AUDIO.resampler soxr is not in")
    assert parse(soxr).audio.resampler == "soxr"


def test_unknown_keys_are_ignored_even_where_a_section_does_not_apply() -> None:
    assert parse({"f": "mp3", "VIDEO": {"myNote": "x"}, "AUDIO": {"other": 1}}).video.codec == ""
    assert parse({"f": "gif", "AUDIO": {"an": 0, "note": "y"}}).audio.codec == ""


def test_copy_accepts_no_op_values() -> None:
    spec = parse({"f": "mp4", "VIDEO": {"vcodec": "copy", "width": 0, "rotate": "0", "as": 1}})
    assert spec.video.codec == "copy"


def test_containers_list_is_the_error_order() -> None:
    assert tuple(CONTAINERS)[:7] == ("mp4", "flv", "hls", "mpegts", "mp3", "adts", "dash")


# --- ExtParam ------------------------------------------------------------------------------


def options(param: dict[str, Any], ext: dict[str, Any]) -> AvtransOptions:
    stored = task_options(parse(param), ext, SOURCES)
    assert kind("avtrans").task_options(parse(param), ext, SOURCES) == stored
    return load(AvtransOptions, stored)


def test_ext_param_values() -> None:
    got = options(
        {"f": "mp4"},
        {
            "ss": "00:00:01.5",
            "duration": 4,
            "vol_percent": "150",
            "vol_dB": -3.5,
            "passParams": {"movflags": "frag_keyframe+empty_moov", "max_muxing_queue_size": 1024},
            "Callback": {"progress_cburl": "https://example.com/p", "progress_interval": "2"},
            "masterSrcIndex": 0,
            "segment_filename": "ignored-%d.ts",
            "unknown": {"x": 1},
        },
    )
    assert got == AvtransOptions(
        ss=1.5,
        duration=4.0,
        vol_percent=150,
        vol_db=-3.5,
        pass_params={"movflags": "frag_keyframe+empty_moov", "max_muxing_queue_size": "1024"},
        progress_url="https://example.com/p",
        progress_interval=2.0,
        master_index=0,
    )
    assert options({"f": "mp4"}, {}) == AvtransOptions()
    assert (
        options({"f": "mp4"}, {"Callback": {"progress_cburl": "http://h/"}}).progress_interval == 10
    )


UNRUNNABLE: list[tuple[dict[str, Any], dict[str, Any], Any, str]] = [
    ({"f": "hls"}, {"mulHlsRate": 1}, SOURCES * 2, "ExtParam mulHlsRate=1 of 2 sources"),
    (
        {"f": "hls", "LOGOS": [[{"url": "/b/l.png"}]]},
        {"mulHlsRate": 1},
        None,
        "a watermark with ExtParam mulHlsRate=1",
    ),
    (
        {"f": "dash", "mulrate": 1, "VIDEO": {"mulVb": "400k,800k", "mulRes": "320x180,640x360"}},
        {"LOGOS": [[{"url": "/b/l.png"}]]},
        None,
        "a watermark with f=dash with mulrate=1",
    ),
    (
        {"f": "hls", "VIDEO": {"twopass": 1, "vb": "1m"}},
        {"mulHlsRate": 1},
        None,
        "ExtParam mulHlsRate=1 with VIDEO.twopass cannot run",
    ),
    (
        {"f": "hls"},
        {"hlsKey": "0" * 32, "passParams": {"hls_segment_type": "fmp4"}},
        None,
        "ExtParam hlsKey with fMP4 segments cannot run",
    ),
    ({"f": "dash"}, {"loudnorm": {"I": -16}}, None, "ExtParam loudnorm with f=dash cannot run"),
    ({"f": "mp4"}, {"f": "flv"}, None, "ExtParam f='flv' (a per-task output format)"),
]


@pytest.mark.parametrize(("param", "ext", "sources", "expected"), UNRUNNABLE)
def test_shapes_that_cannot_run_yet_are_1015(
    param: dict[str, Any], ext: dict[str, Any], sources: Any, expected: str
) -> None:
    error = ext_refused(param, ext, sources)
    assert error.code == 1015
    assert error.detail.startswith(expected), error.detail


def test_runnable_shapes_pass() -> None:
    assert options({"f": "mp4"}, {"mulHlsRate": 0, "f": "mp4"}) == AvtransOptions()
    typed = [{**SOURCES[0], "type": "video"}]
    assert task_options(parse({"f": "mp4"}), {}, typed) == dump(AvtransOptions())


BAD_EXT: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"f": "mp4"}, {"ss": "soon"}, "ExtParam ss must be seconds or HH:MM:SS[.mmm]"),
    ({"f": "mp4"}, {"ss": -1}, "ExtParam ss must be seconds"),
    ({"f": "mp4"}, {"duration": 0}, "ExtParam duration must be more than 0 seconds"),
    ({"f": "mp4"}, {"duration": 200_000}, "ExtParam duration must be at most 180000 seconds"),
    ({"f": "mp4"}, {"vol_percent": 1.5}, "ExtParam vol_percent must be an integer from 0 to 1000"),
    ({"f": "mp4"}, {"vol_percent": 2000}, "ExtParam vol_percent must be an integer from 0"),
    ({"f": "mp4"}, {"vol_dB": "loud"}, "ExtParam vol_dB must be a number from -60 to 60"),
    ({"f": "mp4"}, {"vol_dB": True}, "ExtParam vol_dB must be a number"),
    ({"f": "mp4", "AUDIO": {"acodec": "copy"}}, {"vol_dB": 3}, "ExtParam vol_dB needs re-encoded"),
    ({"f": "gif"}, {"vol_percent": 50}, "ExtParam vol_percent needs re-encoded audio: the output"),
    ({"f": "mp4"}, {"passParams": "movflags"}, "ExtParam passParams must be an object"),
    ({"f": "mp4"}, {"passParams": {"filter_complex": "x"}}, "ExtParam passParams.filter_complex"),
    ({"f": "mp4"}, {"passParams": {"i": "/etc/passwd"}}, "ExtParam passParams.i is not an option"),
    ({"f": "mp4"}, {"passParams": {"movflags": "+faststart+evil"}}, "ExtParam passParams.movflags"),
    ({"f": "flv"}, {"passParams": {"movflags": "faststart"}}, "ExtParam passParams.movflags appl"),
    ({"f": "mp4"}, {"passParams": {"max_muxing_queue_size": "x"}}, "ExtParam passParams.max_mux"),
    ({"f": "mp4"}, {"passParams": {"max_muxing_queue_size": [1]}}, "ExtParam passParams.max_mux"),
    ({"f": "webm"}, {"passParams": {"tune": "film"}}, "ExtParam passParams.tune needs video enc"),
    (
        {"f": "mp4", "VIDEO": {"vcodec": "h265"}},
        {"passParams": {"tune": "film"}},
        "ExtParam passParams.tune must be one of psnr, ssim",
    ),
    ({"f": "mp4"}, {"passParams": {"vbr": "on"}}, "ExtParam passParams.vbr needs audio encoded"),
    ({"f": "mp4"}, {"Callback": "http://x/"}, "ExtParam.Callback must be an object"),
    ({"f": "mp4"}, {"Callback": {"progress_cburl": 5}}, "ExtParam.Callback.progress_cburl must"),
    (
        {"f": "mp4"},
        {"Callback": {"progress_cburl": "http://h/", "progress_interval": 0}},
        "ExtParam.Callback.progress_interval must be an integer from 1 to 3600",
    ),
    (
        {"f": "mp4"},
        {"Callback": {"progress_cburl": "http://h/", "progress_cbmethod": "PUT"}},
        "ExtParam.Callback.progress_cbmethod must be POST or GET",
    ),
    ({"f": "mp4"}, {"masterSrcIndex": 3}, "ExtParam masterSrcIndex must be the index of a SrcInfo"),
]


@pytest.mark.parametrize(("param", "ext", "expected"), BAD_EXT)
def test_bad_ext_param_values_are_1018(
    param: dict[str, Any], ext: dict[str, Any], expected: str
) -> None:
    error = ext_refused(param, ext)
    assert error.code == 1018
    assert error.detail.startswith(expected), error.detail
