"""Soft subtitles of an ``f=hls`` output: WebVTT renditions (spec §3.5, ``docs/transcoding.md``
"HLS and DASH").

Pure. The subtitle file (already moved by ExtParam ``ss``: ``engine.subtitles.shift_cues``)
is converted by the HLS command itself into one WebVTT file (ffmpeg's ``webvtt`` encoder and
muxer: SRT, ASS/SSA and WebVTT in, plain WebVTT out). This module then cuts it at the video
playlist's segment boundaries and writes the subtitle media playlist: one ``.vtt`` segment
per video segment, with the video's durations, target duration and media sequence, so a
player fetches subtitles in step with the picture. ffmpeg's own ``hls`` muxer can segment a
subtitle stream too, but only through ``-var_stream_map`` (which renames every file and
writes its own master playlist without measured bit rates); cutting the converted file here
keeps the single rendition's files as they are and is the same for MPEG-TS and fMP4.

Cue times stay those of the output (0 = its first picture). Each segment says where that is
in the media's timestamps with ``X-TIMESTAMP-MAP=MPEGTS:<90 kHz>,LOCAL:00:00:00.000``
(MPEG-TS segments written by ffmpeg start about 1.4 s in). A cue that spans a boundary is
written in both segments, as players expect (they show it once).
"""

from __future__ import annotations

import bisect
import math
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: The GROUP-ID of the subtitle renditions in the master playlist.
GROUP = "subs"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_TIME = r"(?:\d+:)?\d{1,2}:\d{2}\.\d{3}"
_TIMING = re.compile(rf"^\s*({_TIME})\s*-->\s*({_TIME})(.*)$")


@dataclass(frozen=True)
class SubtitleMedia:
    """One subtitle rendition as the master playlist lists it."""

    uri: str  # its media playlist, relative to the master
    name: str
    language: str = ""  # RFC 5646 tag ("" = unknown: no LANGUAGE attribute)


@dataclass(frozen=True)
class Cue:
    """One WebVTT cue: start and end (s), the rest of its timing line (settings) and its
    text lines."""

    start: float
    end: float
    settings: str
    text: str


def track_label(key: str) -> tuple[str, str]:
    """(NAME, LANGUAGE) of a subtitle file by its name: ``film.en.srt`` → ("film.en",
    "en"); the language is the last dotted part before the extension when it looks like a
    language tag (2 or 3 lower-case letters, then subtags), else unknown ("")."""
    stem = posixpath.splitext(posixpath.basename(key))[0] or "subtitles"
    _, dot, last = stem.rpartition(".")
    language = last if dot and _LANGUAGE.match(last) else ""
    return stem, language


def _seconds(text: str) -> float:
    fields = text.split(":")
    hours = int(fields[-3]) if len(fields) == 3 else 0
    return hours * 3600 + int(fields[-2]) * 60 + float(fields[-1])


def _stamp(value: float) -> str:
    millis = round(max(0.0, value) * 1000)
    whole, frac = divmod(millis, 1000)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{frac:03d}"


def parse_cues(text: str) -> list[Cue]:
    """The cues of a WebVTT file, in order (the header, NOTE, STYLE and REGION blocks and
    cue identifiers are dropped)."""
    cues: list[Cue] = []
    blocks = re.split(r"\r?\n(?:[ \t]*\r?\n)+", text.lstrip("\ufeff"))
    for block in blocks:
        lines = block.splitlines()
        for at, line in enumerate(lines[:2]):
            found = _TIMING.match(line)
            if found:
                start, end = _seconds(found[1]), _seconds(found[2])
                body = "\n".join(lines[at + 1 :]).strip("\r\n")
                cues.append(Cue(start, end, found[3].rstrip(), body))
                break
    return cues


def segment_bounds(durations: Sequence[float]) -> list[tuple[float, float]]:
    """Each segment's (start, end) on the output's time line, from its durations."""
    bounds, at = [], 0.0
    for duration in durations:
        bounds.append((at, at + duration))
        at += duration
    return bounds


def segment_vtt(cues: Sequence[Cue], start: float, end: float, mpegts: int) -> str:
    """The WebVTT segment of [``start``, ``end``) on the output's time line: its time
    stamp map and the cues shown in it, their times unchanged."""
    lines = ["WEBVTT", f"X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000", ""]
    for cue in cues:
        if cue.start < end and cue.end > start:
            lines += [f"{_stamp(cue.start)} --> {_stamp(cue.end)}{cue.settings}", cue.text, ""]
    return "\n".join(lines) + "\n"


def segment_texts(cues: Sequence[Cue], durations: Sequence[float], mpegts: int) -> list[str]:
    """One WebVTT segment per video segment of ``durations`` (cues starting after the
    video's end are dropped: there is no picture to show them on)."""
    bounds = segment_bounds(durations)
    starts = [a for a, _ in bounds]
    shown: list[list[Cue]] = [[] for _ in bounds]
    for cue in cues:  # each cue into the segments it overlaps (files may hold many cues)
        for number in range(max(0, bisect.bisect_right(starts, cue.start) - 1), len(bounds)):
            a, b = bounds[number]
            if a >= cue.end:
                break
            if cue.start < b and cue.end > a:
                shown[number].append(cue)
    return [segment_vtt(c, a, b, mpegts) for c, (a, b) in zip(shown, bounds, strict=True)]


def mpegts_of(start_time: float) -> int:
    """The 90 kHz time stamp of the output's first picture (``start_time``: ffprobe's, in
    seconds, of the video's first segment)."""
    return max(0, round(start_time * 90000))


@dataclass(frozen=True)
class MediaHeader:
    """What a subtitle playlist copies from its video playlist."""

    target: int  # EXT-X-TARGETDURATION
    sequence: int  # EXT-X-MEDIA-SEQUENCE
    playlist_type: str  # EXT-X-PLAYLIST-TYPE ("" = none)
    ended: bool  # EXT-X-ENDLIST


def media_header(text: str, durations: Sequence[float]) -> MediaHeader:
    """The header of a video media playlist (the target duration is at least every
    segment's rounded duration, as HLS requires)."""
    target, sequence, kind, ended = 0, 0, "", False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PLAYLIST-TYPE:"):
            kind = line.split(":", 1)[1]
        elif line == "#EXT-X-ENDLIST":
            ended = True
    longest = max((math.floor(d + 0.5) for d in durations), default=1)
    return MediaHeader(max(target, longest, 1), sequence, kind, ended)


def segment_names(pattern: str, count: int, sequence: int) -> list[str]:
    """The segment file names of ``pattern`` (one ``%d``), numbered from ``sequence``."""
    return [pattern.replace("%d", str(sequence + n)) for n in range(count)]


def subtitle_playlist(header: MediaHeader, durations: Sequence[float], names: Sequence[str]) -> str:
    """The subtitle media playlist: the video's segment durations, the ``.vtt`` names."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{header.target}"]
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{header.sequence}")
    if header.playlist_type:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{header.playlist_type}")
    for duration, name in zip(durations, names, strict=True):
        lines += [f"#EXTINF:{duration:.6f},", name]
    if header.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    """An HLS quoted-string (no double quote, no line break)."""
    return '"' + re.sub(r'["\r\n]', "'", value) + '"'


def media_lines(subtitles: Sequence[SubtitleMedia]) -> list[str]:
    """The master playlist's ``#EXT-X-MEDIA`` lines of the subtitle group (names made
    unique: NAME must differ within a group)."""
    lines, seen = [], set()
    for media in subtitles:
        name, number = media.name, 2
        while name in seen:
            name, number = f"{media.name} ({number})", number + 1
        seen.add(name)
        attrs = [f'TYPE=SUBTITLES,GROUP-ID="{GROUP}",NAME={_quoted(name)}']
        if media.language:
            attrs.append(f"LANGUAGE={_quoted(media.language)}")
        attrs += ["DEFAULT=NO", "AUTOSELECT=YES", f"URI={_quoted(media.uri)}"]
        lines.append("#EXT-X-MEDIA:" + ",".join(attrs))
    return lines
