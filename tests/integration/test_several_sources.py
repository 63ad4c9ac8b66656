"""Several sources in one avtrans task, end to end (real ``openkvs serve``, the official
SDK, real ffmpeg): videos of different sizes and rates joined (one without sound), a
soundtrack replacing or mixed into the video's sound, subtitles burned in or muxed as a soft
track, and the refusals at CreateTask."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.conftest import BUCKET, Deployment

pytestmark = pytest.mark.slow

PRESET = "several_mp4"
PARAM = {
    "f": "mp4",
    "VIDEO": {"vcodec": "h264", "preset": "ultrafast", "crf": 18},
    "AUDIO": {"acodec": "aac", "ab": "128k", "ar": 44100, "ac": 1},
}
RATE = 44100
#: Decoded sound at or below this (full scale 1.0) is silence; the tones are at 1/8.
SILENT = 0.004
CUE = (0.6, 1.4)  # the subtitle's cue, seconds


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True, timeout=60)


def _video(
    path: Path, size: str, rate: int, seconds: float, tone: int | None, channels: int = 2
) -> Path:
    """testsrc2 with a sine tone of ``tone`` Hz (None: no sound)."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if tone:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration={seconds}"]
        args += ["-ac", str(channels), "-c:a", "aac", "-b:a", "128k"]
    _ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def _tone(path: Path, tone: int, seconds: float) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=44100:duration={seconds}",
            "-c:a", "aac", "-b:a", "128k", str(path))  # fmt: skip
    return path


def _pcm(path: Path) -> np.ndarray:
    """The output's sound as mono float samples at :data:`RATE`."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0", "-ac", "1",
         "-ar", str(RATE), "-f", "f32le", "-"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return np.frombuffer(done.stdout, dtype="<f4")


def _streams(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return list(json.loads(done.stdout)["streams"])


def _seconds(path: Path, kind: str) -> float:
    stream = next(s for s in _streams(path) if s["codec_type"] == kind)
    return float(stream["duration"])


def _silent_runs(samples: np.ndarray) -> list[tuple[int, int]]:
    """(first sample, length) of each run of silent samples."""
    quiet = np.concatenate(([False], np.abs(samples) <= SILENT, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(quiet))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _level(samples: np.ndarray, hz: float) -> float:
    """The amplitude of the ``hz`` component (a window of the spectrum around it)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) / len(samples)
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    return float(spectrum[np.abs(freqs - hz) < 15].max())


@pytest.fixture(scope="module")
def preset(kvs: Deployment) -> str:
    reply = kvs.client.preset(Preset=PRESET, PresetType="avtrans", Param=PARAM)
    assert reply["ErrNum"] in (0, 1201), reply
    return PRESET


@pytest.fixture(scope="module")
def sources(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("several")
    cue = f"1\n00:00:0{CUE[0]:.3f} --> 00:00:0{CUE[1]:.3f}\nOPENKVS SUBTITLE LINE\n".replace(
        ".", ","
    )
    (folder / "cue.srt").write_text(cue, encoding="utf-8")
    made = {
        "a": _video(folder / "a.mp4", "320x240", 25, 2, 440),
        "b": _video(folder / "b.mp4", "160x120", 30, 1.5, None),
        "c": _video(folder / "c.mp4", "240x320", 15, 1, 880, channels=1),
        "long_tone": _tone(folder / "tone.m4a", 1000, 3),
        "short_tone": _tone(folder / "short.m4a", 1000, 1),
        "cue": folder / "cue.srt",
    }
    return {name: kvs.upload(path, f"several/{name}{path.suffix}") for name, path in made.items()}


def _run(kvs: Deployment, preset: str, items: list[dict[str, Any]], key: str, **ext: Any) -> str:
    reply = kvs.client.create_task(
        Preset=preset,
        SrcInfo=items,
        DstBucket=BUCKET,
        DstObjectKey=key,
        ExtParam=json.dumps(ext),
    )
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=120)
    assert info["TaskStatus"] == "succ", info
    return str(info["Command"])


def test_three_clips_join_without_gaps(
    kvs: Deployment, preset: str, sources: dict[str, str], tmp_path: Path
) -> None:
    # Listed out of order: the index decides.
    items = [
        {"path": sources["c"], "index": 2},
        {"path": sources["a"], "index": 0, "type": "video"},
        {"path": sources["b"], "index": 1},
    ]
    command = _run(kvs, preset, items, "several/joined.mp4")
    assert "concat=n=3" in command and "anullsrc" in command
    assert "openkvs-source-" not in command  # sources shown by name, not by sandbox link
    out = kvs.download("several/joined.mp4", tmp_path / "joined.mp4")
    video = next(s for s in _streams(out) if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)  # the master's (index 0) size
    assert video["avg_frame_rate"] == "25/1"
    assert abs(_seconds(out, "video") - 4.5) <= 0.1
    assert abs(_seconds(out, "audio") - 4.5) <= 0.1
    samples = _pcm(out)
    runs = [r for r in _silent_runs(samples[:-1024]) if r[1] > 1024]
    # One silence only: clip b's generated 1.5 s, from its join at 2 s (±1 audio frame).
    assert len(runs) == 1, [(a / RATE, n / RATE) for a, n in runs]
    start, length = runs[0]
    assert abs(start / RATE - 2.0) <= 1024 / RATE + 0.01, start / RATE
    assert abs(length / RATE - 1.5) <= 1024 / RATE + 0.04, length / RATE
    # The tones around it are the clips' own: 440 Hz before, 880 Hz after.
    assert _level(samples[int(0.5 * RATE) : int(1.5 * RATE)], 440) > 0.02
    assert _level(samples[int(3.7 * RATE) : int(4.3 * RATE)], 880) > 0.02


def test_master_and_window_of_the_joined_media(
    kvs: Deployment, preset: str, sources: dict[str, str], tmp_path: Path
) -> None:
    items = [{"path": sources["a"], "index": 0}, {"path": sources["c"], "index": 1}]
    _run(kvs, preset, items, "several/window.mp4", masterSrcIndex=1, ss="1.5", duration="1")
    out = kvs.download("several/window.mp4", tmp_path / "window.mp4")
    video = next(s for s in _streams(out) if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (240, 320)  # clip c is the master
    assert video["avg_frame_rate"] == "15/1"
    assert abs(_seconds(out, "video") - 1.0) <= 0.1
    samples = _pcm(out)
    # 0.5 s of clip a's 440 Hz, then 0.5 s of clip c's 880 Hz.
    assert _level(samples[: int(0.45 * RATE)], 440) > 0.02
    assert _level(samples[int(0.55 * RATE) : int(0.95 * RATE)], 880) > 0.02


def test_a_soundtrack_replaces_the_sound(
    kvs: Deployment, preset: str, sources: dict[str, str], tmp_path: Path
) -> None:
    items = [{"path": sources["a"]}, {"path": sources["long_tone"], "type": "audio"}]
    _run(kvs, preset, items, "several/replaced.mp4")
    out = kvs.download("several/replaced.mp4", tmp_path / "replaced.mp4")
    assert abs(_seconds(out, "audio") - _seconds(out, "video")) <= 0.05
    assert abs(_seconds(out, "video") - 2.0) <= 0.1
    samples = _pcm(out)[int(0.2 * RATE) : int(1.8 * RATE)]
    assert _level(samples, 1000) > 0.03
    assert _level(samples, 440) < 0.002  # the video's own sound is gone


def test_a_mixed_soundtrack_keeps_both(
    kvs: Deployment, preset: str, sources: dict[str, str], tmp_path: Path
) -> None:
    items = [{"path": sources["a"]}, {"path": sources["short_tone"], "type": "audio"}]
    _run(kvs, preset, items, "several/mixed.mp4", audio_mix=1)
    out = kvs.download("several/mixed.mp4", tmp_path / "mixed.mp4")
    assert abs(_seconds(out, "audio") - 2.0) <= 0.1  # the 1 s soundtrack is padded
    samples = _pcm(out)
    head, tail = samples[int(0.2 * RATE) : int(0.8 * RATE)], samples[int(1.2 * RATE) :]
    assert _level(head, 1000) > 0.03 and _level(head, 440) > 0.03
    assert _level(tail, 440) > 0.03 and _level(tail, 1000) < 0.002


def test_a_soundtrack_mixed_into_joined_clips(
    kvs: Deployment, preset: str, sources: dict[str, str], tmp_path: Path
) -> None:
    items = [
        {"path": sources["a"], "index": 0},
        {"path": sources["b"], "index": 1},
        {"path": sources["short_tone"], "index": 2, "type": "audio"},
    ]
    _run(kvs, preset, items, "several/joined-mixed.mp4", audio_mix="1", ss=0.5)
    out = kvs.download("several/joined-mixed.mp4", tmp_path / "joined-mixed.mp4")
    assert abs(_seconds(out, "video") - 3.0) <= 0.1
    assert abs(_seconds(out, "audio") - 3.0) <= 0.1
    samples = _pcm(out)
    # From 0.5 s into both: the tone's last 0.5 s over clip a, then clip a alone, then
    # clip b's silence.
    head = samples[int(0.05 * RATE) : int(0.45 * RATE)]
    assert _level(head, 1000) > 0.03 and _level(head, 440) > 0.03
    middle = samples[int(0.6 * RATE) : int(1.4 * RATE)]
    assert _level(middle, 440) > 0.03 and _level(middle, 1000) < 0.002
    assert np.abs(samples[int(1.6 * RATE) : int(2.9 * RATE)]).max() <= SILENT


def _frames(path: Path) -> np.ndarray:
    """Every frame of the output as 8-bit grey pictures (frames × 240 × 320)."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return np.frombuffer(done.stdout, dtype=np.uint8).reshape(-1, 240, 320).astype(np.int16)


def test_burned_subtitles_change_only_the_cue_frames(
    kvs: Deployment, preset: str, sources: dict[str, str], tmp_path: Path
) -> None:
    _run(kvs, preset, [{"path": sources["a"]}], "several/plain.mp4")
    items = [{"path": sources["a"]}, {"path": sources["cue"], "type": "subtitle"}]
    command = _run(kvs, preset, items, "several/burned.mp4")
    assert "subtitles=filename=" in command
    plain = _frames(kvs.download("several/plain.mp4", tmp_path / "plain.mp4"))
    burned = _frames(kvs.download("several/burned.mp4", tmp_path / "burned.mp4"))
    assert plain.shape == burned.shape
    changed = (np.abs(plain - burned) > 64).sum(axis=(1, 2))  # pixels changed, per frame
    for number, count in enumerate(changed):
        t = number / 25
        if CUE[0] + 0.05 < t < CUE[1] - 0.05:
            assert count > 200, (t, count)
        elif t < CUE[0] - 0.05:
            assert count == 0, (t, count)
        elif t > CUE[1] + 0.05:
            assert count < 20, (t, count)  # at most the encoder's drift after the cue


def test_a_soft_track_in_mp4(
    kvs: Deployment, preset: str, sources: dict[str, str], tmp_path: Path
) -> None:
    items = [{"path": sources["a"]}, {"path": sources["cue"], "type": "subtitle"}]
    # The cue follows the cut picture: 0.2 s earlier.
    _run(kvs, preset, items, "several/soft.mp4", subtitle={"mode": "soft"}, ss="0.2")
    out = kvs.download("several/soft.mp4", tmp_path / "soft.mp4")
    kinds = {s["codec_type"]: s["codec_name"] for s in _streams(out)}
    assert kinds == {"video": "h264", "audio": "aac", "subtitle": "mov_text"}, kinds
    text = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(out), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert "OPENKVS SUBTITLE LINE" in text and "00:00:00,400 --> 00:00:01,200" in text


@pytest.mark.parametrize(
    ("items", "ext", "param", "errnum", "says"),
    [
        ([("a", 1, "video"), ("b", 2, "video")], {}, PARAM, 1016, "indexes must be 0 to 1"),
        ([("a", 0, "video"), ("a", 0, "video")], {}, PARAM, 1016, "each once"),
        (
            [("a", 0, "video"), ("b", 1, "video")],
            {},
            {"f": "mp4", "VIDEO": {"vcodec": "copy"}},
            1018,
            "vcodec=copy cannot join",
        ),
        (
            [("a", 0, "video"), ("cue", 1, "subtitle")],
            {"subtitle": "soft"},
            {"f": "flv"},
            1018,
            "f=flv cannot hold soft",
        ),
        ([("a", 0, "video")], {"subtitle": "soft"}, PARAM, 1018, "needs a SrcInfo item"),
        ([("a", 0, "video"), ("cue", 1, "subtitle")], {"subtitle": "top"}, PARAM, 1018, "burn"),
        ([("a", 0, "video"), ("a", 1, "bogus")], {}, PARAM, 1016, "type must be"),
        (
            [("a", 0, "video"), ("long_tone", 1, "audio")],
            {"loudnorm": {"I": -16}},
            PARAM,
            1015,
            "loudnorm",
        ),
        ([("a", 0, "video"), ("b", 1, "video")], {"masterSrcIndex": 2}, PARAM, 1018, "master"),
    ],
)
def test_refused_at_create_task(
    kvs: Deployment,
    sources: dict[str, str],
    items: list[tuple[str, int, str]],
    ext: dict[str, Any],
    param: dict[str, Any],
    errnum: int,
    says: str,
) -> None:
    name = "several_" + hashlib.md5(json.dumps(param, sort_keys=True).encode()).hexdigest()[:8]
    reply = kvs.client.preset(Preset=name, PresetType="avtrans", Param=param)
    assert reply["ErrNum"] in (0, 1201), reply
    reply = kvs.client.create_task(
        Preset=name,
        SrcInfo=[{"path": sources[n], "index": i, "type": t} for n, i, t in items],
        DstBucket=BUCKET,
        DstObjectKey="several/never.mp4",
        ExtParam=json.dumps(ext),
    )
    assert reply["ErrNum"] == errnum and says in str(reply["ErrMsg"]), reply
