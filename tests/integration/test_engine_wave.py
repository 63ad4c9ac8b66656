"""The waveform engine with real ffmpeg (engine/wave.py, probe.py, ffmpeg.py).

Every waveform is checked against an independent computation: ffmpeg decodes the first audio
stream to float32 (``-f f32le -acodec pcm_f32le``), NumPy takes the channel mean, splits the
*actual* samples into the spec's windows ``[floor(i·N/P), floor((i+1)·N/P))`` and takes the
peak |value| rounded to 4 decimals.

Tolerances, and why:

* ``TOL = 1e-4`` on each value. The engine reads 16-bit PCM: a sample is within 0.5/32768
  (1.5e-5) of the float mean, so a window's peak is too; rounding both to 4 decimals can then
  differ by one step (1e-4) and never more.
* Window edges are exact (the engine keeps one min/max per sample up to 2**20 samples, then
  cuts windows from the real sample count) — except for the 95-second file, where it keeps
  blocks of 4 samples and a window edge may move to its block's start: there a value must lie
  between the reference peak of the window shrunk by ``BLOCK`` samples on both sides and that
  of the window grown by ``BLOCK``.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from openkvs.engine import ffmpeg, wave
from openkvs.engine.probe import audio_info, probe
from openkvs.engine.wave import WaveSpec, extract_wave
from openkvs.errors import TaskError

SR = 44100
TOL = 1e-4 + 1e-9
BLOCK = 4
STEREO = (
    "aevalsrc=exprs='0.8*sin(2*PI*440*t)*abs(sin(0.7*t))"
    "|0.45*sin(2*PI*660*t)*(0.5+0.5*cos(0.3*t))':s=44100:d={d}"
)
THREE = "aevalsrc=exprs='0.9*sin(2*PI*220*t)|0.3*sin(2*PI*330*t)|-0.6*sin(0.9*t)':s=44100:d=6"


def ffmpeg_make(out: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *args, "-y", str(out)], check=True, timeout=60
    )
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("wave-media")
    short = ["-f", "lavfi", "-i", STEREO.format(d=12)]
    video = ["-f", "lavfi", "-i", "testsrc=d=6:s=160x120:r=25"]
    files = {
        "m4a": ffmpeg_make(d / "a.m4a", *short, "-c:a", "aac", "-b:a", "128k"),
        "mp3": ffmpeg_make(d / "a.mp3", *short, "-c:a", "libmp3lame", "-b:a", "128k"),
        "ogg": ffmpeg_make(d / "a.ogg", *short, "-c:a", "libvorbis", "-q:a", "5"),
        # VBR without a Xing header: ffprobe guesses the duration from the first frame.
        "vbr_mp3": ffmpeg_make(
            d / "vbr.mp3", *short, "-c:a", "libmp3lame", "-q:a", "4", "-write_xing", "0"
        ),
        "mp4": ffmpeg_make(
            d / "av.mp4",
            *video,
            "-f",
            "lavfi",
            "-i",
            STEREO.format(d=6),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
        ),
        "video_only": ffmpeg_make(d / "v.mp4", *video, "-c:v", "libx264", "-preset", "ultrafast"),
        "three_wav": ffmpeg_make(d / "three.wav", "-f", "lavfi", "-i", THREE),
        "mono_flac": ffmpeg_make(
            d / "mono.flac", "-f", "lavfi", "-i", "sine=f=300:d=5", "-c:a", "flac"
        ),
        "tiny_wav": ffmpeg_make(d / "tiny.wav", "-f", "lavfi", "-i", STEREO.format(d=0.01)),
        "long_mp3": ffmpeg_make(
            d / "long.mp3", "-f", "lavfi", "-i", STEREO.format(d=95), "-b:a", "96k"
        ),
    }
    files["random"] = d / "random.dat"
    files["random"].write_bytes(random.Random(7).randbytes(65536))
    return files


def reference(path: Path) -> np.ndarray:
    """The channel mean of the first audio stream as float32, decoded independently."""
    channels = audio_info(probe(str(path))).channels
    raw = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, channels).mean(axis=1)


def peak(x: np.ndarray) -> float:
    return float(np.abs(x).max()) if len(x) else 0.0


def assert_points(doc: dict[str, Any], mono: np.ndarray, points: int, slack: int = 0) -> None:
    """``doc`` is spec §7.3 and matches the reference within TOL (and ``slack`` samples)."""
    assert set(doc) == {"version", "points", "duration", "sample_rate", "channels", "data"}
    assert doc["version"] == 1
    data = doc["data"]
    assert len(data) == doc["points"] == points
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in data)
    assert all(round(v, 4) == v for v in data)
    n = len(mono)
    edges = (np.arange(points + 1, dtype=np.int64) * n) // points
    for i, value in enumerate(data):
        a, b = int(edges[i]), int(edges[i + 1])
        if i == points - 1:
            b = n
        low = round(peak(mono[a + slack : max(a + slack, b - slack)]), 4)
        high = round(peak(mono[max(0, a - slack) : b + slack]), 4)
        assert low - TOL <= value <= high + TOL, (i, value, low, high)


@pytest.mark.parametrize(
    ("name", "points"),
    [("ogg", 400), ("m4a", 400), ("mp3", 400), ("vbr_mp3", 400), ("mp4", 300)],
)
def test_points_match_the_reference(media: dict[str, Path], name: str, points: int) -> None:
    doc = extract_wave(str(media[name]), WaveSpec(points=points))
    mono = reference(media[name])
    assert doc["sample_rate"] == SR and doc["channels"] == 2
    assert doc["duration"] == pytest.approx(len(mono) / SR, abs=0.5 / SR)
    assert_points(doc, mono, points)


def test_the_mean_of_three_channels(media: dict[str, Path]) -> None:
    doc = extract_wave(str(media["three_wav"]), WaveSpec(points=300))
    assert doc["channels"] == 3
    assert_points(doc, reference(media["three_wav"]), 300)


def test_a_mono_source(media: dict[str, Path]) -> None:
    doc = extract_wave(str(media["mono_flac"]), WaveSpec(points=4095))
    assert doc["channels"] == 1
    assert_points(doc, reference(media["mono_flac"]), 4095)


def test_the_most_points_gives_exactly_that_many_values(media: dict[str, Path]) -> None:
    doc = extract_wave(str(media["m4a"]), WaveSpec(points=4095))
    assert len(doc["data"]) == 4095
    assert all(0.0 <= v <= 1.0 for v in doc["data"])


def test_fewer_samples_than_points(media: dict[str, Path]) -> None:
    mono = reference(media["tiny_wav"])
    doc = extract_wave(str(media["tiny_wav"]), WaveSpec(points=1000))
    assert len(mono) == 441
    assert doc["points"] == len(doc["data"]) == 441
    assert_points(doc, mono, 441)


def test_ss_and_duration_are_honoured(media: dict[str, Path]) -> None:
    mono = reference(media["ogg"])
    doc = extract_wave(str(media["ogg"]), WaveSpec(points=80, ss=2.5, duration=4.0))
    assert doc["duration"] == pytest.approx(4.0, abs=1 / SR)
    assert_points(doc, mono[round(2.5 * SR) : round(6.5 * SR)], 80)

    doc = extract_wave(str(media["ogg"]), WaveSpec(points=50, ss=9.0))
    assert doc["duration"] == pytest.approx(3.0, abs=1 / SR)
    assert_points(doc, mono[9 * SR :], 50)


def test_ss_past_the_end_is_refused(media: dict[str, Path]) -> None:
    with pytest.raises(TaskError) as err:
        extract_wave(str(media["ogg"]), WaveSpec(points=50, ss=30.0))
    assert err.value.code == 2003


def test_peaks_layout(media: dict[str, Path]) -> None:
    mono = reference(media["ogg"]) * 32768
    doc = extract_wave(str(media["ogg"]), WaveSpec(points=500, layout="peaks"))
    assert set(doc) == {
        "version",
        "channels",
        "sample_rate",
        "samples_per_pixel",
        "bits",
        "length",
        "data",
    }
    assert (doc["version"], doc["channels"], doc["bits"], doc["sample_rate"]) == (2, 1, 16, SR)
    spp, length = doc["samples_per_pixel"], doc["length"]
    assert spp == -(-len(mono) // 500) and length == -(-len(mono) // spp) <= 500
    data = doc["data"]
    assert len(data) == 2 * length and all(type(v) is int for v in data)
    assert all(-32768 <= v <= 32767 for v in data)
    for i in range(length):
        pixel = mono[i * spp : (i + 1) * spp]
        lo, hi = data[2 * i], data[2 * i + 1]
        assert lo <= hi
        assert abs(lo - float(pixel.min())) <= 1.0 and abs(hi - float(pixel.max())) <= 1.0


def spawned(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Record every child the engine starts."""
    children: list[subprocess.Popen[bytes]] = []
    real = ffmpeg._popen

    def spy(args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        children.append(real(args, **kwargs))
        return children[-1]

    monkeypatch.setattr(ffmpeg, "_popen", spy)
    return children


def test_parallel_ranges_agree_with_one_decoder(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = str(media["long_mp3"])
    sequential = extract_wave(source, WaveSpec(points=300), parallel=1)
    children = spawned(monkeypatch)
    parallel = extract_wave(source, WaveSpec(points=300), parallel=2)
    commands = decoders(children)
    assert len(commands) == 2 and "-ss" not in commands[0] and "-ss" in commands[1]
    assert parallel == sequential
    assert_points(parallel, reference(media["long_mp3"]), 300, BLOCK)
    peaks = extract_wave(source, WaveSpec(points=300, layout="peaks"), parallel=2)
    assert peaks == extract_wave(source, WaveSpec(points=300, layout="peaks"))


def decoders(children: list[subprocess.Popen[bytes]]) -> list[list[str]]:
    """The command lines of the ffmpeg (not ffprobe) children."""
    commands = [[str(a) for a in cast(list[str], c.args)] for c in children]
    return [c for c in commands if c[0] == ffmpeg.FFMPEG]


def assert_reaped(children: list[subprocess.Popen[bytes]]) -> None:
    assert children
    for child in children:
        assert child.returncode is not None
        assert not os.path.exists(f"/proc/{child.pid}")


def test_cancel_kills_every_decoder(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    children = spawned(monkeypatch)
    cancel = threading.Event()
    real_feed: Callable[..., None] = wave.BlockPeaks.feed

    def feed_then_cancel(self: wave.BlockPeaks, samples: np.ndarray, at: int) -> None:
        real_feed(self, samples, at)
        cancel.set()  # mid-stream: the decoders have more to write

    monkeypatch.setattr(wave.BlockPeaks, "feed", feed_then_cancel)
    with pytest.raises(TaskError) as err:
        extract_wave(str(media["long_mp3"]), WaveSpec(points=300), parallel=2, cancel=cancel)
    assert err.value.code == 2005
    assert len(decoders(children)) == 2
    assert_reaped(children)


def test_cancelled_before_start(media: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    children = spawned(monkeypatch)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TaskError) as err:
        extract_wave(str(media["ogg"]), WaveSpec(points=10), cancel=cancel)
    assert err.value.code == 2005 and children == []


@pytest.mark.parametrize(
    ("name", "code"), [("video_only", 2058), ("random", 3150), ("missing", 2041)]
)
def test_failures(media: dict[str, Path], name: str, code: int) -> None:
    source = str(media.get(name, media["ogg"].with_name("missing.mp3")))
    with pytest.raises(TaskError) as err:
        extract_wave(source, WaveSpec(points=10))
    assert err.value.code == code


def test_bad_points_are_refused(media: dict[str, Path]) -> None:
    for points in (0, 4096):
        with pytest.raises(TaskError) as err:
            extract_wave(str(media["ogg"]), WaveSpec(points=points))
        assert err.value.code == 2003


def test_a_failing_decoder_is_mapped_and_reaped(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    children = spawned(monkeypatch)
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(media["random"]), "-f", "s16le", "-"]
    with pytest.raises(TaskError) as err:
        ffmpeg.stream([command], lambda i, data: None)
    assert err.value.code == 3150
    assert_reaped(children)


SLOW = [
    "ffmpeg",
    "-nostdin",
    "-v",
    "error",
    "-re",
    "-f",
    "lavfi",
    "-i",
    "sine=d=30",
    "-f",
    "null",
    "-",
]


def test_run_has_a_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    children = spawned(monkeypatch)
    started = time.monotonic()
    with pytest.raises(TaskError) as err:
        ffmpeg.run(SLOW, timeout=0.3)
    assert err.value.code == 2038 and time.monotonic() - started < 3
    assert_reaped(children)


def test_run_and_stream_can_be_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    children = spawned(monkeypatch)
    for call in (
        lambda cancel: ffmpeg.run(SLOW, timeout=30, cancel=cancel),
        lambda cancel: ffmpeg.stream([SLOW, SLOW], lambda i, data: None, cancel=cancel),
    ):
        cancel = threading.Event()
        timer = threading.Timer(0.2, cancel.set)
        timer.start()
        started = time.monotonic()
        with pytest.raises(TaskError) as err:
            call(cancel)
        timer.join()
        assert err.value.code == 2005 and time.monotonic() - started < 3
    assert_reaped(children)


def test_a_failing_consumer_stops_and_reaps_the_decoders(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    children = spawned(monkeypatch)
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(media["ogg"]), "-f", "s16le", "-"]

    def consume(index: int, data: memoryview) -> None:
        samples = np.frombuffer(data, dtype=np.int16)  # alive in the traceback
        raise ValueError(f"cannot use {len(samples)} samples")

    with pytest.raises(ValueError, match="cannot use"):
        ffmpeg.stream([command, command], consume, chunk_bytes=4096)
    assert_reaped(children)
