"""Windowing and reduction of the waveform engine (engine/wave.py), on synthetic arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from openkvs.engine.probe import AudioInfo
from openkvs.engine.wave import (
    BlockPeaks,
    _estimated_samples,
    interleave,
    mono_mean_filter,
    parallel_safe,
    peak_values,
    pixel_starts,
    split_ranges,
    window_starts,
)

RNG = np.random.default_rng(20240315)


def signal(n: int) -> np.ndarray:
    return RNG.integers(-32768, 32768, size=n, dtype=np.int16)


def direct(samples: np.ndarray, starts: np.ndarray) -> tuple[list[int], list[int]]:
    """Min/max per window computed in one go (the last window runs to the end)."""
    pieces = np.split(samples, starts[1:])
    return [int(p.min()) for p in pieces], [int(p.max()) for p in pieces]


def feed_in_pieces(peaks: BlockPeaks, samples: np.ndarray, sizes: list[int], at: int = 0) -> None:
    done = 0
    for size in sizes:
        peaks.feed(samples[done : done + size], at + done)
        done += size
    peaks.feed(samples[done:], at + done)


def test_window_starts_are_floor_i_n_over_points() -> None:
    assert window_starts(10, 3).tolist() == [0, 3, 6]
    assert window_starts(12, 4).tolist() == [0, 3, 6, 9]
    n, points = 52_920_000, 4095
    starts = window_starts(n, points)
    assert len(starts) == points
    assert starts[1234] == (1234 * n) // points  # exact integer arithmetic, no float error


def test_fewer_samples_than_points_gives_one_window_per_sample() -> None:
    assert window_starts(5, 800).tolist() == [0, 1, 2, 3, 4]


def test_pixel_layout() -> None:
    spp, starts = pixel_starts(10, 3)
    assert spp == 4 and starts.tolist() == [0, 4, 8]
    spp, starts = pixel_starts(9, 4)  # spp 3 → 3 pixels, fewer than points
    assert spp == 3 and starts.tolist() == [0, 3, 6]
    spp, starts = pixel_starts(52_920_000, 4095)
    assert spp == 12_924 and len(starts) <= 4095 and starts[-1] < 52_920_000


@pytest.mark.parametrize("sizes", [[1] * 50, [7, 1000, 3, 4096], [100_000], [0, 2, 0, 65_536]])
def test_one_sample_blocks_are_exact(sizes: list[int]) -> None:
    samples = signal(100_003)
    peaks = BlockPeaks(expected=90_000, slots=1 << 18)  # a wrong estimate changes nothing
    feed_in_pieces(peaks, samples, sizes)
    assert peaks.size == 1 and peaks.extent == len(samples)
    starts = window_starts(len(samples), 37)
    mins, maxs = peaks.reduce(starts)
    assert (mins.tolist(), maxs.tolist()) == direct(samples, starts)


def test_bigger_blocks_put_window_edges_on_block_starts() -> None:
    samples = signal(50_000)
    peaks = BlockPeaks(expected=50_000, slots=1 << 12)  # 2048 blocks for 50 000: size 25
    feed_in_pieces(peaks, samples, [333, 4000, 17])
    assert peaks.size == 25
    starts = window_starts(len(samples), 7)
    snapped = (starts // 25) * 25
    mins, maxs = peaks.reduce(starts)
    assert (mins.tolist(), maxs.tolist()) == direct(samples, snapped)


def test_more_samples_than_expected_merge_blocks() -> None:
    samples = signal(10_000)
    peaks = BlockPeaks(expected=100, slots=256)  # size 1; 10 000 samples need size 64
    feed_in_pieces(peaks, samples, [50, 3000, 999])
    assert peaks.size == 64 and peaks.extent == 10_000
    starts = np.array([0, 1280, 6400], dtype=np.int64)  # multiples of 64: exact
    mins, maxs = peaks.reduce(starts)
    assert (mins.tolist(), maxs.tolist()) == direct(samples, starts)


def test_unknown_length_starts_exact_and_grows() -> None:
    peaks = BlockPeaks(expected=0, slots=1024)
    peaks.feed(signal(512), 0)
    assert peaks.size == 1
    peaks.feed(signal(4000), 512)
    assert peaks.size == 8 and peaks.extent == 4512


def test_fewer_samples_than_points_gives_one_value_per_sample() -> None:
    samples = signal(15)
    peaks = BlockPeaks(expected=20)
    peaks.feed(samples, 0)
    mins, maxs = peaks.reduce(window_starts(peaks.extent, 20))
    assert mins.tolist() == maxs.tolist() == samples.tolist()


def test_a_window_without_samples_is_zero() -> None:
    samples = signal(300)
    peaks = BlockPeaks(expected=300)
    peaks.feed(samples[:100], 0)
    peaks.feed(samples[200:], 200)  # a range that delivered nothing for [100, 200)
    mins, maxs = peaks.reduce(np.array([0, 100, 200], dtype=np.int64))
    assert mins[1] == maxs[1] == 0
    assert (mins[2], maxs[2]) == (samples[200:].min(), samples[200:].max())


def test_peak_values_scale_round_and_clip() -> None:
    mins = np.array([-32768, 0, -100, -16384, 0], dtype=np.int16)
    maxs = np.array([0, 32767, 200, 16383, 0], dtype=np.int16)
    assert peak_values(mins, maxs) == [1.0, 1.0, 0.0061, 0.5, 0.0]
    assert all(0.0 <= v <= 1.0 for v in peak_values(signal(99), signal(99)))


def test_interleave_min_max_pairs() -> None:
    mins = np.array([-5, -7], dtype=np.int16)
    maxs = np.array([6, 8], dtype=np.int16)
    assert interleave(mins, maxs) == [-5, 6, -7, 8]
    assert all(type(v) is int for v in interleave(mins, maxs))


@pytest.mark.parametrize("ranges", [2, 3, 5])
def test_ranges_decoded_separately_give_the_same_result(ranges: int) -> None:
    n, preroll, slack = 200_000, 4096, 300
    samples = signal(n + 1234)  # more than estimated: the surplus is the last range's
    whole = BlockPeaks(expected=n, slots=1 << 16)  # blocks of 7 samples
    whole.feed(samples, 0)
    split = BlockPeaks(expected=n, slots=1 << 16)
    plan = split_ranges(n, ranges, preroll=preroll)
    assert len(plan) == ranges and plan[0].first == 0 and plan[0].preroll == 0
    for r in plan:
        begin = r.first - r.preroll  # what ffmpeg -ss delivers: preroll, range, slack
        stop = None if r.end is None else r.end + slack
        delivered = samples[begin:stop]
        for piece in np.array_split(delivered, 5):
            r.deliver(piece, split)
    assert split.extent == whole.extent == len(samples)
    starts = window_starts(len(samples), 97)
    assert [a.tolist() for a in split.reduce(starts)] == [a.tolist() for a in whole.reduce(starts)]


def test_ranges_split_the_expected_samples() -> None:
    plan = split_ranges(10_000, 3, preroll=100)
    assert [(r.first, r.end, r.preroll) for r in plan] == [
        (0, 3333, 0),
        (3333, 6667, 100),
        (6667, None, 100),
    ]
    assert [(r.first, r.end) for r in split_ranges(0, 1)] == [(0, None)]


def test_mono_mean_filter() -> None:
    assert mono_mean_filter(2) == "pan=mono|c0=0.5*c0+0.5*c1"
    assert mono_mean_filter(3) == "pan=mono|c0=" + "+".join(f"0.3333333333*c{i}" for i in range(3))


def info(fmt: str, codec: str, duration: float = 60.0) -> AudioInfo:
    return AudioInfo(44100, 2, duration, codec, fmt, 0)


@pytest.mark.parametrize(
    ("fmt", "codec", "source", "safe"),
    [
        ("mp3", "mp3", "/data/a.mp3", True),
        ("mov,mp4,m4a,3gp,3g2,mj2", "aac", "/data/a.m4a", True),
        ("ogg", "vorbis", "a.ogg", True),
        ("ogg", "opus", "a.opus", False),
        ("matroska,webm", "opus", "a.webm", False),
        ("mpegts", "aac", "a.ts", False),
        ("mp3", "mp2", "a.mp2", False),
        ("flac", "flac", "http://host/a.flac", False),
    ],
)
def test_parallel_only_where_seeking_is_exact(
    fmt: str, codec: str, source: str, safe: bool
) -> None:
    assert parallel_safe(info(fmt, codec), source) is safe


def probe_json(fmt: str, start_time: Any) -> dict[str, Any]:
    return {"streams": [{"index": 0, "start_time": start_time}], "format": {"format_name": fmt}}


def test_estimate_drops_the_mp3_encoder_delay() -> None:
    mp3 = info("mp3", "mp3", duration=180.035918)
    assert _estimated_samples(probe_json("mp3", "0.025057"), mp3) == 7_938_479
    ogg = info("ogg", "vorbis", duration=180.0)
    assert _estimated_samples(probe_json("ogg", "0.000000"), ogg) == 7_938_000
    assert _estimated_samples(probe_json("mp3", "N/A"), info("mp3", "mp3", 1.0)) == 44100
    assert _estimated_samples(probe_json("ogg", None), info("ogg", "vorbis", 0.0)) == 0
