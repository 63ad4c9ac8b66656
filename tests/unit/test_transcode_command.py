"""Golden ffmpeg commands of ``engine.transcode``: for a fixed source, each preset key and
ExtParam value gives exactly these arguments; each refusal its code."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from openkvs.engine.formats import BASELINE, FDK_AAC, Capabilities
from openkvs.engine.transcode import (
    SourceFacts,
    TranscodePlan,
    command_text,
    facts_from_probe,
    plan_transcode,
)
from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransOptions, parse
from openkvs.presets.avtrans_ext import read_options

#: A 10-second 1280x720 25 fps H.264 + stereo 44.1 kHz AAC source.
FACTS = SourceFacts(
    duration=10.0,
    has_video=True,
    has_audio=True,
    width=1280,
    height=720,
    fps=25.0,
    video_codec="h264",
    pix_fmt="yuv420p",
    video_bitrate=2_000_000,
    audio_codec="aac",
    audio_bitrate=128_000,
    sample_rate=44100,
    channels=2,
    video_index=0,
    audio_index=1,
)
INPUT = ["-i", "/src/in.mp4"]
HEAD = ["ffmpeg", "-hide_banner", "-nostdin", "-y", *INPUT]


def plan(
    param: dict[str, Any],
    ext: dict[str, Any] | None = None,
    facts: SourceFacts = FACTS,
    threads: int = 0,
    capabilities: Capabilities = BASELINE,
) -> TranscodePlan:
    spec = parse(param, capabilities)
    # read_options is task_options without the check of this machine's ffmpeg: pure.
    options = read_options(spec, ext or {}, [{"path": "/b/k", "index": 0}])
    return plan_transcode(
        spec, options, facts, input_args=INPUT, scratch="/scratch", threads=threads
    )


def argv(param: dict[str, Any], ext: dict[str, Any] | None = None, **kw: Any) -> list[str]:
    commands = plan(param, ext, **kw).commands
    assert len(commands) == 1
    return list(commands[0])


def video(**keys: Any) -> list[str]:
    return argv({"f": "mp4", "VIDEO": keys})


def audio(**keys: Any) -> list[str]:
    return argv({"f": "mp4", "AUDIO": keys})


def has(command: list[str], *items: str) -> bool:
    """Whether ``items`` appear in ``command`` one after the other."""
    n = len(items)
    return any(command[i : i + n] == list(items) for i in range(len(command) - n + 1))


def value(command: list[str], option: str) -> str | None:
    return command[command.index(option) + 1] if option in command else None


def failure(param: dict[str, Any], ext: dict[str, Any] | None = None, **kw: Any) -> TaskError:
    with pytest.raises(TaskError) as info:
        plan(param, ext, **kw)
    return info.value


# --- whole commands ------------------------------------------------------------------------


def test_default_mp4() -> None:
    got = plan({"f": "mp4"})
    assert got.commands == (
        (
            *HEAD, "-map", "0:0", "-map", "0:1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-movflags", "+faststart", "-f", "mp4", "/scratch/output.mp4",
        ),
    )  # fmt: skip
    assert (got.output, got.duration, got.content_type) == (
        "/scratch/output.mp4",
        10.0,
        "video/mp4",
    )


def test_everything_at_once() -> None:
    got = argv(
        {
            "f": "mp4",
            "clearmeta": 1,
            "CLIP": {"ss": 1, "duration": 5},
            "VIDEO": {"vb": "1m", "vr": 15, "width": 640, "preset": "fast", "gop": 30},
            "AUDIO": {"ab": "96k", "ar": 48000, "channels": 1},
        },
        {"vol_dB": 2, "passParams": {"max_muxing_queue_size": "4096"}},
        threads=3,
    )
    assert got == [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-threads", "3", "-ss", "1", *INPUT,
        "-map", "0:0", "-vf", "scale=640:360,setsar=1,fps=15",
        "-map", "0:1", "-af", "volume=2dB", "-t", "5",
        "-c:v", "libx264", "-b:v", "1000000", "-g", "30", "-preset", "fast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96000", "-ar", "48000", "-ac", "1",
        "-threads", "3", "-map_metadata", "-1", "-map_chapters", "-1",
        "-movflags", "+faststart", "-max_muxing_queue_size", "4096",
        "-f", "mp4", "/scratch/output.mp4",
    ]  # fmt: skip


def test_two_pass_h264_is_two_commands() -> None:
    first, second = plan({"f": "mp4", "VIDEO": {"vb": "800k", "twopass": 1}}).commands
    assert first == (
        *HEAD, "-map", "0:0", "-c:v", "libx264", "-b:v", "800000", "-pass", "1",
        "-passlogfile", "/scratch/passlog", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough",
        "-an", "-f", "null", "-",
    )  # fmt: skip
    assert second == (
        *HEAD, "-map", "0:0", "-map", "0:1", "-c:v", "libx264", "-b:v", "800000", "-pass", "2",
        "-passlogfile", "/scratch/passlog", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough",
        "-c:a", "aac",
        "-movflags", "+faststart", "-f", "mp4", "/scratch/output.mp4",
    )  # fmt: skip


def test_two_pass_h265_and_vp9() -> None:
    first, second = plan(
        {"f": "mkv", "VIDEO": {"vcodec": "h265", "vb": "1m", "twopass": 1}}
    ).commands
    stats = "log-level=error:pass=1:stats=/scratch/passlog-x265.log"
    assert value(list(first), "-x265-params") == stats
    assert value(list(second), "-x265-params") == stats.replace("pass=1", "pass=2")
    assert "-pass" not in first
    first, second = plan({"f": "webm", "VIDEO": {"vb": "1m", "twopass": 1}}).commands
    assert has(list(first), "-pass", "1", "-passlogfile", "/scratch/passlog")
    assert has(list(second), "-pass", "2", "-passlogfile", "/scratch/passlog")
    assert list(first)[-4:] == ["-an", "-f", "null", "-"]


def test_scratch_paths_are_escaped_in_x265_params() -> None:
    spec = parse({"f": "mp4", "VIDEO": {"vcodec": "h265", "vb": "1m", "twopass": 1}})
    commands = plan_transcode(
        spec, AvtransOptions(), FACTS, input_args=INPUT, scratch="/data/a:b"
    ).commands
    assert value(list(commands[0]), "-x265-params") == (
        "log-level=error:pass=1:stats=/data/a\\:b/passlog-x265.log"
    )


def test_command_text_quotes_each_word() -> None:
    assert command_text([["ffmpeg", "-i", "a b.mp4"], ["echo", "x;y"]]) == (
        "ffmpeg -i 'a b.mp4' && echo 'x;y'"
    )


# --- containers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "muxer", "output", "content_type"),
    [
        ("mp4", "mp4", "output.mp4", "video/mp4"),
        ("mov", "mov", "output.mov", "video/quicktime"),
        ("mkv", "matroska", "output.mkv", "video/x-matroska"),
        ("webm", "webm", "output.webm", "video/webm"),
        ("flv", "flv", "output.flv", "video/x-flv"),
        ("mpegts", "mpegts", "output.ts", "video/mp2t"),
        ("gif", "gif", "output.gif", "image/gif"),
        ("webp", "webp", "output.webp", "image/webp"),
        ("mp3", "mp3", "output.mp3", "audio/mpeg"),
        ("adts", "adts", "output.aac", "audio/aac"),
        ("flac", "flac", "output.flac", "audio/flac"),
        ("wav", "wav", "output.wav", "audio/wav"),
    ],
)
def test_container_muxer_name_and_type(f: str, muxer: str, output: str, content_type: str) -> None:
    got = plan({"f": f})
    assert list(got.commands[0])[-3:] == ["-f", muxer, f"/scratch/{output}"]
    assert (got.output, got.content_type) == (f"/scratch/{output}", content_type)
    assert ("-movflags" in got.commands[0]) == (f in ("mp4", "mov"))


def test_codec_defaults_per_container() -> None:
    assert has(argv({"f": "webm"}), "-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0")
    assert has(argv({"f": "webm"}), "-c:a", "libopus")
    assert has(argv({"f": "mp3"}), "-map", "0:1", "-vn", "-c:a", "libmp3lame")
    assert has(argv({"f": "flac"}), "-vn", "-c:a", "flac")
    assert has(argv({"f": "wav"}), "-vn", "-c:a", "pcm_s16le")
    assert has(argv({"f": "adts"}), "-vn", "-c:a", "aac")


# --- VIDEO keys ----------------------------------------------------------------------------


def test_vcodec() -> None:
    h265 = ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"]
    assert has(video(vcodec="h265"), *h265)
    vp9 = ["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-deadline", "good", "-cpu-used", "2"]
    assert has(video(vcodec="vp9"), *vp9, "-row-mt", "1", "-pix_fmt", "yuv420p")
    copy = video(vcodec="copy")
    assert has(copy, "-map", "0:0", "-map", "0:1", "-c:v", "copy", "-c:a", "aac")
    assert "-vf" not in copy and "-pix_fmt" not in copy


def test_vb_vr_gop_preset_profile_level() -> None:
    assert has(video(vb="2.5m"), "-b:v", "2500000")
    assert value(video(vr="29.97"), "-vf") == "fps=29.97"
    assert has(video(gop=48), "-g", "48")
    assert has(video(preset="slow"), "-preset", "slow")
    assert has(video(profile="baseline"), "-profile:v", "baseline")
    assert has(video(level="3.1"), "-level:v", "3.1")
    assert has(video(level="4.0"), "-level:v", "4")
    h265 = video(vcodec="h265", profile="main10", level="5.1", preset="fast")
    assert has(h265, "-preset", "fast", "-profile:v", "main10", "-pix_fmt", "yuv420p10le")
    assert value(h265, "-x265-params") == "log-level=error:level-idc=5.1"
    for preset, speed in (("ultrafast", "5"), ("medium", "2"), ("veryslow", "0")):
        assert has(video(vcodec="vp9", preset=preset), "-cpu-used", speed)


def test_crf_and_its_cap() -> None:
    assert has(video(crf=20), "-c:v", "libx264", "-crf", "20", "-pix_fmt")
    assert has(video(crf=20, vb="1m"), "-crf", "20", "-maxrate", "1000000", "-bufsize", "2000000")
    assert has(video(vcodec="h265", crf=26, vb="1m"), "-crf", "26", "-maxrate", "1000000")
    assert has(video(vcodec="vp9", crf=30), "-crf", "30", "-b:v", "0")
    assert has(video(vcodec="vp9", crf=30, vb="1m"), "-crf", "30", "-b:v", "1000000")
    assert has(video(vcodec="vp9", vb="1m"), "-c:v", "libvpx-vp9", "-b:v", "1000000", "-deadline")


def test_qpmax() -> None:
    assert has(video(qpmax=40), "-qmax", "40")
    assert value(video(vcodec="h265", qpmax=40), "-x265-params") == "log-level=error:qpmax=40"
    assert has(video(vcodec="vp9", qpmax=60), "-qmax", "60")


def test_lossless() -> None:
    h264 = video(lossless=1)
    assert has(h264, "-c:v", "libx264", "-qp", "0", "-c:a") and "-pix_fmt" not in h264
    h265 = video(vcodec="h265", lossless=1)
    assert value(h265, "-x265-params") == "log-level=error:lossless=1" and "-pix_fmt" not in h265
    vp9 = video(vcodec="vp9", lossless=1)
    assert has(vp9, "-c:v", "libvpx-vp9", "-lossless", "1", "-deadline") and "-pix_fmt" not in vp9
    webp = argv({"f": "webp", "VIDEO": {"lossless": 1}})
    assert has(webp, "-c:v", "libwebp_anim", "-lossless", "1", "-an")


def test_codec_params() -> None:
    x264 = video(codecParams="aq-mode=2:ref=4:deblock=-1,-1")
    assert has(x264, "-x264-params", "aq-mode=2:ref=4:deblock=-1,-1")
    x265 = video(vcodec="h265", codecParams="sao=0:ctu=32")
    assert value(x265, "-x265-params") == "log-level=error:sao=0:ctu=32"
    vp9 = video(vcodec="vp9", codecParams="tile-columns=2:cpu-used=4")
    assert vp9[vp9.index("-row-mt") :][:2] == ["-row-mt", "1"]
    assert has(vp9, "-pix_fmt", "yuv420p", "-tile-columns", "2", "-cpu-used", "4")


def test_rasl() -> None:
    assert value(video(vcodec="h265", rasl=0), "-x265-params") == "log-level=error:open-gop=0"
    assert value(video(vcodec="h265", rasl=1), "-x265-params") == "log-level=error:open-gop=1"


@pytest.mark.parametrize(
    ("keys", "filters"),
    [
        ({"width": 640, "height": 480}, "scale=640:480,setsar=1"),  # stretched
        ({"width": 640, "height": 480, "as": 1}, "scale=640:360,setsar=1"),  # fit inside
        ({"width": 400, "height": 400, "as": 1}, "scale=400:224,setsar=1"),  # 225 → even
        ({"width": 640}, "scale=640:360,setsar=1"),
        ({"height": 360}, "scale=640:360,setsar=1"),
        ({"width": 641}, "scale=640:360,setsar=1"),  # odd sides go down to even
        ({"shortSide": 480}, "scale=852:480,setsar=1"),  # 853.3 → 852
        ({"shortSide": 480, "as": 1}, "scale=852:480,setsar=1"),
        ({"width": 360, "height": 640, "orientationAdapt": 1}, "scale=360:640,setsar=1"),
        ({"width": 1920, "height": 1080}, "scale=1920:1080,setsar=1"),  # larger: allowed
        ({"rotate": 90}, "transpose=clock"),
        ({"rotate": "180"}, "hflip,vflip"),
        ({"rotate": 270}, "transpose=cclock"),
        ({"rotate": 45}, "rotate=45*PI/180:ow=1414:oh=1414"),
        ({"rotate": 90, "width": 360}, "transpose=clock,scale=360:640,setsar=1"),
        ({"deinterlace": 1}, "bwdif=deint=all"),
        ({"deinterlace": "auto"}, "bwdif=deint=interlaced"),
        ({"deinterlace": "yadif"}, "yadif=deint=all"),
        ({"fieldmatch": 1}, "fieldmatch=order=auto:combmatch=full,yadif=deint=interlaced,decimate"),
        ({"denoise": 1}, "hqdn3d"),
        ({"denoise": "medium"}, "hqdn3d=8:6:12:9"),
        ({"denoise": "strong"}, "nlmeans=s=4:p=7:r=9"),
        ({"denoise": "hqdn3d=2:1:3:2"}, "hqdn3d=2:1:3:2"),
        ({"denoise": "nlmeans=3"}, "nlmeans=3"),
        (
            {"deinterlace": 1, "denoise": 1, "rotate": 90, "height": 320, "vr": 10},
            "bwdif=deint=all,hqdn3d,transpose=clock,scale=180:320,setsar=1,fps=10",
        ),
    ],
)
def test_video_filters(keys: dict[str, Any], filters: str) -> None:
    assert value(video(**keys), "-vf") == filters


def test_orientation_adapt_swaps_for_portrait_sources() -> None:
    portrait = replace(FACTS, width=720, height=1280)
    keys = {"width": 1280, "height": 720, "as": 1}
    assert (
        value(argv({"f": "mp4", "VIDEO": keys}, facts=portrait), "-vf") == "scale=404:720,setsar=1"
    )
    adapted = {**keys, "orientationAdapt": 1}
    assert (
        value(argv({"f": "mp4", "VIDEO": adapted}, facts=portrait), "-vf")
        == "scale=720:1280,setsar=1"
    )
    assert value(argv({"f": "mp4", "VIDEO": {"shortSide": 360}}, facts=portrait), "-vf") == (
        "scale=360:640,setsar=1"
    )


def test_sizes_follow_the_displayed_picture() -> None:
    anamorphic = replace(FACTS, width=720, height=576, sar=16 / 15)
    assert value(argv({"f": "mp4", "VIDEO": {"height": 288}}, facts=anamorphic), "-vf") == (
        "scale=384:288,setsar=1"
    )
    assert "-vf" not in argv({"f": "mp4"}, facts=anamorphic)  # kept as it is


def test_odd_sources_become_even_for_420_codecs_only() -> None:
    odd = replace(FACTS, width=641, height=361)
    assert value(argv({"f": "mp4"}, facts=odd), "-vf") == "scale=640:360"
    gif = argv({"f": "gif", "VIDEO": {"width": 321}}, facts=odd)
    assert value(
        gif,
        "-filter_complex",
    ).startswith("[0:0]scale=321:181,setsar=1,split")  # type: ignore[union-attr]


def test_unknown_source_size_leaves_the_sides_to_ffmpeg() -> None:
    unknown = replace(FACTS, width=0, height=0)
    assert value(argv({"f": "mp4", "VIDEO": {"width": 640}}, facts=unknown), "-vf") == (
        "scale=640:-2,setsar=1"
    )
    fit = argv({"f": "mp4", "VIDEO": {"width": 640, "height": 480, "as": 1}}, facts=unknown)
    assert value(fit, "-vf") == (
        "scale=640:480:force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1"
    )
    short = argv({"f": "mp4", "VIDEO": {"shortSide": 480}}, facts=unknown)
    assert (
        value(short, "-vf") == "scale=w='if(gte(iw,ih),-2,480)':h='if(gte(iw,ih),480,-2)',setsar=1"
    )
    assert "-vf" not in argv({"f": "mp4"}, facts=unknown)


def test_vn_an() -> None:
    no_video = video(vn=1)
    assert has(no_video, *INPUT, "-map", "0:1", "-vn", "-c:a", "aac")
    no_audio = audio(an=1)
    assert has(no_audio, "-map", "0:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an")


def test_gif() -> None:
    got = argv(
        {
            "f": "gif",
            "VIDEO": {"width": 320, "vr": 10, "intervalframes": 2, "loop": 3, "finaldelay": 100},
        }
    )
    assert got == [
        *HEAD, "-filter_complex",
        "[0:0]scale=320:180,setsar=1,fps=10,select='not(mod(n\\,2))',split[a][b];"
        "[a]palettegen[p];[b][p]paletteuse[v]",
        "-map", "[v]", "-c:v", "gif", "-an", "-loop", "3", "-final_delay", "100",
        "-f", "gif", "/scratch/output.gif",
    ]  # fmt: skip
    plain = argv({"f": "gif"})
    assert (
        value(plain, "-filter_complex") == "[0:0]split[a][b];[a]palettegen[p];[b][p]paletteuse[v]"
    )
    assert has(plain, "-loop", "0") and "-final_delay" not in plain


def test_webp() -> None:
    got = argv({"f": "webp", "VIDEO": {"qscale": 70, "compressionlevel": 5, "intervalframes": 3}})
    assert got == [
        *HEAD, "-map", "0:0", "-vf", "select='not(mod(n\\,3))'",
        "-c:v", "libwebp_anim", "-q:v", "70", "-compression_level:v", "5", "-an",
        "-loop", "0", "-f", "webp", "/scratch/output.webp",
    ]  # fmt: skip
    assert has(argv({"f": "webp", "VIDEO": {"loop": 1}}), "-loop", "1")


# --- rotation ------------------------------------------------------------------------------


def test_autorotate_turns_upright_and_clears_the_flag() -> None:
    rotated = replace(FACTS, rotation=90)
    got = argv({"f": "mp4", "VIDEO": {"width": 360}}, facts=rotated)
    assert "-noautorotate" not in got
    assert value(got, "-vf") == "scale=360:640,setsar=1"  # the upright picture is 720x1280
    assert has(got, "-metadata:s:v:0", "rotate=0")
    assert "-metadata:s:v:0" not in argv({"f": "mp4"})  # nothing to clear


def test_autorotate_0_keeps_the_flag() -> None:
    rotated = replace(FACTS, rotation=90)
    got = argv({"f": "mp4", "autorotate": 0, "VIDEO": {"width": 640}}, facts=rotated)
    assert has(got, "-y", "-noautorotate", *INPUT)
    assert value(got, "-vf") == "scale=640:360,setsar=1"  # the stored picture
    assert "-metadata:s:v:0" not in got
    auto = argv({"f": "mp4", "autorotate": 0, "VIDEO": {"rotate": "auto"}}, facts=rotated)
    assert "-noautorotate" not in auto and has(auto, "-metadata:s:v:0", "rotate=0")


def test_copy_keeps_the_rotation() -> None:
    got = argv({"f": "mp4", "VIDEO": {"vcodec": "copy"}}, facts=replace(FACTS, rotation=90))
    assert "-noautorotate" not in got and "-metadata:s:v:0" not in got


# --- AUDIO keys ----------------------------------------------------------------------------


def test_audio_keys() -> None:
    assert has(audio(acodec="mp3", ab="192k"), "-c:a", "libmp3lame", "-b:a", "192000")
    opus = audio(acodec="opus", ab="64k", ar=48000)
    assert has(opus, "-c:a", "libopus", "-b:a", "64000", "-ar", "48000")
    assert has(argv({"f": "mkv", "AUDIO": {"acodec": "flac"}}), "-c:a", "flac", "-f")
    copy = audio(acodec="copy")
    assert has(copy, "-map", "0:1", "-c:v", "libx264") and has(copy, "-c:a", "copy")
    assert has(audio(ar=22050), "-c:a", "aac", "-ar", "22050")
    assert has(audio(channels=1), "-c:a", "aac", "-ac", "1")
    assert has(audio(profile="aac_low"), "-c:a", "aac", "-profile:a", "aac_low")
    assert value(audio(resampler="soxr"), "-af") == "aresample=resampler=soxr"
    assert "-af" not in audio(resampler="swr")


def test_he_aac_uses_libfdk_aac_when_the_ffmpeg_has_it() -> None:
    fdk = Capabilities(BASELINE.encoders | {FDK_AAC})
    got = argv({"f": "mp4", "AUDIO": {"profile": "aac_he", "aacheCompatible": 1}}, capabilities=fdk)
    assert has(got, "-c:a", "libfdk_aac", "-profile:a", "aac_he", "-signaling", "implicit")


def test_flv_mp3_gets_a_rate_flv_holds() -> None:
    param = {"f": "flv", "AUDIO": {"acodec": "mp3"}}
    assert has(
        argv(param, facts=replace(FACTS, sample_rate=48000)), "-c:a", "libmp3lame", "-ar", "44100"
    )
    assert "-ar" not in argv(param)  # 44100 already
    assert has(argv({**param, "AUDIO": {"acodec": "mp3", "ar": 22050}}), "-ar", "22050")


def test_volume() -> None:
    assert value(argv({"f": "mp4"}, {"vol_percent": 150}), "-af") == "volume=1.5"
    assert value(argv({"f": "mp4"}, {"vol_percent": 50, "vol_dB": -6}), "-af") == "volume=-6dB"
    both = argv({"f": "mp4", "AUDIO": {"resampler": "soxr"}}, {"vol_dB": "2.5"})
    assert value(both, "-af") == "volume=2.5dB,aresample=resampler=soxr"


# --- top-level keys and ExtParam -----------------------------------------------------------


def test_clip_and_ext_param_times() -> None:
    clip = plan({"f": "mp4", "CLIP": {"ss": "00:00:02", "duration": 3}})
    assert has(list(clip.commands[0]), "-ss", "2", *INPUT) and has(
        list(clip.commands[0]), "-t", "3"
    )
    assert clip.duration == 3.0
    top = plan({"f": "mp4", "ss": 4})
    assert has(list(top.commands[0]), "-ss", "4") and top.duration == 6.0
    ext = plan(
        {"f": "mp4", "CLIP": {"ss": 2, "duration": 3}}, {"ss": "1.25", "duration": "00:00:04"}
    )
    assert has(list(ext.commands[0]), "-ss", "1.25") and has(list(ext.commands[0]), "-t", "4")
    assert ext.duration == 4.0
    only_ss = plan({"f": "mp4", "CLIP": {"ss": 2, "duration": 3}}, {"ss": 8})
    assert only_ss.duration == 2.0  # 3 s asked, 2 s left
    assert plan({"f": "mp4"}, facts=replace(FACTS, duration=0)).duration == 0.0
    assert plan({"f": "mp4"}, {"duration": 5}, facts=replace(FACTS, duration=0)).duration == 5


def test_computed_sides_beyond_8192_are_2003() -> None:
    strip = replace(FACTS, width=8000, height=100)
    error = failure({"f": "mp4", "VIDEO": {"shortSide": 200}}, facts=strip)
    assert error.code == 2003 and "16000x200" in error.detail


def test_ss_beyond_the_end_is_2003() -> None:
    error = failure({"f": "mp4"}, {"ss": 10})
    assert error.code == 2003 and "beyond the source's end" in error.detail


def test_clearmeta_and_threads() -> None:
    assert has(argv({"f": "mp4", "clearmeta": 1}), "-map_metadata", "-1", "-map_chapters", "-1")
    threaded = argv({"f": "mp4"}, threads=4)
    assert has(threaded, "-y", "-threads", "4", *INPUT) and has(
        threaded, "-c:a", "aac", "-threads", "4"
    )


def test_pass_params() -> None:
    merged = argv({"f": "mp4"}, {"passParams": {"movflags": "+frag_keyframe+faststart"}})
    assert has(merged, "-movflags", "+faststart+frag_keyframe", "-f", "mp4")
    ts = argv({"f": "mpegts"}, {"passParams": {"mpegts_flags": "resend_headers", "muxrate": 0}})
    assert has(ts, "-mpegts_flags", "resend_headers", "-muxrate", "0", "-f", "mpegts")
    tuned = argv({"f": "mp4"}, {"passParams": {"tune": "film", "bf": "2", "cutoff": 18000}})
    assert has(tuned, "-tune:v", "film", "-bf:v", "2", "-cutoff:a", "18000", "-f")


def test_intelligent_switch() -> None:
    bigger = {"width": 1920, "height": 1080}
    error = failure({"f": "mp4", "intelligentSwitch": 1, "VIDEO": bigger})
    assert error.code == 2049 and error.message == "Ban small to large"
    assert failure({"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"shortSide": 1080}}).code == 2049
    assert failure({"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"vr": 30}}).code == 2049
    assert failure({"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"vb": "3m"}}).code == 2049
    clamp = argv({"f": "mp4", "intelligentSwitch": 2, "VIDEO": {**bigger, "vb": "3m", "vr": 30}})
    assert value(clamp, "-vf") == "scale=1280:720,setsar=1,fps=25"
    assert has(clamp, "-b:v", "2000000")
    ntsc = replace(FACTS, fps=30000 / 1001)
    slowed = argv({"f": "mp4", "intelligentSwitch": 2, "VIDEO": {"vr": 30}}, facts=ntsc)
    assert value(slowed, "-vf") == "fps=29.97002997"
    square = argv({"f": "mp4", "intelligentSwitch": 2, "VIDEO": {"width": 1000, "height": 1000}})
    assert value(square, "-vf") == "scale=720:720,setsar=1"
    fine = argv({"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"width": 640, "vb": "1m", "vr": 25}})
    assert value(fine, "-vf") == "scale=640:360,setsar=1,fps=25"
    unknown = replace(FACTS, video_bitrate=0, fps=0)
    blind = argv({"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"vb": "9m"}}, facts=unknown)
    assert has(blind, "-b:v", "9000000")  # nothing to compare with


# --- sources that do not fit ---------------------------------------------------------------


def test_missing_streams() -> None:
    audio_only = replace(FACTS, has_video=False, video_index=-1)
    assert has(argv({"f": "mp4"}, facts=audio_only), *INPUT, "-map", "0:1", "-vn", "-c:a", "aac")
    assert failure({"f": "gif"}, facts=audio_only).code == 3155
    silent = replace(FACTS, has_audio=False, audio_index=-1)
    assert has(argv({"f": "mp4"}, facts=silent), "-pix_fmt", "yuv420p", "-an")
    assert failure({"f": "mp3"}, facts=silent).code == 3155
    assert failure({"f": "mp4", "VIDEO": {"vn": 1}}, facts=silent).code == 3155


def test_copied_codec_must_fit_the_container() -> None:
    hevc = replace(FACTS, video_codec="hevc")
    error = failure({"f": "flv", "VIDEO": {"vcodec": "copy"}}, facts=hevc)
    assert error.code == 2025 and "hevc video cannot go in f=flv" in error.detail
    assert has(argv({"f": "mp4", "VIDEO": {"vcodec": "copy"}}, facts=hevc), "-c:v", "copy")
    pcm = replace(FACTS, audio_codec="pcm_s24le")
    assert failure({"f": "mp4", "AUDIO": {"acodec": "copy"}}, facts=pcm).code == 2025
    assert has(argv({"f": "mkv", "AUDIO": {"acodec": "copy"}}, facts=pcm), "-c:a", "copy")


def test_defaults_without_stream_indexes() -> None:
    got = argv({"f": "mp4"}, facts=replace(FACTS, video_index=-1, audio_index=-1))
    assert has(got, "-map", "0:v:0", "-map", "0:a:0")


# --- facts_from_probe ----------------------------------------------------------------------


def _probe(**video: Any) -> dict[str, Any]:
    return {
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500,
             "disposition": {"attached_pic": 1}},
            {"index": 1, "codec_type": "video", "codec_name": "h264", "width": 1920,
             "height": 1080, "avg_frame_rate": "30000/1001", "pix_fmt": "yuv420p",
             "bit_rate": "5000000", "sample_aspect_ratio": "1:1", **video},
            {"index": 2, "codec_type": "audio", "codec_name": "aac", "sample_rate": "48000",
             "channels": 2, "bit_rate": "128000", "duration": "12.5"},
        ],
        "format": {"duration": "12.500000"},
    }  # fmt: skip


def test_facts_from_probe() -> None:
    facts = facts_from_probe(_probe())
    assert facts == SourceFacts(
        duration=12.5,
        has_video=True,
        has_audio=True,
        width=1920,
        height=1080,
        rotation=0,
        fps=pytest.approx(29.97, abs=0.01),  # type: ignore[arg-type]
        video_codec="h264",
        pix_fmt="yuv420p",
        video_bitrate=5_000_000,
        audio_codec="aac",
        audio_bitrate=128_000,
        sample_rate=48000,
        channels=2,
        sar=1.0,
        video_index=1,
        audio_index=2,
    )


@pytest.mark.parametrize(
    ("video", "clockwise"),
    [
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, 90),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, 270),
        ({"side_data_list": [{"rotation": 180}]}, 180),
        ({"side_data_list": [{"rotation": -180}]}, 180),
        ({"side_data_list": [{"rotation": -89.9}]}, 90),
        ({"tags": {"rotate": "90"}}, 90),
        ({"tags": {"rotate": "270"}}, 270),
        ({"tags": {"rotate": "x"}}, 0),
        ({}, 0),
    ],
)
def test_rotation_is_clockwise(video: dict[str, Any], clockwise: int) -> None:
    assert facts_from_probe(_probe(**video)).rotation == clockwise


def test_probe_oddities() -> None:
    odd = facts_from_probe(
        {
            "streams": [
                {"index": 0, "codec_type": "video", "avg_frame_rate": "0/0", "r_frame_rate": "25/1",
                 "sample_aspect_ratio": "16:15", "duration": "7.5"},
            ],
            "format": {},
        }
    )  # fmt: skip
    assert (odd.fps, odd.sar, odd.duration, odd.has_audio, odd.width) == (
        25.0,
        16 / 15,
        7.5,
        False,
        0,
    )
    cover_only = facts_from_probe({"streams": _probe()["streams"][::2], "format": {}})
    assert (cover_only.has_video, cover_only.has_audio, cover_only.duration) == (False, True, 12.5)
    assert facts_from_probe({}) == SourceFacts()


def test_packaged_outputs_end_with_their_muxer() -> None:
    """engine/hls.py and engine/dash.py turn this last output into their package."""
    for f, name in (("hls", "/s/output.m3u8"), ("dash", "/s/output.mpd")):
        spec = parse({"f": f})
        plan = plan_transcode(spec, AvtransOptions(), FACTS, input_args=INPUT, scratch="/s")
        assert plan.commands[-1][-3:] == ("-f", f, name)
