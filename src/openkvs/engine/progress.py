"""Reading ffmpeg's ``-progress`` output: how far a run is, as a percent of a known duration.

With ``-progress pipe:1`` ffmpeg prints ``key=value`` lines on stdout in blocks, each block
ending with ``progress=continue`` (every ``-stats_period``, 0.5 s by default) or, once,
``progress=end``::

    frame=164
    out_time_us=5760078
    out_time_ms=5760078
    out_time=00:00:05.760078
    speed=3.96x
    progress=continue

The position is ``out_time_us``; ``out_time_ms`` is also microseconds in FFmpeg (a naming
mistake it keeps for compatibility), and ``out_time`` is the same as ``[-]HH:MM:SS.micro``.
Any of them may be ``N/A`` (nothing written yet) or negative (encoder priming). Pure: no
I/O, no clock; the runner (``engine/runner.py``) feeds it lines.
"""

from __future__ import annotations

import math
import re

#: The highest percent before ``progress=end``: 100 means "this run finished".
BEFORE_END = 99.0

_CLOCK = re.compile(r"(-?)(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)")
_SPEED = re.compile(r"\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?)x\s*")


def parse_micros(value: str) -> float | None:
    """Seconds of an ``out_time_us``/``out_time_ms`` value (microseconds); None for ``N/A``
    or anything else that is not an integer."""
    try:
        return int(value.strip()) / 1_000_000
    except ValueError:
        return None


def parse_clock(value: str) -> float | None:
    """Seconds of an ``out_time`` value (``[-]HH:MM:SS.ffffff``); None for ``N/A``."""
    found = _CLOCK.fullmatch(value.strip())
    if found is None:
        return None
    sign, hours, minutes, seconds = found.groups()
    total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return -total if sign else total


def parse_speed(value: str) -> float | None:
    """The ``speed`` value (``"3.96x"``, ``"   0x"``) as a number; None for ``N/A``."""
    found = _SPEED.fullmatch(value)
    return float(found.group(1)) if found else None


class ProgressParser:
    """Turns ``-progress`` lines into a percent of ``duration`` seconds of output.

    :meth:`feed` takes one line at a time and returns the new percent when a block ends and
    the percent went up, else None. The percent never decreases, stays at most
    :data:`BEFORE_END` (99) while ffmpeg runs, and is 100 only at ``progress=end``. With an
    unknown ``duration`` (0, negative, not finite) it stays 0 until the end.
    """

    def __init__(self, duration: float) -> None:
        self.duration = duration if math.isfinite(duration) and duration > 0 else 0.0
        self.percent = 0.0
        self.out_time: float | None = None  # seconds written, from the last block
        self.speed: float | None = None  # times real time, from the last block
        self.ended = False
        self._block: dict[str, str] = {}

    def feed(self, line: str) -> float | None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        key = key.strip()
        if key != "progress":
            self._block[key] = value
            return None
        block, self._block = self._block, {}
        self._read_block(block)
        if value.strip() == "end":
            self.ended = True
            self.percent = 100.0
            return self.percent
        if self.out_time is None or not self.duration or self.ended:
            return None
        percent = min(BEFORE_END, max(0.0, 100.0 * self.out_time / self.duration))
        if percent <= self.percent:
            return None
        self.percent = percent
        return percent

    def _read_block(self, block: dict[str, str]) -> None:
        position = None
        for key, parse in (
            ("out_time_us", parse_micros),
            ("out_time_ms", parse_micros),
            ("out_time", parse_clock),
        ):
            if key in block:
                position = parse(block[key])
                if position is not None:
                    break
        if position is not None:
            self.out_time = position
        if "speed" in block:
            self.speed = parse_speed(block["speed"])


def parse_text(text: str, duration: float) -> list[float]:
    """Every percent a whole ``-progress`` text reports, in order (for tests and tools)."""
    parser = ProgressParser(duration)
    found = (parser.feed(line) for line in text.splitlines())
    return [percent for percent in found if percent is not None]
