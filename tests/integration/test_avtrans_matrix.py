"""avtrans acceptance matrix: preset ``Param`` / ``ExtParam`` combinations (spec §3.2, §3.8)
run through the official SDK against one ``openkvs serve``, each output checked with ffprobe.

Every case is a preset, a CreateTask and the task's end (GetTaskByTaskID); the output object
is read from the server's data folder and checked independently of the service: container,
codecs, size, frame rate (±1 %), duration (±0.1 s or one frame), sample rate and channels,
plus a check of what the case is about (the picture's orientation, key-frame spacing, the
settings x264 wrote into the stream, loudness, GIF/WebP frames...). All tasks of the module
are queued at once by a module fixture, so the server runs them while earlier cases are
checked. The bit-rate cases (``slow``) transcode 24 s sources and measure the streams'
bit rates from their packets (within 15 % of ``vb``/``ab``).

Refused combinations (a codec the container cannot hold, stream copy with scaling, no
stream left, an ExtParam key outside the pass-through allow-list) must be answered at
Preset or CreateTask with 1001/1018 naming the key; no task may be created for them.

Expected values follow the spec; where it leaves a choice open the case says which reading
it takes (see the comments at ``CASES``).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.support import avcheck
from tests.support.avcheck import Media
from tests.support.media import SampleMediaUnavailable, make_audio, make_video, sample_videos

TASK_TIMEOUT = 300.0
TITLE = "openkvs matrix source"

# --- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """Local source files (by name), their ``/bucket/key`` paths, and why real recordings
    are missing (when they are)."""

    local: dict[str, Path]
    remote: dict[str, str]
    samples_missing: str = ""


def _halves(folder: Path) -> Path:
    """320x240, 2 s, 25 fps: left half white, right half black; a stereo 440 Hz tone."""
    out = folder / "halves.mp4"
    avcheck.ffmpeg(
        "-f", "lavfi", "-i",
        "color=white:s=160x240:r=25:d=2[l];color=black:s=160x240:r=25:d=2[r];[l][r]hstack",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-shortest", str(out),
    )  # fmt: skip
    return out


def _phone_tag(folder: Path, halves: Path) -> Path:
    """The brief's recipe for a phone-style source: ``rotate=90`` on a stream copy. FFmpeg
    5.1 writes that as a display matrix that ffprobe reports as ``rotation=90`` (turn 90°
    counter-clockwise to display)."""
    out = folder / "phone_tag.mp4"
    avcheck.ffmpeg("-i", str(halves), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out))
    return out


def _phone_cw(folder: Path, halves: Path) -> Path:
    """A portrait phone recording as phones write it: coded landscape, ``tkhd`` matrix
    "turn 90° clockwise" (ffprobe: ``rotation=-90``)."""
    out = folder / "phone_cw.mp4"
    shutil.copyfile(halves, out)
    avcheck.set_mp4_rotation_matrix(out, 90)
    return out


def _interlaced(folder: Path) -> Path:
    """320x240 interlaced (top field first) 25 fps, 2 s: 50 fps moving gradients woven
    into frames, so every frame combs where the picture moves."""
    out = folder / "interlaced.mp4"
    avcheck.ffmpeg(
        "-f", "lavfi", "-i",
        "gradients=s=320x240:r=50:d=2:speed=0.1,format=yuv420p,"
        "tinterlace=mode=interleave_top,setfield=tff",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "10",
        "-flags", "+ildct+ilme", "-x264opts", "tff=1", "-pix_fmt", "yuv420p", str(out),
    )  # fmt: skip
    return out


def _clean_and_noisy(folder: Path) -> tuple[Path, Path]:
    """A lossless 320x240 2 s testsrc2 and the same with temporal noise (lossless too)."""
    clean, noisy = folder / "clean.mp4", folder / "noisy.mp4"
    avcheck.ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(clean),
    )  # fmt: skip
    avcheck.ffmpeg(
        "-i", str(clean), "-vf", "noise=alls=10:allf=t",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(noisy),
    )  # fmt: skip
    return clean, noisy


def _long(folder: Path) -> Path:
    """24 s, 320x240, 25 fps testsrc2 with grain (so an encoder can spend any bit rate the
    cases ask for), stereo 44.1 kHz AAC."""
    out = folder / "long.mp4"
    plain = make_video(folder, "long_plain", seconds=24, size="320x240", rate=25)
    avcheck.ffmpeg(
        "-i", str(plain), "-vf", "noise=alls=20:allf=t",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p",
        "-c:a", "copy", str(out),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("avtrans-matrix"))


@pytest.fixture(scope="module")
def sources(site: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    folder = tmp_path_factory.mktemp("avtrans-sources")
    plain = make_video(folder, "clip_plain", seconds=3, size="320x240", rate=25)
    clip = folder / "clip.mp4"
    avcheck.ffmpeg("-i", str(plain), "-c", "copy", "-metadata", f"title={TITLE}", str(clip))
    halves = _halves(folder)
    clean, noisy = _clean_and_noisy(folder)
    local: dict[str, Path] = {
        "clip": clip,
        "portrait": make_video(folder, "portrait", seconds=2, size="240x320", rate=25),
        "halves": halves,
        "phone_tag": _phone_tag(folder, halves),
        "phone_cw": _phone_cw(folder, halves),
        "interlaced": _interlaced(folder),
        "noisy": noisy,
        "tone": make_audio(folder, "tone", fmt="wav", seconds=3, channels=2, sample_rate=48000),
    }
    # The generated sources are what the cases assume.
    assert Media.of(local["phone_tag"]).rotation() == 90
    assert Media.of(local["phone_cw"]).rotation() == -90
    assert Media.of(clip).tags.get("title") == TITLE
    source_idet = avcheck.idet_counts(local["interlaced"])
    assert source_idet["tff"] >= 0.9 * sum(source_idet.values()), source_idet
    missing = ""
    try:
        for sample in sample_videos():
            local[sample.stem] = sample
    except SampleMediaUnavailable as exc:
        missing = f"real recordings unavailable: {exc}"
    remote = {name: site.upload(path, f"mx-in/{name}{path.suffix}") for name, path in local.items()}
    local["clean"] = clean  # reference only, never uploaded
    return Sources(local, remote, missing)


@pytest.fixture(scope="module")
def long_source(site: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    folder = tmp_path_factory.mktemp("avtrans-long")
    local = {"long": _long(folder)}
    return Sources(local, {"long": site.upload(local["long"], "mx-in/long.mp4")})


# --- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class V:
    """The expected video stream."""

    codec: str
    width: int | tuple[int, ...]  # a tuple: any of these
    height: int | tuple[int, ...]
    fps: float
    profile: tuple[str, ...] = ()
    level: int | None = None
    rotation: int = 0  # ffprobe's rotation of the output (0: no rotation flag)


@dataclass(frozen=True)
class A:
    """The expected audio stream."""

    codec: str
    rate: int
    channels: int
    profile: str = ""


@dataclass(frozen=True)
class Outcome:
    """A finished case as the checks see it."""

    case: Case
    path: Path  # the output object, in the server's data folder
    media: Media
    info: dict[str, Any]  # TaskInfo
    sources: Sources
    runs: dict[str, Run]


Check = Callable[[Outcome], None]


@dataclass(frozen=True)
class Case:
    name: str  # also the preset name (mx_<name>): at most 29 characters
    source: str
    param: dict[str, Any]
    container: str = ""  # the expected container (an avtrans ``f`` value); "" when failing
    video: V | None = None
    audio: A | None = None
    duration: float = 0.0
    ext: dict[str, Any] | None = None
    fails: tuple[int, str] | None = None  # (ErrorCode, ErrorMsg) of a task that must fail
    checks: tuple[Check, ...] = ()
    vb: float = 0.0  # slow cases: measured video bit rate within 15 % of this
    ab: float = 0.0  # ... audio bit rate
    vb_cap: float = 0.0  # ... video bit rate at most 115 % of this


EXTENSIONS = {
    "mp4": "mp4", "flv": "flv", "mpegts": "ts", "mp3": "mp3", "adts": "aac", "gif": "gif",
    "webp": "webp", "flac": "flac", "webm": "webm", "mkv": "mkv", "mov": "mov", "wav": "wav",
}  # fmt: skip

# -- checks a case adds ------------------------------------------------------------------------


def keeps_title(o: Outcome) -> None:
    """Without ``clearmeta`` the source's container metadata is kept (spec: ``clearmeta`` 1
    strips it, so 0, the default, keeps it)."""
    assert o.media.tags.get("title") == TITLE, o.media.tags


def no_title(o: Outcome) -> None:
    assert "title" not in o.media.tags, o.media.tags


def x264(**expected: str) -> Check:
    def check(o: Outcome) -> None:
        options = avcheck.x264_options(o.path)
        assert options, "no x264 settings found in the stream"
        got = {k: options.get(k) for k in expected}
        assert got == expected, f"x264 settings {got}, expected {expected}"

    return check


def gop_at_most(frames: int) -> Check:
    def check(o: Outcome) -> None:
        items = avcheck.packets(o.path, "v:0")
        keys = [i for i, p in enumerate(sorted(items, key=lambda p: p.pts)) if p.key]
        gaps = [b - a for a, b in itertools.pairwise(keys)]
        assert keys and keys[0] == 0, keys
        assert max(gaps, default=0) <= frames, f"key frames at {keys}"
        assert len(keys) >= math.ceil(len(items) / frames), f"key frames at {keys}"

    return check


def upright(bright: str) -> Check:
    """The picture, as coded (not turned by a rotation flag), has its white half on side
    ``bright``."""
    opposite = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}[bright]

    def check(o: Outcome) -> None:
        video = o.media.video
        assert video is not None
        width, height = int(video["width"]), int(video["height"])
        means = avcheck.half_means(avcheck.gray_frame(o.path, 0.5), width, height)
        assert means[bright] > 200 and means[opposite] < 55, f"half brightness {means}"

    return check


def fragmented(o: Outcome) -> None:
    """``movflags`` frag_keyframe+empty_moov reached the muxer: the MP4 is fragmented."""
    boxes = avcheck.mp4_top_boxes(o.path)
    assert "moof" in boxes, boxes


def command_mentions(word: str) -> Check:
    def check(o: Outcome) -> None:
        assert word in str(o.info.get("Command", "")), o.info.get("Command")

    return check


def two_commands(o: Outcome) -> None:
    """Two-pass encoding runs ffmpeg twice (spec §9: ``Command`` joins them with ``&&``)."""
    commands = str(o.info.get("Command", "")).split(" && ")
    assert len(commands) >= 2 and all(c.startswith("ffmpeg") for c in commands), commands


def volume_change(db: float) -> Check:
    def check(o: Outcome) -> None:
        source = avcheck.mean_volume(o.sources.local[o.case.source])
        got = avcheck.mean_volume(o.path) - source
        assert abs(got - db) <= 1.0, f"mean volume changed by {got:.2f} dB, expected {db:.2f}"

    return check


def packets_copied(selector: str) -> Check:
    """Stream copy: the output's packets are the source's (same sizes, in order)."""

    def check(o: Outcome) -> None:
        source = [p.size for p in avcheck.packets(o.sources.local[o.case.source], selector)]
        output = [p.size for p in avcheck.packets(o.path, selector)]
        assert (len(output), output[:50]) == (len(source), source[:50]), "packets differ"

    return check


def gif(*, frames: int, delay: int, loop: int | None = None, final: int = 0) -> Check:
    """GIF frames (±1), each ``delay`` cs (±1) except the last, which with ``final`` lasts
    at least ``final`` cs (the extra delay of the last frame) and at most ``final+delay``."""

    def check(o: Outcome) -> None:
        info = avcheck.gif_info(o.path)
        assert abs(len(info.delays) - frames) <= 1, f"{len(info.delays)} frames"
        assert all(abs(d - delay) <= 1 for d in info.delays[:-1]), info.delays
        if final:
            assert final <= info.delays[-1] <= final + delay + 1, info.delays
        if loop is not None:
            assert info.loop == loop, f"loop count {info.loop}"

    return check


def webp(*, frames: int, duration: int, lossless: bool, loop: int | None = None) -> Check:
    def check(o: Outcome) -> None:
        info = avcheck.webp_info(o.path)
        assert info.animated and abs(len(info.durations) - frames) <= 1, info
        assert all(abs(d - duration) <= 1 for d in info.durations[:-1]), info.durations
        assert set(info.lossless) == {lossless}, f"lossless frames: {set(info.lossless)}"
        if loop is not None:
            assert info.loop == loop, f"loop count {info.loop}"

    return check


def progressive(o: Outcome) -> None:
    counts = avcheck.idet_counts(o.path)
    assert counts["progressive"] >= 0.9 * sum(counts.values()), f"idet: {counts}"


def smaller_than(other: str, ratio: float) -> Check:
    """The output is smaller than ``ratio`` × the output of case ``other``."""

    def check(o: Outcome) -> None:
        other_path = _wait_output(o.runs[other])
        size, other_size = o.path.stat().st_size, other_path.stat().st_size
        assert size < ratio * other_size, f"{size} bytes vs {other_size} of {other}"

    return check


def denoised_against(control: str) -> Check:
    """Closer to the clean picture than the same encode without ``denoise``, and further
    from the noisy source."""

    def check(o: Outcome) -> None:
        control_path = _wait_output(o.runs[control])
        clean, noisy = o.sources.local["clean"], o.sources.local["noisy"]
        gain = avcheck.psnr(o.path, clean) - avcheck.psnr(control_path, clean)
        change = avcheck.psnr(control_path, noisy) - avcheck.psnr(o.path, noisy)
        assert gain > 0.05 and change > 0.1, f"PSNR gain vs clean {gain:.3f} dB, {change:.3f}"

    return check


def output_at_most_source_rate(o: Outcome) -> None:
    source = avcheck.stream_bitrate(o.sources.local[o.case.source], "v:0")
    got = avcheck.stream_bitrate(o.path, "v:0")
    assert got <= 1.15 * source, f"video {got:.0f} bit/s > source {source:.0f} bit/s"


# -- the table -------------------------------------------------------------------------------
# Sources: clip 320x240 25 fps 3 s + AAC 44.1 kHz stereo (title tag); portrait 240x320 2 s;
# halves 320x240 2 s (left white, right black); phone_tag / phone_cw: halves with a rotation
# flag (ffprobe rotation 90 / -90); interlaced 320x240 25i 2 s; noisy 320x240 2 s; tone WAV
# 48 kHz stereo 3 s; real recordings: bigbuckbunny 1280x720 25 fps 5.3 s 6-ch 48 kHz AAC,
# bikes 640x272 25 fps 10 s (no audio), carphone_pristine 176x144 29.97 fps 4 s (no audio).
# Readings of open points: `f` webm/mkv/mov/wav, `vcodec` vp9 and `acodec` opus are taken as
# supported (the acceptance list names them; spec §3.2 does not); an audio-only container
# drops the video by itself; `wav` holds PCM; `vol_percent` scales the amplitude; `denoise`
# "1" switches a denoiser on (like `deinterlace` "1"); `finaldelay` is in centiseconds.

# fmt: off
AAC2 = A("aac", 44100, 2)
CLIP_V = V("h264", 320, 240, 25)
BBB = "bigbuckbunny"
BIKES = "bikes"
CARPHONE = "carphone_pristine"
SAMPLES = {BBB, BIKES, CARPHONE}

CASES: list[Case] = [
    Case(
        "mp4_basic", "clip",
        {"f": "mp4", "VIDEO": {"vcodec": "h264", "width": 160, "height": 120, "vb": "300k"},
         "AUDIO": {"acodec": "aac", "ab": "64k", "ar": 22050, "channels": 1}},
        "mp4", V("h264", 160, 120, 25), A("aac", 22050, 1), 3.0, checks=(keeps_title,),
    ),
    Case(
        "mp4_vr_shortside", "clip",
        {"f": "mp4", "VIDEO": {"vr": "15", "shortSide": 120, "as": 1}},
        "mp4", V("h264", 160, 120, 15), AAC2, 3.0,
    ),
    Case(
        "mp4_upscale_width_only", "clip",
        {"f": "mp4", "VIDEO": {"width": 640, "vr": 30}},
        "mp4", V("h264", 640, 480, 30), AAC2, 3.0,
    ),
    Case(
        "as1_fits_inside", "clip",
        {"f": "mp4", "VIDEO": {"width": 320, "height": 320, "as": 1}},
        "mp4", V("h264", 320, 240, 25), AAC2, 3.0,
    ),
    Case(
        "as0_stretches", "clip",
        {"f": "mp4", "VIDEO": {"width": 320, "height": 320, "as": 0}},
        "mp4", V("h264", 320, 320, 25), AAC2, 3.0,
    ),
    Case(
        "numbers_as_strings", "clip",
        {"f": "mp4", "VIDEO": {"width": "200", "height": "150", "as": "1", "vr": "20"},
         "AUDIO": {"ar": "32000", "channels": "1", "ab": "48kb"}},
        "mp4", V("h264", 200, 150, 20), A("aac", 32000, 1), 3.0,
    ),
    Case(
        "lowercase_sections", "clip",
        {"f": "mp4", "video": {"width": 160, "height": 120}, "audio": {"channels": 1}},
        "mp4", V("h264", 160, 120, 25), A("aac", 44100, 1), 3.0,
    ),
    Case(
        "flv_h264_mp3", "clip",
        {"f": "flv", "VIDEO": {"vcodec": "h264", "vb": "500k"},
         "AUDIO": {"acodec": "mp3", "ar": "44100", "ab": "96k"}},
        "flv", CLIP_V, A("mp3", 44100, 2), 3.0,
    ),
    Case(
        "mpegts_h265_aac", "clip",
        {"f": "mpegts", "VIDEO": {"vcodec": "h265", "preset": "ultrafast"},
         "AUDIO": {"acodec": "aac"}},
        "mpegts", V("hevc", 320, 240, 25), AAC2, 3.0,
    ),
    Case(
        "mp3_from_video", "clip",
        {"f": "mp3", "AUDIO": {"acodec": "mp3", "ab": "128k", "ar": 48000}},
        "mp3", None, A("mp3", 48000, 2), 3.0,
    ),
    Case(
        "adts_aac_low", "tone",
        {"f": "adts", "AUDIO": {"acodec": "aac", "profile": "aac_low", "ar": 32000,
                                "channels": 1}},
        "adts", None, A("aac", 32000, 1, "LC"), 3.0,
    ),
    Case(
        "gif_interval_loop", "clip",
        {"f": "gif", "VIDEO": {"width": 160, "intervalframes": 3, "loop": 2,
                               "finaldelay": 150}},
        "gif", V("gif", 160, 120, 25 / 3), None, 3.0,
        checks=(gif(frames=25, delay=12, loop=2, final=150),),
    ),
    Case(
        "gif_vr", "clip",
        {"f": "gif", "VIDEO": {"vr": 10, "loop": 0}},
        "gif", V("gif", 320, 240, 10), None, 3.0,
        checks=(gif(frames=30, delay=10, loop=0),),
    ),
    Case(
        "webp_lossless_level6", "clip",
        {"f": "webp", "VIDEO": {"lossless": 1, "compressionlevel": 6, "width": 160,
                                "height": 120, "loop": 0}},
        "webp", V("webp", 160, 120, 25), None, 3.0,
        checks=(webp(frames=75, duration=40, lossless=True, loop=0),
                smaller_than("webp_lossless_level0", 0.97)),
    ),
    Case(
        "webp_lossless_level0", "clip",
        {"f": "webp", "VIDEO": {"lossless": 1, "compressionlevel": 0, "width": 160,
                                "height": 120}},
        "webp", V("webp", 160, 120, 25), None, 3.0,
        checks=(webp(frames=75, duration=40, lossless=True),),
    ),
    Case(
        "webp_qscale10", "clip",
        {"f": "webp", "VIDEO": {"qscale": 10, "width": 160, "height": 120, "loop": 3}},
        "webp", V("webp", 160, 120, 25), None, 3.0,
        checks=(webp(frames=75, duration=40, lossless=False, loop=3),
                smaller_than("webp_qscale90", 0.7)),
    ),
    Case(
        "webp_qscale90", "clip",
        {"f": "webp", "VIDEO": {"qscale": 90, "width": 160, "height": 120}},
        "webp", V("webp", 160, 120, 25), None, 3.0,
        checks=(webp(frames=75, duration=40, lossless=False),),
    ),
    Case(
        "flac_vn", "clip",
        {"f": "flac", "VIDEO": {"vn": 1}, "AUDIO": {"acodec": "flac", "ar": 48000,
                                                    "channels": 2}},
        "flac", None, A("flac", 48000, 2), 3.0,
    ),
    Case(
        "webm_vp9_opus", "clip",
        {"f": "webm", "VIDEO": {"vcodec": "vp9", "width": 160, "height": 120, "vb": "200k"},
         "AUDIO": {"acodec": "opus", "ar": 48000, "ab": "64k"}},
        "webm", V("vp9", 160, 120, 25), A("opus", 48000, 2), 3.0,
    ),
    Case(
        "mkv_h265_main_31", "clip",
        {"f": "mkv", "VIDEO": {"vcodec": "h265", "profile": "main", "level": "3.1",
                               "preset": "ultrafast"},
         "AUDIO": {"acodec": "mp3"}},
        "mkv", V("hevc", 320, 240, 25, ("Main",), 93), A("mp3", 44100, 2), 3.0,
    ),
    Case(
        "mov_h264_aac", "clip",
        {"f": "mov", "VIDEO": {"vcodec": "h264"}, "AUDIO": {"acodec": "aac", "ab": "96k"}},
        "mov", CLIP_V, AAC2, 3.0,
    ),
    Case(
        "wav_pcm", "clip",
        {"f": "wav", "AUDIO": {"ar": 16000, "channels": 1}},
        "wav", None, A("pcm", 16000, 1), 3.0,
    ),
    Case(
        "copy_real_bikes", BIKES,
        {"f": "mkv", "VIDEO": {"vcodec": "copy"}},
        "mkv", V("h264", 640, 272, 25), None, 10.0, checks=(packets_copied("v:0"),),
    ),
    Case(
        "audio_copy", "clip",
        {"f": "mp4", "VIDEO": {"width": 160, "height": 120}, "AUDIO": {"acodec": "copy"}},
        "mp4", V("h264", 160, 120, 25), AAC2, 3.0, checks=(packets_copied("a:0"),),
    ),
    Case(
        "real_bbb_shortside", BBB,
        {"f": "mp4", "VIDEO": {"vcodec": "h264", "shortSide": 240, "as": 1,
                               "preset": "ultrafast"},
         "AUDIO": {"acodec": "aac", "channels": 2, "ar": 44100, "ab": "128k"}},
        "mp4", V("h264", (426, 428), 240, 25), AAC2, 5.28,
        checks=(x264(subme="0", me="dia"),),
    ),
    Case(
        "real_carphone_baseline", CARPHONE,
        {"f": "mp4", "VIDEO": {"width": 352, "height": 288, "profile": "baseline",
                               "level": "3.0"}},
        "mp4", V("h264", 352, 288, 30000 / 1001, ("Baseline", "Constrained Baseline"), 30),
        None, 4.004,
    ),
    Case(
        "portrait_adapt", "portrait",
        {"f": "mp4", "VIDEO": {"width": 320, "height": 240, "orientationAdapt": 1}},
        "mp4", V("h264", 240, 320, 25), AAC2, 2.0,
    ),
    Case(
        "portrait_no_adapt", "portrait",
        {"f": "mp4", "VIDEO": {"width": 320, "height": 240}},
        "mp4", V("h264", 320, 240, 25), AAC2, 2.0,
    ),
    Case(
        "rotate_90", "halves",
        {"f": "mp4", "VIDEO": {"rotate": "90"}},
        "mp4", V("h264", 240, 320, 25), AAC2, 2.0, checks=(upright("top"),),
    ),
    # ffprobe rotation 90: displayed turned 90° counter-clockwise: the left half on the bottom.
    Case(
        "phone_tag_autorotate", "phone_tag",
        {"f": "mp4"},
        "mp4", V("h264", 240, 320, 25), AAC2, 2.0, checks=(upright("bottom"),),
    ),
    # ffprobe rotation -90: displayed turned 90° clockwise: the left half on top.
    Case(
        "phone_cw_shortside", "phone_cw",
        {"f": "mp4", "autorotate": 1, "VIDEO": {"shortSide": 120, "as": 1}},
        "mp4", V("h264", 120, 160, 25), AAC2, 2.0, checks=(upright("top"),),
    ),
    Case(
        "phone_cw_autorotate0", "phone_cw",
        {"f": "mp4", "autorotate": 0},
        "mp4", V("h264", 320, 240, 25, rotation=-90), AAC2, 2.0, checks=(upright("left"),),
    ),
    Case(
        "vn_mp4", "clip",
        {"f": "mp4", "VIDEO": {"vn": 1}, "AUDIO": {"ab": "64k"}},
        "mp4", None, AAC2, 3.0,
    ),
    Case(
        "an_mp4", "clip",
        {"f": "mp4", "AUDIO": {"an": 1}},
        "mp4", CLIP_V, None, 3.0,
    ),
    Case(
        "gop_10", "clip",
        {"f": "mp4", "VIDEO": {"gop": 10, "preset": "ultrafast"}},
        "mp4", CLIP_V, AAC2, 3.0, checks=(gop_at_most(10), x264(keyint="10")),
    ),
    Case(
        "h264_main_40", "clip",
        {"f": "mp4", "VIDEO": {"profile": "main", "level": "4.0"}},
        "mp4", V("h264", 320, 240, 25, ("Main",), 40), AAC2, 3.0,
    ),
    Case(
        "crf_with_vb_cap", "clip",
        {"f": "mp4", "VIDEO": {"crf": 30, "vb": "200k"}},
        "mp4", CLIP_V, AAC2, 3.0, checks=(x264(rc="crf", crf="30.0", vbv_maxrate="200"),),
    ),
    Case(
        "qpmax", "clip",
        {"f": "mp4", "VIDEO": {"qpmax": 30, "vb": "100k"}},
        "mp4", CLIP_V, AAC2, 3.0, checks=(x264(qpmax="30"),),
    ),
    Case(
        "twopass", "clip",
        {"f": "mp4", "VIDEO": {"twopass": 1, "vb": "300k"}},
        "mp4", CLIP_V, AAC2, 3.0, checks=(x264(rc="2pass"), two_commands),
    ),
    Case(
        "codec_params", "clip",
        {"f": "mp4", "VIDEO": {"codecParams": "ref=2:bframes=1:subme=3:trellis=0"}},
        "mp4", CLIP_V, AAC2, 3.0,
        checks=(x264(ref="2", bframes="1", subme="3", trellis="0"),),
    ),
    Case(
        "deinterlace", "interlaced",
        {"f": "mp4", "VIDEO": {"deinterlace": "1", "vr": 25}},
        "mp4", V("h264", 320, 240, 25), None, 2.0, checks=(progressive,),
    ),
    Case(
        "denoise", "noisy",
        {"f": "mp4", "VIDEO": {"denoise": "1", "crf": 18}},
        "mp4", V("h264", 320, 240, 25), None, 2.0,
        checks=(denoised_against("denoise_control"),),
    ),
    Case(
        "denoise_control", "noisy",
        {"f": "mp4", "VIDEO": {"crf": 18}},
        "mp4", V("h264", 320, 240, 25), None, 2.0,
    ),
    Case(
        "smart1_size_fails", "clip",
        {"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"width": 640, "height": 480}},
        fails=(2049, "Ban small to large"),
    ),
    Case(
        "smart1_rate_fails", "clip",
        {"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"vr": 50}},
        fails=(2049, "Ban small to large"),
    ),
    Case(
        "smart1_within_source", "clip",
        {"f": "mp4", "intelligentSwitch": 1, "VIDEO": {"width": 160, "height": 120, "vr": 15}},
        "mp4", V("h264", 160, 120, 15), AAC2, 3.0,
    ),
    Case(
        "smart2_clamps", "clip",
        {"f": "mp4", "intelligentSwitch": 2, "VIDEO": {"width": 640, "height": 480, "vr": 50}},
        "mp4", CLIP_V, AAC2, 3.0,
    ),
    Case(
        "clearmeta", "clip",
        {"f": "mp4", "clearmeta": 1},
        "mp4", CLIP_V, AAC2, 3.0, checks=(no_title,),
    ),
    Case(
        "clip_param", "clip",
        {"f": "mp4", "CLIP": {"ss": "1", "duration": "1.5"}},
        "mp4", CLIP_V, AAC2, 1.5,
    ),
    Case(
        "ext_ss_duration", "clip",
        {"f": "flv"}, "flv", CLIP_V, AAC2, 2.0, ext={"ss": "0.5", "duration": "2"},
    ),
    Case(
        "ext_ss_clock", "clip",
        {"f": "mp4"}, "mp4", CLIP_V, AAC2, 2.0, ext={"ss": "00:00:01.000"},
    ),
    Case(
        "vol_percent_50", "clip",
        {"f": "mp4"}, "mp4", CLIP_V, AAC2, 3.0, ext={"vol_percent": 50},
        checks=(volume_change(20 * math.log10(0.5)),),
    ),
    Case(
        "vol_db_minus10", "clip",
        {"f": "mp4"}, "mp4", CLIP_V, AAC2, 3.0, ext={"vol_dB": -10},
        checks=(volume_change(-10.0),),
    ),
    Case(
        "vol_db_wins", "clip",
        {"f": "mp4"}, "mp4", CLIP_V, AAC2, 3.0, ext={"vol_percent": 200, "vol_dB": -6},
        checks=(volume_change(-6.0),),
    ),
    Case(
        "pass_movflags", "clip",
        {"f": "mp4"}, "mp4", CLIP_V, AAC2, 3.0,
        ext={"passParams": {"movflags": "frag_keyframe+empty_moov"}},
        checks=(fragmented,),
    ),
    Case(
        "pass_queue_size", "clip",
        {"f": "mpegts"}, "mpegts", CLIP_V, AAC2, 3.0,
        ext={"passParams": {"max_muxing_queue_size": "1024"}},
    ),
    Case(
        "resampler_soxr", "clip",
        {"f": "mp4", "AUDIO": {"resampler": "soxr", "ar": 22050}},
        "mp4", CLIP_V, A("aac", 22050, 2), 3.0, checks=(command_mentions("soxr"),),
    ),
]

#: Bit-rate cases: 24 s sources; measured rates within 15 % of vb/ab (a cap: at most 115 %).
SLOW_CASES: list[Case] = [
    Case(
        "rate_500k", "long",
        {"f": "mp4", "VIDEO": {"vb": "500k", "preset": "ultrafast"}, "AUDIO": {"ab": "64k"}},
        "mp4", CLIP_V, AAC2, 24.0, vb=500_000, ab=64_000,
    ),
    Case(
        "rate_1_5m_twopass", "long",
        {"f": "mkv", "VIDEO": {"vb": "1.5m", "twopass": 1, "preset": "ultrafast"},
         "AUDIO": {"acodec": "mp3", "ab": "128k"}},
        "mkv", CLIP_V, A("mp3", 44100, 2), 24.0, vb=1_500_000, ab=128_000,
    ),
    Case(
        "rate_h265_plain_bits", "long",
        {"f": "mpegts", "VIDEO": {"vcodec": "h265", "vb": "400000", "preset": "ultrafast"},
         "AUDIO": {"acodec": "aac", "ab": "96k"}},
        "mpegts", V("hevc", 320, 240, 25), AAC2, 24.0, vb=400_000, ab=96_000,
    ),
    Case(
        "rate_crf_capped", "long",
        {"f": "mp4", "VIDEO": {"crf": 18, "vb": "300k", "preset": "ultrafast"},
         "AUDIO": {"an": 1}},
        "mp4", CLIP_V, None, 24.0, vb_cap=300_000,
    ),
    Case(
        "rate_mp3_192k", "long",
        {"f": "mp3", "AUDIO": {"ab": "192k"}},
        "mp3", None, A("mp3", 44100, 2), 24.0, ab=192_000,
    ),
    Case(
        "rate_smart2_vb_clamp", "long",
        {"f": "mp4", "intelligentSwitch": 2, "VIDEO": {"vb": "10m", "preset": "ultrafast"}},
        "mp4", CLIP_V, AAC2, 24.0, checks=(output_at_most_source_rate,),
    ),
]


@dataclass(frozen=True)
class Refused:
    name: str
    param: dict[str, Any]
    ext: dict[str, Any] | None
    code: int
    keys: tuple[str, ...]  # the answer's ErrMsg names one of these


REFUSED: list[Refused] = [
    Refused("copy_with_width", {"f": "mp4", "VIDEO": {"vcodec": "copy", "width": 640}},
            None, 1001, ("vcodec", "width")),
    Refused("vn_and_an", {"f": "mp4", "VIDEO": {"vn": 1}, "AUDIO": {"an": 1}},
            None, 1001, ("vn", "an")),
    Refused("h265_in_flv", {"f": "flv", "VIDEO": {"vcodec": "h265"}}, None, 1001, ("vcodec",)),
    Refused("h264_in_webm", {"f": "webm", "VIDEO": {"vcodec": "h264"}}, None, 1001, ("vcodec",)),
    Refused("aac_in_mp3", {"f": "mp3", "AUDIO": {"acodec": "aac"}}, None, 1001, ("acodec",)),
    Refused("ab_1_5m_too_high", {"f": "mp4", "AUDIO": {"ab": "1.5m"}}, None, 1001, ("ab",)),
    Refused("vb_20m_too_high", {"f": "mp4", "VIDEO": {"vb": "20m"}}, None, 1001, ("vb",)),
    Refused("pass_not_allowed", {"f": "mp4"},
            {"passParams": {"filter_complex": "nullsrc"}}, 1018, ("filter_complex",)),
    Refused("pass_not_object", {"f": "mp4"}, {"passParams": "movflags"}, 1018, ("passParams",)),
    Refused("vol_not_number", {"f": "mp4"}, {"vol_percent": "loud"}, 1018, ("vol_percent",)),
]
# fmt: on

# --- running -----------------------------------------------------------------------------------


@dataclass
class Run:
    case: Case
    site: Deployment
    key: str
    task_id: str = ""
    refused: dict[str, Any] = field(default_factory=dict)  # the answer when not accepted


def _output(run: Run) -> Path:
    return run.site.data_dir / "buckets" / BUCKET / run.key


def _submit(site: Deployment, sources: Sources, case: Case) -> Run:
    assert len(case.name) <= 29, case.name
    ext = EXTENSIONS.get(case.container, "mp4")
    run = Run(case, site, f"mx-out/{case.name}.{ext}")
    if case.source not in sources.remote:
        run.refused = {"skip": sources.samples_missing or f"no source {case.source}"}
        return run
    preset = f"mx_{case.name}"
    answer = site.client.preset(
        Preset=preset, PresetType="avtrans", Description=case.name, Param=case.param
    )
    if answer.get("ErrNum") != 0:
        run.refused = {"action": "Preset", **answer}
        return run
    body: dict[str, Any] = {
        "Preset": preset,
        "SrcInfo": [{"path": sources.remote[case.source], "type": "video", "index": 0}],
        "DstBucket": BUCKET,
        "DstObjectKey": run.key,
    }
    if case.ext is not None:
        body["ExtParam"] = json.dumps(case.ext)
    answer = site.client.create_task(**body)
    if answer.get("ErrNum") != 0:
        run.refused = {"action": "CreateTask", **answer}
        return run
    run.task_id = str(answer["TaskID"])
    return run


def _submit_all(site: Deployment, sources: Sources, cases: list[Case]) -> dict[str, Run]:
    return {case.name: _submit(site, sources, case) for case in cases}


@pytest.fixture(scope="module")
def runs(site: Deployment, sources: Sources) -> dict[str, Run]:
    """Every fast case, queued at once (the server runs them while tests check)."""
    return _submit_all(site, sources, CASES)


@pytest.fixture(scope="module")
def slow_runs(site: Deployment, long_source: Sources) -> dict[str, Run]:
    return _submit_all(site, long_source, SLOW_CASES)


def _finished(run: Run) -> dict[str, Any]:
    if "skip" in run.refused:
        pytest.skip(str(run.refused["skip"]))
    assert run.task_id, f"{run.case.name} was refused: {run.refused}"
    deadline = time.monotonic() + TASK_TIMEOUT
    while True:
        info = dict(run.site.client.get_task_by_task_id(TaskID=run.task_id)["TaskInfo"])
        if info["TaskStatus"] in ("succ", "fail"):
            return info
        assert time.monotonic() < deadline, f"task still {info['TaskStatus']}: {info}"
        time.sleep(0.2)


def _wait_output(run: Run) -> Path:
    """The output of another case (checks that compare two outputs)."""
    info = _finished(run)
    assert info["TaskStatus"] == "succ", info
    return _output(run)


# --- the checks every case gets -----------------------------------------------------------------


def _check_container(f: str, path: Path, media: Media) -> None:
    name = media.format_name
    if f in ("mp4", "mov"):
        assert name == "mov,mp4,m4a,3gp,3g2,mj2", name
        brand = media.tags.get("major_brand", "")
        assert (brand == "qt  ") == (f == "mov"), f"major_brand {brand!r} for f={f}"
    elif f in ("mkv", "webm"):
        assert name == "matroska,webm", name
        assert avcheck.container_doc_type(path) == ("webm" if f == "webm" else "matroska")
    elif f == "webp":
        assert path.read_bytes()[8:12] == b"WEBP"
    else:
        expected = {"adts": "aac"}.get(f, f)
        assert name == expected, f"format {name!r}, expected {expected!r}"


def _one_of(value: int, expected: int | tuple[int, ...]) -> bool:
    return value in expected if isinstance(expected, tuple) else value == expected


def _check_video(case: Case, media: Media, path: Path) -> None:
    expected = case.video
    if expected is None:
        assert media.video is None, f"unexpected video stream {media.video}"
        return
    if case.container == "webp":  # ffprobe 5.1 cannot decode animated WebP: read the file
        info = avcheck.webp_info(path)
        assert _one_of(info.width, expected.width), info
        assert _one_of(info.height, expected.height), info
        return
    video = media.video
    assert video is not None, "no video stream"
    got = (video["codec_name"], video["width"], video["height"])
    assert video["codec_name"] == expected.codec, got
    assert _one_of(int(video["width"]), expected.width), got
    assert _one_of(int(video["height"]), expected.height), got
    if expected.profile:
        assert video.get("profile") in expected.profile, video.get("profile")
    if expected.level is not None:
        assert int(video.get("level", -1)) == expected.level, video.get("level")
    if case.container in ("gif", "webp"):
        return  # frame timing of images: the case's own gif()/webp() check
    fps = media.fps()
    assert abs(fps - expected.fps) <= 0.01 * expected.fps, f"frame rate {fps}"
    items = avcheck.packets(path, "v:0")
    span = avcheck.stream_span(items)
    assert abs(span - case.duration) <= max(0.1, 1 / expected.fps), f"video lasts {span}"
    frames = round(case.duration * expected.fps)
    assert abs(len(items) - frames) <= 2, f"{len(items)} video frames, expected {frames}"
    assert media.rotation() == expected.rotation, f"rotation flag: {media.video}"


def _check_audio(case: Case, media: Media, path: Path) -> None:
    expected = case.audio
    if expected is None:
        assert media.audio is None, f"unexpected audio stream {media.audio}"
        return
    audio = media.audio
    assert audio is not None, "no audio stream"
    got = (audio["codec_name"], audio.get("sample_rate"), audio.get("channels"))
    if expected.codec == "pcm":
        assert str(audio["codec_name"]).startswith("pcm_"), got
    else:
        assert audio["codec_name"] == expected.codec, got
    assert int(audio["sample_rate"]) == expected.rate, got
    assert int(audio["channels"]) == expected.channels, got
    if expected.profile:
        assert audio.get("profile") == expected.profile, audio.get("profile")
    span = avcheck.stream_span(avcheck.packets(path, "a:0"))
    assert abs(span - case.duration) <= 0.1, f"audio lasts {span}"


def _check_outcome(outcome: Outcome) -> None:
    case, path, media = outcome.case, outcome.path, outcome.media
    _check_container(case.container, path, media)
    _check_video(case, media, path)
    _check_audio(case, media, path)
    if case.container not in ("adts", "gif", "webp"):  # ffprobe estimates or has none
        tolerance = max(0.1, 1 / case.video.fps) if case.video else 0.1
        assert abs(media.duration - case.duration) <= tolerance, f"lasts {media.duration}"
    for check in case.checks:
        check(outcome)
    if case.vb:
        rate = avcheck.stream_bitrate(path, "v:0")
        assert abs(rate - case.vb) <= 0.15 * case.vb, f"video {rate:.0f} bit/s"
    if case.vb_cap:
        rate = avcheck.stream_bitrate(path, "v:0")
        assert rate <= 1.15 * case.vb_cap, f"video {rate:.0f} bit/s over cap {case.vb_cap}"
    if case.ab:
        rate = avcheck.stream_bitrate(path, "a:0")
        assert abs(rate - case.ab) <= 0.15 * case.ab, f"audio {rate:.0f} bit/s"


def _verify(run: Run, sources: Sources, runs: dict[str, Run]) -> None:
    info = _finished(run)
    case = run.case
    if case.fails is not None:
        code, message = case.fails
        assert (info["TaskStatus"], info["ErrorCode"], info["ErrorMsg"]) == (
            "fail",
            str(code),
            message,
        ), info
        assert not _output(run).exists()
        return
    assert info["TaskStatus"] == "succ", info
    assert (info["ErrorCode"], info["ErrorMsg"], info["Progress"]) == ("0", "", 100), info
    path = _output(run)
    assert path.is_file(), f"no output object {run.key}"
    _check_outcome(Outcome(case, path, Media.of(path), info, sources, runs))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_avtrans_case(case: Case, runs: dict[str, Run], sources: Sources) -> None:
    _verify(runs[case.name], sources, runs)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=[c.name for c in SLOW_CASES])
def test_avtrans_bitrate(case: Case, slow_runs: dict[str, Run], long_source: Sources) -> None:
    _verify(slow_runs[case.name], long_source, slow_runs)


@pytest.mark.parametrize("refused", REFUSED, ids=[r.name for r in REFUSED])
def test_refused_combination(refused: Refused, site: Deployment, sources: Sources) -> None:
    """Refused before any task exists: at Preset (1001) or at CreateTask (1001/1018),
    with the offending key named."""
    preset = f"rx_{refused.name}"[:32]
    answer = site.client.preset(Preset=preset, PresetType="avtrans", Param=refused.param)
    if answer["ErrNum"] == 0:
        body: dict[str, Any] = {
            "Preset": preset,
            "SrcInfo": [{"path": sources.remote["clip"]}],
            "DstBucket": BUCKET,
            "DstObjectKey": f"rx-out/{refused.name}.out",
        }
        if refused.ext is not None:
            body["ExtParam"] = json.dumps(refused.ext)
        answer = site.client.create_task(**body)
    elif refused.ext is not None:
        pytest.fail(f"the preset itself was refused: {answer}")
    assert answer["ErrNum"] == refused.code, answer
    assert "TaskID" not in answer, answer
    assert any(key in answer["ErrMsg"] for key in refused.keys), answer


WANTED_VIDEO_KEYS = """vcodec vb vr width height as shortSide orientationAdapt rotate vn gop
    preset profile level crf qpmax twopass lossless deinterlace denoise codecParams
    intervalframes loop finaldelay qscale compressionlevel"""
WANTED_AUDIO_KEYS = "acodec ab ar channels an profile resampler"
WANTED_TOP_KEYS = "intelligentSwitch clearmeta autorotate CLIP"
WANTED_EXT_KEYS = "ss duration vol_percent vol_dB passParams"


def test_matrix_covers_every_key() -> None:
    """The table exercises every key of the acceptance list (and at least 30 combinations)."""
    used: set[str] = set()
    formats: set[str] = set()
    vcodecs: set[str] = set()
    acodecs: set[str] = set()
    for case in [*CASES, *SLOW_CASES]:
        param = case.param
        used.update(f"top.{k}" for k in param)
        formats.add(param["f"])
        for section in ("VIDEO", "video", "AUDIO", "audio"):
            for key, value in param.get(section, {}).items():
                used.add(f"{section.upper()}.{key}")
                if key == "vcodec":
                    vcodecs.add(value)
                if key == "acodec":
                    acodecs.add(value)
        used.update(f"ext.{k}" for k in case.ext or {})
    wanted = {f"VIDEO.{k}" for k in WANTED_VIDEO_KEYS.split()}
    wanted |= {f"AUDIO.{k}" for k in WANTED_AUDIO_KEYS.split()}
    wanted |= {f"top.{k}" for k in WANTED_TOP_KEYS.split()}
    wanted |= {f"ext.{k}" for k in WANTED_EXT_KEYS.split()}
    assert wanted <= used, sorted(wanted - used)
    assert {"mp4", "flv", "mpegts", "mp3", "adts", "gif", "webp", "flac", "webm", "mkv",
            "mov", "wav"} <= formats  # fmt: skip
    assert {"h264", "h265", "vp9", "copy"} <= vcodecs
    assert {"aac", "mp3", "flac", "opus", "copy"} <= acodecs
    assert len(CASES) + len(SLOW_CASES) >= 30
    assert {c.source for c in CASES} & SAMPLES  # at least one real recording
