"""Subtitles of an avtrans task: ``SrcInfo`` items of type ``subtitle`` (``.srt``, ``.ass``,
``.ssa``, ``.vtt``), burned into the picture or muxed as soft tracks (ExtParam
``subtitle``).

Pure. Burning is a :class:`~openkvs.engine.graph.VideoStage` running libass (FFmpeg's
``subtitles`` filter) on the output's picture, reading a local copy of the file. Cue times
are the source's: with ``ss`` the stage shifts the timestamps back to the source's own
time around the filter. Text files without styles (SRT, WebVTT) get a forced style: the
font (:data:`FONT`, found through fontconfig) at :data:`FONT_SIZE` units of libass's 288-line
script height, so the text is the same share of the picture (about 1/16 of its height) at
every output size; ASS/SSA files keep their own styles.

A soft track is one more input mapped to the output with the subtitle encoder its container
takes (:data:`SOFT_CODECS`); ``f=hls`` makes it a WebVTT rendition of the package
(``engine/hls_subtitles.py``); other containers cannot hold text subtitles.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from openkvs.engine.concat import seconds

#: Subtitle file extensions → the FFmpeg demuxer that reads them.
EXTENSIONS: dict[str, str] = {".srt": "srt", ".ass": "ass", ".ssa": "ass", ".vtt": "webvtt"}
#: ``Param.f`` → how each file kind is written as a soft track (``copy``: as it is).
SOFT_CODECS: dict[str, dict[str, str]] = {
    "mp4": {"srt": "mov_text", "ass": "mov_text", "webvtt": "mov_text"},
    "mov": {"srt": "mov_text", "ass": "mov_text", "webvtt": "mov_text"},
    "mkv": {"srt": "copy", "ass": "copy", "webvtt": "srt"},
    "webm": {"srt": "webvtt", "ass": "webvtt", "webvtt": "copy"},
    # A WebVTT rendition of the package (engine/hls_subtitles.py), not a muxed track.
    "hls": {"srt": "webvtt", "ass": "webvtt", "webvtt": "webvtt"},
}
#: How subtitles go into the output (ExtParam ``subtitle.mode``); the first is the default.
MODES = ("burn", "soft")
#: The font of files without styles, and its size in script units (of 288 lines).
FONT = "DejaVu Sans"
FONT_SIZE = 18


def kind_of(path: str) -> str:
    """The demuxer of a subtitle file by its name (``""``: not a subtitle file)."""
    return EXTENSIONS.get(posixpath.splitext(path)[1].lower(), "")


def soft_codec(f: str, kind: str) -> str:
    """The encoder of a soft track of ``kind`` in ``f`` (``""``: that container cannot
    hold it)."""
    return SOFT_CODECS.get(f, {}).get(kind, "")


def _option_value(text: str) -> str:
    """``text`` as one value of a filter's options, escaped for the option parser and
    then for the filtergraph parser."""
    for char in "\\':":
        text = text.replace(char, "\\" + char)
    return "".join("\\" + c if c in "\\'[],;" else c for c in text)


@dataclass(frozen=True)
class BurnedSubtitles:
    """Burns one local subtitle file into the picture (a ``VideoStage``)."""

    path: str  # a local copy of the file
    kind: str  # srt, ass or webvtt (:data:`EXTENSIONS`)
    start: float = 0.0  # the clip window's start: cue times are the source's

    def style(self) -> str:
        """The forced style (``""`` for ASS/SSA, which keep their own)."""
        if self.kind == "ass":
            return ""
        return f"FontName={FONT},FontSize={FONT_SIZE},Outline=1,Shadow=0"

    def fragment(self, source: str, width: int, height: int, out: str) -> str:
        burn = f"subtitles=filename={_option_value(self.path)}"
        if style := self.style():
            burn += f":force_style={_option_value(style)}"
        if not self.start:
            return f"{source}{burn}{out}"
        shift = seconds(self.start)
        return f"{source}setpts=PTS+{shift}/TB,{burn},setpts=PTS-STARTPTS{out}"


_TIME = r"(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}"
_CUE = re.compile(rf"^([ \t]*)({_TIME})([ \t]*-->[ \t]*)({_TIME})", re.M)
_BLOCKS = re.compile(r"(\r?\n(?:[ \t]*\r?\n)+)")
_DIALOGUE = re.compile(r"^(Dialogue:[^,\n]*,)([^,\n]*),([^,\n]*)(,.*)$", re.M)


def _parse_time(text: str) -> float:
    """``[H:]MM:SS.fff`` (or ``,fff``) in seconds."""
    fields = text.strip().replace(",", ".").split(":")
    minutes = int(fields[-2]) if len(fields) >= 2 else 0
    hours = int(fields[-3]) if len(fields) >= 3 else 0
    return hours * 3600 + minutes * 60 + float(fields[-1])


def _cue_time(value: float, sep: str, digits: int) -> str:
    scale = 10**digits
    ticks = round(max(0.0, value) * scale)
    whole, frac = divmod(ticks, scale)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if digits == 2:  # ASS: H:MM:SS.cc
        return f"{hours}:{minutes:02d}:{secs:02d}.{frac:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{frac:03d}"


def shift_cues(text: str, kind: str, shift: float) -> str:
    """``text`` (a subtitle file of ``kind``) with every cue ``shift`` seconds earlier: a
    cue that ends by then is dropped, one that starts before and ends after starts at 0.
    Anything that is not a cue time is kept as it is."""
    if kind == "ass":

        def line(found: re.Match[str]) -> str:
            start = _parse_time(found.group(2)) - shift
            end = _parse_time(found.group(3)) - shift
            if end <= 0:
                return "\0"  # marked, removed below with its line break
            times = f"{_cue_time(start, '.', 2)},{_cue_time(end, '.', 2)}"
            return f"{found.group(1)}{times}{found.group(4)}"

        shifted = _DIALOGUE.sub(line, text)
        return re.sub(r"^\0\r?\n?", "", shifted, flags=re.M)
    sep = "," if kind == "srt" else "."
    parts = _BLOCKS.split(text)
    kept: list[str] = []
    for number in range(0, len(parts), 2):
        block = parts[number]
        gap = parts[number + 1] if number + 1 < len(parts) else ""
        found = _CUE.search(block)
        if found:
            start = _parse_time(found.group(2)) - shift
            end = _parse_time(found.group(4)) - shift
            if end <= 0:
                continue
            block = (
                block[: found.start(2)]
                + _cue_time(start, sep, 3)
                + found.group(3)
                + _cue_time(end, sep, 3)
                + block[found.end(4) :]
            )
        kept.append(block + gap)
    return "".join(kept)


def soft_track_args(input_number: int, codec: str, position: int) -> tuple[str, ...]:
    """The output options of soft track ``position`` (0 for the first) read from input
    ``input_number``."""
    return ("-map", f"{input_number}:s:0", f"-c:s:{position}", codec)
