"""The commands ``engine.transcode`` plans, run by the real ffmpeg on 2-second clips and
checked with ffprobe: every codec of the container table, the two passes, the GIF palette,
rotation, volume, the clip window, pass-through options."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.support.media import make_video, probe

from openkvs.engine.capabilities import detect
from openkvs.engine.formats import BASELINE
from openkvs.engine.sandbox import source_input
from openkvs.engine.transcode import TranscodePlan, facts_from_probe, plan_transcode
from openkvs.presets.avtrans import AvtransOptions, parse, task_options
from openkvs.presets.codec import load

SECONDS = 2.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 320x240 25 fps H.264 + stereo 44.1 kHz AAC clip, the same with a rotation flag
    (turn 90° clockwise to show it upright), and one with 48 kHz audio."""
    folder = tmp_path_factory.mktemp("clips")
    plain = make_video(folder, "plain", seconds=SECONDS)
    rotated = folder / "rotated.mp4"
    _ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=270", str(rotated))
    khz48 = folder / "khz48.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=f=500:sample_rate=48000:duration={SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        str(khz48),
    )  # fmt: skip
    return {"plain": plain, "rotated": rotated, "khz48": khz48}


def _ffmpeg(*args: str) -> str:
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", *args], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stderr.decode(errors="replace")


def run(
    source: Path, scratch: Path, param: dict[str, Any], ext: dict[str, Any] | None = None
) -> tuple[TranscodePlan, dict[str, Any]]:
    """Plan as the executor does (the sandboxed input), run every command, probe the output."""
    spec = parse(param)
    options = load(AvtransOptions, task_options(spec, ext or {}, [{"path": "/b/k", "index": 0}]))
    facts = facts_from_probe(probe(source))
    with source_input(str(source)) as opened:
        plan = plan_transcode(
            spec, options, facts, input_args=opened.args(), scratch=str(scratch), threads=2
        )
        for command in plan.commands:
            done = subprocess.run(command, capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return plan, probe(plan.output)


def streams(found: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in found["streams"] if s["codec_type"] == kind]


def fps(stream: dict[str, Any]) -> float:
    num, den = stream["avg_frame_rate"].split("/")
    return int(num) / int(den)


def test_the_baseline_holds_for_this_ffmpeg() -> None:
    found = detect()
    assert BASELINE.encoders <= found.encoders, BASELINE.encoders - found.encoders
    assert BASELINE.resamplers <= found.resamplers


def test_h264_aac_resized_resampled_louder(clips: dict[str, Path], tmp_path: Path) -> None:
    param = {
        "f": "mp4",
        "clearmeta": 1,
        "VIDEO": {"width": 160, "vb": "200k", "vr": 15, "gop": 15, "profile": "main"},
        "AUDIO": {"ab": "64k", "ar": 22050, "channels": 1},
    }
    plan, found = run(clips["plain"], tmp_path, param, {"vol_dB": -6})
    (video,) = streams(found, "video")
    (audio,) = streams(found, "audio")
    assert (video["codec_name"], video["profile"], video["width"], video["height"]) == (
        "h264", "Main", 160, 120,
    )  # fmt: skip
    assert fps(video) == pytest.approx(15, abs=0.1)
    assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", 22050, 1)
    assert float(found["format"]["duration"]) == pytest.approx(SECONDS, abs=0.15)
    assert plan.content_type == "video/mp4" and plan.duration == pytest.approx(SECONDS)
    assert _mean_volume(plan.output) == pytest.approx(_mean_volume(clips["plain"]) - 6, abs=1.0)


def _mean_volume(path: Path | str) -> float:
    text = _ffmpeg("-v", "info", "-i", str(path), "-vn", "-af", "volumedetect", "-f", "null", "-")
    found = re.search(r"mean_volume: (-?[\d.]+) dB", text)
    assert found, text[-500:]
    return float(found[1])


def test_rotated_source(clips: dict[str, Path], tmp_path: Path) -> None:
    assert facts_from_probe(probe(clips["rotated"])).rotation == 90
    _, upright = run(clips["rotated"], tmp_path, {"f": "mp4", "VIDEO": {"height": 160}})
    (video,) = streams(upright, "video")
    assert (video["width"], video["height"]) == (120, 160)
    assert facts_from_probe(upright).rotation == 0
    _, kept = run(clips["rotated"], tmp_path, {"f": "mov", "autorotate": 0})
    (video,) = streams(kept, "video")
    assert (video["width"], video["height"]) == (320, 240)
    assert facts_from_probe(kept).rotation == 90


def test_h265_main10_with_flac_through_soxr(clips: dict[str, Path], tmp_path: Path) -> None:
    param = {
        "f": "mkv",
        "VIDEO": {"vcodec": "h265", "profile": "main10", "crf": 30, "vb": "300k", "level": "3",
                  "preset": "ultrafast", "rasl": 0, "codecParams": "bframes=2:aq-mode=1"},
        "AUDIO": {"acodec": "flac", "ar": 48000, "resampler": "soxr"},
    }  # fmt: skip
    _, found = run(clips["plain"], tmp_path, param)
    (video,) = streams(found, "video")
    (audio,) = streams(found, "audio")
    assert (video["codec_name"], video["pix_fmt"], video["profile"]) == (
        "hevc", "yuv420p10le", "Main 10",
    )  # fmt: skip
    assert (audio["codec_name"], int(audio["sample_rate"])) == ("flac", 48000)


def test_vp9_opus_two_passes(clips: dict[str, Path], tmp_path: Path) -> None:
    param = {"f": "webm", "VIDEO": {"vb": "200k", "twopass": 1, "preset": "ultrafast"}}
    plan, found = run(clips["plain"], tmp_path, param)
    assert len(plan.commands) == 2
    assert list(tmp_path.glob("passlog*.log"))
    assert [s["codec_name"] for s in found["streams"]] == ["vp9", "opus"]


def test_h264_two_passes_on_a_clip_window(clips: dict[str, Path], tmp_path: Path) -> None:
    param = {"f": "mp4", "CLIP": {"ss": 0.5}, "VIDEO": {"vb": "150k", "twopass": 1}}
    plan, found = run(clips["plain"], tmp_path, param, {"duration": "00:00:01"})
    assert len(plan.commands) == 2 and plan.duration == 1.0
    assert float(found["format"]["duration"]) == pytest.approx(1.0, abs=0.1)


def test_gif_palette_interval_and_loop(clips: dict[str, Path], tmp_path: Path) -> None:
    param = {
        "f": "gif",
        "VIDEO": {"width": 160, "vr": 10, "intervalframes": 2, "loop": 0, "finaldelay": 50},
    }
    _, found = run(clips["plain"], tmp_path, param)
    (video,) = streams(found, "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("gif", 160, 120)
    frames = _ffmpeg("-v", "info", "-i", str(tmp_path / "output.gif"), "-f", "null", "-")
    found_frames = re.findall(r"frame=\s*(\d+)", frames)
    assert found_frames and int(found_frames[-1]) == pytest.approx(10, abs=1)  # 2 s x 10 fps / 2


def test_animated_webp(clips: dict[str, Path], tmp_path: Path) -> None:
    param = {"f": "webp", "VIDEO": {"shortSide": 120, "qscale": 60, "compressionlevel": 2}}
    plan, _ = run(clips["plain"], tmp_path, param, {"duration": 1})
    data = Path(plan.output).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and b"ANIM" in data[:200]
    assert data.count(b"ANMF") == pytest.approx(25, abs=1)
    assert plan.content_type == "image/webp"


def test_audio_only_outputs(clips: dict[str, Path], tmp_path: Path) -> None:
    for f, codec in (("mp3", "mp3"), ("adts", "aac"), ("flac", "flac"), ("wav", "pcm_s16le")):
        plan, found = run(clips["plain"], tmp_path, {"f": f})
        assert [s["codec_name"] for s in found["streams"]] == [codec], f
        assert Path(plan.output).suffix == {"adts": ".aac"}.get(f, f".{f}")


def test_flv_mp3_from_48khz_and_mpegts_filters(clips: dict[str, Path], tmp_path: Path) -> None:
    _, flv = run(clips["khz48"], tmp_path, {"f": "flv", "AUDIO": {"acodec": "mp3"}})
    (audio,) = streams(flv, "audio")
    assert (audio["codec_name"], int(audio["sample_rate"])) == ("mp3", 44100)
    param = {
        "f": "mpegts",
        "VIDEO": {"rotate": 45, "deinterlace": "auto", "denoise": "strong", "fieldmatch": 0},
    }
    _, ts = run(clips["plain"], tmp_path, param, {"duration": 0.5})
    (video,) = streams(ts, "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 396, 396)


def test_lossless_copy_and_pass_params(clips: dict[str, Path], tmp_path: Path) -> None:
    _, lossless = run(clips["plain"], tmp_path, {"f": "mkv", "VIDEO": {"lossless": 1}})
    assert streams(lossless, "video")[0]["profile"] == "High 4:4:4 Predictive"
    ext = {"passParams": {"movflags": "frag_keyframe+empty_moov"}}
    param = {"f": "mp4", "VIDEO": {"vcodec": "copy"}, "AUDIO": {"acodec": "copy"}}
    plan, copied = run(clips["plain"], tmp_path, param, ext)
    assert [s["codec_name"] for s in copied["streams"]] == ["h264", "aac"]
    assert b"moof" in Path(plan.output).read_bytes()


def test_intelligent_switch_clamps(clips: dict[str, Path], tmp_path: Path) -> None:
    param = {"f": "mp4", "intelligentSwitch": 2, "VIDEO": {"width": 1280, "vr": 60}}
    _, found = run(clips["plain"], tmp_path, param)
    (video,) = streams(found, "video")
    assert (video["width"], video["height"]) == (320, 240)
    assert fps(video) == pytest.approx(25, abs=0.1)
