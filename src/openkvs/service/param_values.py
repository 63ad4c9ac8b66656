"""Single values inside a preset's ``Param`` (spec §3.1): bit rates, times, numbers, sizes.

Two layers. The parsers (``parse_bitrate``, ``parse_time``, ``to_number``, ``split_list``)
are plain functions that raise :class:`ValueError`. The rules (``integer(1, 120)``,
``bitrate(...)``, ``choice(...)`` ...) are callables ``rule(path, value)`` that check one
value given by the client and, when it is wrong, raise ``1001`` naming the field by its
full path, e.g. ``Param.VIDEO.vb must be between 100000 and 10000000 bits/s, got '50k'``.

Numbers may arrive as JSON numbers or numeric strings (spec §1.3). Booleans are never
numbers: ``true`` is not ``1``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from openkvs.errors import invalid
from openkvs.service.params import to_int

#: ``rule(path, value)``: returns quietly or raises ``ApiError(1001, "<path> <reason>")``.
Rule = Callable[[str, Any], None]

MAX_DIMENSION = 8192

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_BITRATE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(k|kb|m|mb)?", re.IGNORECASE)
_BITRATE_UNITS = {"": 1, "k": 1000, "kb": 1000, "m": 1_000_000, "mb": 1_000_000}
_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")
_RESOLUTION = re.compile(r"(\d+)[xX](\d+)")
_OBJECT_PATH = re.compile(r"/[^/]+/.+")


def to_number(value: object) -> float:
    """A finite number from a JSON number or a numeric string (``"25"``, ``"29.97"``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            number = float(value.strip())
        else:
            raise ValueError(f"not a number: {value!r}")
    except OverflowError as exc:
        raise ValueError(f"number too large: {value!r}") from exc
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def parse_bitrate(value: object) -> int:
    """Bits per second: ``800000``, ``"500000"``, ``"500k"``, ``"500kb"``, ``"1.5m"`` (k = 1000).

    Suffixes are case-insensitive; fractions are rounded to whole bits; negatives, exponents
    and anything else raise :class:`ValueError`.
    """
    if isinstance(value, str):
        match = _BITRATE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"not a bit rate: {value!r}")
        bits = float(match[1]) * _BITRATE_UNITS[(match[2] or "").lower()]
    else:
        bits = to_number(value)
        if bits < 0:
            raise ValueError(f"negative bit rate: {value!r}")
    return round(bits)


def parse_time(value: object) -> float:
    """Seconds from ``12``, ``"12.5"``, ``"01:02.5"`` or ``"00:01:02.5"`` (``[HH:]MM:SS[.fff]``).

    With hours, minutes must be below 60; seconds are always below 60 in the clock form.
    Negative times raise :class:`ValueError`.
    """
    if isinstance(value, str) and ":" in value:
        match = _CLOCK.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"not a time: {value!r}")
        hours, minutes, seconds = int(match[1] or 0), int(match[2]), float(match[3])
        if seconds >= 60 or (match[1] is not None and minutes >= 60):
            raise ValueError(f"not a time: {value!r}")
        return hours * 3600 + minutes * 60 + seconds
    seconds = to_number(value)
    if seconds < 0:
        raise ValueError(f"negative time: {value!r}")
    return seconds


def split_list(value: object) -> list[str]:
    """The items of a comma-separated list such as ``"400k,800k"`` (a lone number is one item)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    if not isinstance(value, str):
        raise ValueError(f"not a comma-separated list: {value!r}")
    return [item.strip() for item in value.split(",")]


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _between(lo: float | None, hi: float | None, unit: str = "") -> str:
    if hi is None:
        return f"must be at least {_fmt(lo or 0)}{unit}"
    return f"must be between {_fmt(lo or 0)} and {_fmt(hi)}{unit}"


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    """A whole number (``5`` or ``"5"``) within ``lo``..``hi`` (either bound optional)."""

    def rule(path: str, value: Any) -> None:
        number = to_int(path, value)
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise invalid(path, f"{_between(lo, hi)}, got {value!r}")

    return rule


def number(lo: float | None = None, hi: float | None = None, unit: str = "") -> Rule:
    """Any finite number (decimals allowed) within ``lo``..``hi``."""

    def rule(path: str, value: Any) -> None:
        try:
            parsed = to_number(value)
        except ValueError:
            raise invalid(path, f"must be a number, got {value!r}") from None
        if (lo is not None and parsed < lo) or (hi is not None and parsed > hi):
            raise invalid(path, f"{_between(lo, hi, unit)}, got {value!r}")

    return rule


def int_choice(*options: int) -> Rule:
    """A whole number from a fixed set, e.g. ``channels`` 1, 2 or 6."""
    listed = " or ".join(map(str, options)) if len(options) == 2 else ", ".join(map(str, options))
    why = f"must be {listed}" if len(options) == 2 else f"must be one of {listed}"

    def rule(path: str, value: Any) -> None:
        if to_int(path, value) not in options:
            raise invalid(path, f"{why}, got {value!r}")

    return rule


#: A ``0``/``1`` switch.
FLAG = int_choice(0, 1)


def choice(*options: str) -> Rule:
    """A string from a fixed, case-sensitive set."""

    def rule(path: str, value: Any) -> None:
        if value not in options:
            raise invalid(path, f"must be one of {', '.join(options)}")

    return rule


def bitrate(lo: int, hi: int) -> Rule:
    """A bit rate (see :func:`parse_bitrate`) within ``lo``..``hi`` bits/s."""

    def rule(path: str, value: Any) -> None:
        try:
            bits = parse_bitrate(value)
        except ValueError:
            raise invalid(
                path, f"must be a bit rate such as 500000, '500k' or '1.5m', got {value!r}"
            ) from None
        if not lo <= bits <= hi:
            raise invalid(path, f"{_between(lo, hi, ' bits/s')}, got {value!r}")

    return rule


def time_point(path: str, value: Any) -> None:
    """Non-negative seconds or ``[HH:]MM:SS[.fff]`` (see :func:`parse_time`)."""
    try:
        parse_time(value)
    except ValueError:
        raise invalid(
            path, f"must be seconds (e.g. 12.5) or HH:MM:SS[.fff], got {value!r}"
        ) from None


def text(path: str, value: Any) -> None:
    """A free-form option string; a number is tolerated (``"deinterlace": 1``)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(path, f"must be a string, got {value!r}")


#: Output sizes: pixels, ``0`` meaning "follow the source" (same as leaving it out).
DIMENSION = integer(0, MAX_DIMENSION)


def rotation(path: str, value: Any) -> None:
    """``VIDEO.rotate``: whole degrees 0–360 or ``"auto"``."""
    if value == "auto":
        return
    try:
        degrees = to_number(value)
    except ValueError:
        degrees = -1.0
    if not (degrees.is_integer() and 0 <= degrees <= 360):
        raise invalid(path, f"must be between 0 and 360 or 'auto', got {value!r}")


def resolution(path: str, value: Any) -> None:
    """A ``WxH`` size such as ``1280x720``; one side may be 0 (follow the aspect ratio)."""
    match = _RESOLUTION.fullmatch(value.strip()) if isinstance(value, str) else None
    sides = (int(match[1]), int(match[2])) if match else (0, 0)
    if max(sides) == 0 or max(sides) > MAX_DIMENSION:
        raise invalid(path, f"must be WxH with sides up to {MAX_DIMENSION}, got {value!r}")


def pixels_or_fraction(path: str, value: Any) -> None:
    """Logo geometry: a whole number of pixels (>= 0) or a fraction strictly between 0 and 1."""
    try:
        parsed = to_number(value)
    except ValueError:
        parsed = -1.0
    if not (parsed >= 0 and (parsed.is_integer() or parsed < 1)):
        raise invalid(path, f"must be whole pixels or a fraction between 0 and 1, got {value!r}")


def image_location(path: str, value: Any) -> None:
    """A watermark image: ``/<bucket>/<key>`` in the object store or an ``http(s)`` URL."""
    ok = isinstance(value, str) and (
        _OBJECT_PATH.fullmatch(value) is not None
        or re.match(r"https?://[^/\s]+", value) is not None
    )
    if not ok:
        raise invalid(path, f"must be /<bucket>/<key> or an http(s) URL, got {value!r}")


def comma_list(item: Rule) -> Rule:
    """A comma-separated list whose items each satisfy ``item`` (paths ``<path>[i]``)."""

    def rule(path: str, value: Any) -> None:
        try:
            items = split_list(value)
        except ValueError:
            raise invalid(path, f"must be a comma-separated list, got {value!r}") from None
        for index, entry in enumerate(items):
            item(f"{path}[{index}]", entry)

    return rule
