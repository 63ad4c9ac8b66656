"""The waveform engine: peak amplitudes of a source's first audio stream (spec §7).

How it works. The source is probed; ffmpeg decodes the first audio stream, mixes it to mono as
the arithmetic *mean* of the channels (a ``pan`` filter with gains 1/n: ffmpeg's ``-ac 1`` is
0.707·(L+R) and can exceed full scale) and writes signed 16-bit PCM to a pipe. We read the pipe
into a preallocated buffer and reduce each piece to a running min/max per block
(``np.minimum/maximum.reduceat``), so memory does not grow with the length of the source.
Mixing in ffmpeg and piping s16 mono moves a quarter of the bytes of f32 stereo and, on a
20-minute mp3, costs 0.9 s CPU instead of 1.45 s for a NumPy channel mean.

Windows. N is the number of samples actually decoded in the covered range; window i covers
samples ``[floor(i·N/W), floor((i+1)·N/W))`` with W = min(points, N). N is known only at the
end (a probed duration is an estimate: mp3 counts encoder delay and padding, AAC in MP4 keeps
its padding, VBR mp3 without a header is a guess), so the stream is first reduced to min/max
per block in a fixed array (:class:`BlockPeaks`; one sample per block up to 2**20 samples,
then blocks of ``ceil(estimate / 2**20)``, e.g. 51 samples for 20 minutes) and the windows are
cut from the blocks: exact for short sources, window edges within one block otherwise.

Parallel decoding. With ``parallel`` > 1 and ≥ 60 s covered, the covered samples are split
into that many contiguous ranges, each decoded by its own ffmpeg (``-ss`` before ``-i``, ``-t``).
Each range but the first starts ``PREROLL`` samples early and drops them, so codec state (MDCT
overlap, the mp3 bit reservoir, AAC priming) is warm at the range start. This is exact only
where ffmpeg's input seeking lands on the exact sample. Measured on ffmpeg 5.1 (3-minute stereo
files, three seek points each, ranges compared sample by sample with one sequential decode):
identical for mp3 (CBR, VBR ``-q:a 2/4``, with and without a Xing header: the mp3 demuxer seeks
by parsing frames, not by the TOC), MP4/M4A/MOV with AAC or ALAC, raw ADTS AAC, Ogg Vorbis, Ogg
FLAC, FLAC, and WAV (PCM s16, s24, f32). Not identical: Matroska/WebM (millisecond timestamps:
ranges off by up to 400 samples), MPEG-TS (off by one sample), AC-3 (off by hundreds), Ogg Opus
and MP2 (a few LSBs). So parallel decoding is used only for local files whose (container,
codec) is in :data:`EXACT_SEEK`; everything else is decoded by one ffmpeg.
"""

from __future__ import annotations

import contextlib
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from openkvs.engine import ffmpeg, sandbox
from openkvs.engine.probe import AudioInfo, audio_info, probe
from openkvs.errors import TaskError

MAX_POINTS = 4095
FULL_SCALE = 32768  # s16 full scale: |sample| / FULL_SCALE is the amplitude in [0, 1]
PREROLL = 8192  # samples decoded and dropped before every parallel range but the first
MIN_PARALLEL_SECONDS = 60.0
RANGE_SLACK = 0.05  # seconds asked beyond a range's end (dropped) so it never ends short
BLOCK_SLOTS = 1 << 21  # min/max blocks kept: 8 MiB, exact for up to 2**20 samples (23 s)
BEFORE_END = 99.0  # the highest progress reported while decoding: 100 means "decoded"

#: (container as ffprobe names it, codecs) whose input seeking is sample-exact (see above).
EXACT_SEEK: dict[str, frozenset[str]] = {
    "mp3": frozenset({"mp3"}),
    "mov,mp4,m4a,3gp,3g2,mj2": frozenset({"aac", "alac"}),
    "aac": frozenset({"aac"}),
    "ogg": frozenset({"vorbis", "flac"}),
    "flac": frozenset({"flac"}),
    "wav": frozenset({"pcm_s16le", "pcm_s24le", "pcm_f32le"}),
}

Int64Array = npt.NDArray[np.int64]
Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True)
class WaveSpec:
    points: int  # 1..4095
    layout: Literal["points", "peaks"] = "points"
    ss: float | None = None  # start offset in seconds (ExtParam "ss")
    duration: float | None = None  # length in seconds (ExtParam "duration")


def window_starts(n: int, points: int) -> Int64Array:
    """First sample of each "points" window: ``floor(i·n/W)``, W = min(points, n)."""
    windows = min(points, n)
    return (np.arange(windows, dtype=np.int64) * n) // windows


def pixel_starts(n: int, points: int) -> tuple[int, Int64Array]:
    """(samples_per_pixel, first sample of each pixel) of the "peaks" layout."""
    spp = -(-n // points)
    return spp, np.arange(-(-n // spp), dtype=np.int64) * spp


class BlockPeaks:
    """Min/max of s16 samples per block of ``size`` samples, in a fixed amount of memory.

    Samples are fed with their position, in any order and from any number of ranges. ``size``
    is chosen so that ``expected`` samples fill half the slots (exact, size 1, for sources up
    to ``slots / 2`` samples); samples past the last slot merge neighbouring blocks pairwise.
    Windows are cut at the end, from the real sample count (:meth:`reduce`).
    """

    def __init__(self, expected: int, slots: int = BLOCK_SLOTS) -> None:
        self.size = max(1, -(-expected // (slots // 2)))
        self.mins = np.full(slots, np.iinfo(np.int16).max, dtype=np.int16)
        self.maxs = np.full(slots, np.iinfo(np.int16).min, dtype=np.int16)
        self.extent = 0  # one past the last sample position seen

    def feed(self, samples: Int16Array, at: int) -> None:
        end = at + len(samples)
        if end <= at:
            return
        while (end - 1) // self.size >= len(self.mins):
            self._merge()
        size, first, last = self.size, at // self.size, (end - 1) // self.size + 1
        if size == 1:
            mins, maxs = samples, samples
        else:
            idx = np.arange((first + 1) * size - at, len(samples), size)
            idx = np.concatenate(([0], idx))
            mins, maxs = np.minimum.reduceat(samples, idx), np.maximum.reduceat(samples, idx)
        np.minimum(self.mins[first:last], mins, out=self.mins[first:last])
        np.maximum(self.maxs[first:last], maxs, out=self.maxs[first:last])
        self.extent = max(self.extent, end)

    def _merge(self) -> None:
        half = len(self.mins) // 2
        self.mins[:half] = np.minimum(self.mins[0::2], self.mins[1::2])
        self.maxs[:half] = np.maximum(self.maxs[0::2], self.maxs[1::2])
        self.mins[half:], self.maxs[half:] = np.iinfo(np.int16).max, np.iinfo(np.int16).min
        self.size *= 2

    def reduce(self, starts: Int64Array) -> tuple[Int16Array, Int16Array]:
        """Min/max per window (window i: ``[starts[i], starts[i+1])``, the last to the end).

        A window edge inside a block goes to the block's start; a window without samples
        (a gap) is 0.
        """
        used = -(-self.extent // self.size)
        idx = starts // self.size
        mins = np.minimum.reduceat(self.mins[:used], idx)
        maxs = np.maximum.reduceat(self.maxs[:used], idx)
        empty = mins > maxs
        mins[empty], maxs[empty] = 0, 0
        return mins, maxs


@dataclass
class DecodeRange:
    """One ffmpeg's share of the samples: ``[first, end)`` (``end`` None: to the end)."""

    first: int
    end: int | None
    preroll: int  # samples decoded before ``first`` to warm the decoder, then dropped
    position: int = field(init=False)  # where the next sample delivered belongs

    def __post_init__(self) -> None:
        self.position = self.first - self.preroll

    def deliver(self, samples: Int16Array, peaks: BlockPeaks) -> int:
        """Feed the samples of this range (preroll and overrun dropped); how many were fed."""
        at, self.position = self.position, self.position + len(samples)
        lo = max(0, self.first - at)
        hi = len(samples) if self.end is None else max(lo, min(len(samples), self.end - at))
        peaks.feed(samples[lo:hi], at + lo)
        return hi - lo


def split_ranges(n: int, ranges: int, preroll: int = PREROLL) -> list[DecodeRange]:
    """``ranges`` contiguous ranges of (nearly) equal length covering ``n`` samples and more."""
    bounds = [round(j * n / ranges) for j in range(ranges)]
    ends: list[int | None] = [*bounds[1:], None]
    return [DecodeRange(b, e, min(preroll, b)) for b, e in zip(bounds, ends, strict=True)]


def peak_values(mins: Int16Array, maxs: Int16Array) -> list[float]:
    """Peak |amplitude| per window, in [0, 1], rounded to 4 decimals."""
    peak = np.maximum(-mins.astype(np.int32), maxs.astype(np.int32)) / FULL_SCALE
    return [float(v) for v in np.round(np.clip(peak, 0.0, 1.0), 4)]


def interleave(mins: Int16Array, maxs: Int16Array) -> list[int]:
    """``[min0, max0, min1, max1, ...]`` as audiowaveform's JSON wants them."""
    out = np.empty(2 * len(mins), dtype=np.int64)
    out[0::2], out[1::2] = mins, maxs
    return [int(v) for v in out]


def mono_mean_filter(channels: int) -> str:
    """A ``pan`` filter whose one output channel is the mean of ``channels`` inputs."""
    gain = f"{1 / channels:.10g}"
    return "pan=mono|c0=" + "+".join(f"{gain}*c{i}" for i in range(channels))


def parallel_safe(info: AudioInfo, source: str) -> bool:
    """Whether ranges of ``source`` can be decoded separately and agree with one decode."""
    local = "://" not in source and not source.startswith(("file:", "pipe:"))
    return local and info.codec_name in EXACT_SEEK.get(info.format_name, frozenset())


def _estimated_samples(probe_json: dict[str, Any], info: AudioInfo) -> int:
    """Samples the decoder will produce for the whole stream (0: unknown)."""
    seconds = info.duration
    if info.format_name == "mp3":
        # The mp3 demuxer's duration counts the encoder delay it later skips (start_time).
        stream: dict[str, Any] = next(
            (s for s in probe_json.get("streams", []) if s.get("index") == info.stream_index), {}
        )
        with contextlib.suppress(TypeError, ValueError):
            seconds -= max(0.0, float(stream.get("start_time", 0)))
    return max(0, round(seconds * info.sample_rate))


def _command(
    opened: sandbox.SourceInput, info: AudioInfo, start: int, length: int | None
) -> list[str]:
    """ffmpeg decoding ``length`` samples (None: to the end) from sample ``start``, as s16."""
    sr = info.sample_rate
    args = [ffmpeg.FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-v", "error"]
    if start > 0:
        args += ["-ss", f"{start / sr:.6f}"]
    if length is not None:
        args += ["-t", f"{length / sr:.6f}"]
    # One decoder thread: audio decoders gain nothing from more (FLAC's frame threads cost 10 %
    # CPU), and parallel ranges already use the cores.
    args += ["-threads", "1", *opened.args(), "-map", f"0:{info.stream_index}"]
    if info.channels > 1:
        args += ["-af", mono_mean_filter(info.channels)]
    # -flush_packets 0: one write per 32 KiB instead of one per audio frame (2 KiB), which
    # made the pipe cost a quarter of the decode time.
    return [*args, "-c:a", "pcm_s16le", "-f", "s16le", "-flush_packets", "0", "pipe:1"]


def extract_wave(
    source: str,
    spec: WaveSpec,
    *,
    parallel: int = 1,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    progress: Callable[[float], None] | None = None,
    on_command: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The waveform document of ``source`` (a local path or a URL ffmpeg reads).

    ``progress(percent)`` is called, in the decoding thread, each time the share of the
    expected samples decoded so far (summed over the parallel ranges) passes another whole
    percent, at most 99 while decoding, then once with 100 when decoding has ended. When
    the number of samples is unknown (no duration), only the 100 is reported.
    ``on_command(text)`` is given the decoders' command lines before they start
    (shell-quoted, joined with `` && `` although they run at once; with ``source`` where
    they open the sandbox's link to it).

    Layout "points" is spec §7.3; layout "peaks" is BBC audiowaveform's JSON (version 2, one
    channel, 16 bits), which peaks.js and waveform-data.js draw as is. Errors: no audio stream
    (or no samples) → 2058; nothing left after ``ss`` or bad ``points`` → 2003; a source
    that is not a single media file (``engine.sandbox``) → 2037;
    ``cancel`` set → 2005; past ``timeout`` seconds of decoding → 2038; ffmpeg failing →
    :func:`ffmpeg.error_from_stderr`.
    """
    if not 1 <= spec.points <= MAX_POINTS:
        raise TaskError(2003, f"points must be 1..{MAX_POINTS}, not {spec.points}")
    if cancel is not None and cancel.is_set():
        raise TaskError(2005, "cancelled before decoding")
    probe_json = probe(source, cancel=cancel)
    info = audio_info(probe_json)
    sr = info.sample_rate
    begin = round((spec.ss or 0.0) * sr)
    total = _estimated_samples(probe_json, info)
    wanted = round(spec.duration * sr) if spec.duration else None
    if total and total <= begin:
        raise TaskError(2003, f"nothing to decode after ss={spec.ss} s")
    known = [x for x in (total - begin if total else None, wanted) if x]
    expected = min(known) if known else 0  # 0: unknown, decode to the end
    ranges = 1
    if parallel > 1 and expected >= MIN_PARALLEL_SECONDS * sr and parallel_safe(info, source):
        ranges = parallel
    plan = split_ranges(expected, ranges)
    plan[-1].end = wanted
    slack = round(RANGE_SLACK * sr)
    peaks = BlockPeaks(expected)
    decoded = 0
    shown = 0

    def consume(index: int, data: memoryview) -> None:
        nonlocal decoded, shown
        decoded += plan[index].deliver(np.frombuffer(data, dtype=np.int16), peaks)
        if progress is not None and expected:
            percent = min(BEFORE_END, 100.0 * decoded / expected)
            if int(percent) > shown:
                shown = int(percent)
                progress(percent)

    # Decoders get the probe's whitelists too: the object may have changed since the probe.
    with sandbox.source_input(source) as opened:
        commands = []
        for r in plan:
            length = None if r.end is None else r.end - r.first + r.preroll + slack
            commands.append(_command(opened, info, begin + r.first - r.preroll, length))
        if on_command is not None:  # naming the source itself, not the sandbox's link to it
            readable = ([source if word == opened.url else word for word in c] for c in commands)
            on_command(" && ".join(shlex.join(command) for command in readable))
        try:
            ffmpeg.stream(commands, consume, frame_bytes=2, cancel=cancel, timeout=timeout)
        except TaskError as exc:
            raise opened.explain(exc) from exc
    if progress is not None:
        progress(100.0)

    n = peaks.extent
    if n == 0:
        raise TaskError(2058, "the audio stream decoded to no samples")
    spp = 0
    if spec.layout == "peaks":
        spp, starts = pixel_starts(n, spec.points)
    else:
        starts = window_starts(n, spec.points)
    mins, maxs = peaks.reduce(starts)
    if spec.layout == "peaks":
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": sr,
            "samples_per_pixel": spp,
            "bits": 16,
            "length": len(mins),
            "data": interleave(mins, maxs),
        }
    return {
        "version": 1,
        "points": len(mins),
        "duration": round(n / sr, 6),
        "sample_rate": sr,
        "channels": info.channels,
        "data": peak_values(mins, maxs),
    }
