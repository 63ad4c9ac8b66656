"""HLS outputs (``f=hls``, spec §3.5): the ffmpeg commands, the key and the master playlist.

Pure. The plan is :func:`engine.transcode.plan_transcode`'s (one per rendition), its output
turned into ffmpeg's ``hls`` muxer writing into a package folder of the scratch folder:

- a VOD playlist (``-hls_playlist_type vod -hls_list_size 0``) named like ``DstObjectKey``;
- segments of ``hls_time`` seconds, named ``<playlist name without extension>-%d.ts`` (or
  ``.m4s`` with ``passParams.hls_segment_type=fmp4``), or by ExtParam ``segment_filename``,
  numbered from ``start_segment_num``;
- when the video is re-encoded, a keyframe forced at every multiple of ``hls_time``
  (``-force_key_frames expr:gte(t,n_forced*N)``), so every segment starts with one and
  decodes alone. With ``vcodec=copy`` the cuts fall on the source's keyframes.

With ExtParam ``mulHlsRate=1`` each rendition of ``engine/ladder.py`` is one more output of
the same command (the source is read and decoded once): ``<stem>-<rendition>.m3u8`` and its
segments ``<stem>-<rendition>-%d.ts`` (with ``segment_filename``: ``<rendition>-<pattern>``),
and the master playlist at ``DstObjectKey`` is written by :func:`master_playlist` from what
was measured (peak and average segment bit rates, the real codecs).

Soft subtitles (``SrcInfo`` items of type ``subtitle`` with ExtParam ``subtitle: "soft"``,
one rendition only) are WebVTT renditions (``engine/hls_subtitles.py``): the same command
converts each file to WebVTT in the scratch folder (one more output), the video playlist is
``<stem>-video.m3u8`` (its segments keep their names) and the master playlist at
``DstObjectKey`` lists it with the subtitle group.

ExtParam ``hlsKey`` (``engine/hls_key.py``) encrypts the segments with AES-128: the key is
written as ``<stem>.key`` beside the playlist and the playlists name it by its URL.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from openkvs.engine.graph import EMPTY, Composition
from openkvs.engine.hls_key import HlsKey
from openkvs.engine.hls_subtitles import GROUP, SubtitleMedia, media_lines
from openkvs.engine.ladder import Rendition, rendition_spec
from openkvs.engine.transcode import SourceFacts, TranscodePlan, plan_transcode
from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec

#: The folder of the scratch folder the package is written in (uploaded beside the key).
PACKAGE = "package"
#: The key information file ffmpeg reads (scratch folder, never uploaded).
KEY_INFO = "hls.keyinfo"
_COUNTER = re.compile(r"%(0[1-9])?d")


@dataclass(frozen=True)
class Output:
    """One media playlist the plan writes (in the package folder) and its rendition."""

    playlist: str  # file name
    rendition: Rendition | None = None  # None: the single rendition of a plain f=hls


@dataclass(frozen=True)
class Subtitles:
    """One soft subtitle rendition: the WebVTT file the command writes, and the names of
    its media playlist and segments in the package folder."""

    vtt: str  # path in the scratch folder (not uploaded)
    playlist: str  # file name
    segments: str  # file name pattern with one %d
    name: str
    language: str = ""


@dataclass(frozen=True)
class HlsPlan:
    """The commands (``plan.output`` is the first media playlist), the package folder, the
    playlists written, and the master playlist's name ("" without ``mulHlsRate`` or soft
    subtitles)."""

    plan: TranscodePlan
    folder: str
    outputs: tuple[Output, ...]
    master: str = ""
    key_name: str = ""  # the key file's name in the package folder ("" = no encryption)
    subtitles: tuple[Subtitles, ...] = ()


def stem_of(key: str) -> str:
    """The playlist's name without its extension (``%`` removed: it is a pattern char)."""
    return os.path.splitext(os.path.basename(key))[0].replace("%", "") or "index"


def segment_extension(options: AvtransOptions) -> str:
    passed = options.pass_params or {}
    return ".m4s" if passed.get("hls_segment_type") == "fmp4" else ".ts"


def segment_pattern(options: AvtransOptions, stem: str, rendition: str = "") -> str:
    """The segments' name pattern (one printf counter; none with ``hls_flags=single_file``)."""
    extension = segment_extension(options)
    if options.segment_filename:
        name = options.segment_filename
        if not os.path.splitext(name)[1]:
            name += extension
        name = f"{rendition}-{name}" if rendition else name
    else:
        name = f"{stem}-{rendition}-%d{extension}" if rendition else f"{stem}-%d{extension}"
    if "single_file" in (options.pass_params or {}).get("hls_flags", "").split("+"):
        # One media file: the pattern without its counter (and the dash before it).
        name = _COUNTER.sub("", name.replace("-%d", "%d"))
        if name.startswith(".") or not os.path.splitext(name)[0]:
            name = (f"{stem}-{rendition}" if rendition else stem) + extension
    return name


def key_info(key: HlsKey, key_path: str, stem: str) -> str:
    """The ``-hls_key_info_file`` text: the URL written in the playlists, the key file, the
    IV (absent: the segment's sequence number, as HLS defines)."""
    lines = [key.url or stem + ".key", key_path]
    if key.iv:
        lines.append(key.iv)
    return "\n".join(lines) + "\n"


def head_length(
    command: Sequence[str], input_args: Sequence[str], composition: Composition = EMPTY
) -> int:
    """Where the output options of a single-output command start: after the source's input
    and the composition's inputs, which follow it."""
    size = len(input_args)
    extra = sum(len(opened) for opened in composition.inputs)
    for at in range(len(command) - size + 1):
        if list(command[at : at + size]) == list(input_args):
            return at + size + extra
    raise TaskError(2001, "the transcode command does not read the source")  # a bug


def plan_hls(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    *,
    input_args: Sequence[str],
    scratch: str,
    playlist_key: str,
    renditions: Sequence[Rendition] = (),
    key: HlsKey | None = None,
    threads: int = 0,
    composition: Composition = EMPTY,
) -> HlsPlan:
    """The plan of an ``f=hls`` task; ``renditions`` (``engine.ladder.hls_ladder``) for
    ``mulHlsRate=1``, ``key`` for ``hlsKey``. Two passes run only for a single rendition.
    ``composition`` (watermarks, several sources: ``engine/graph.py``) only with a single
    rendition (CreateTask refuses it with ``mulHlsRate``)."""
    if renditions and not composition.empty:
        raise ValueError("a composition makes one rendition only")
    seg = spec.segment
    folder = os.path.join(scratch, PACKAGE)
    stem = stem_of(playlist_key)
    hls_time = seg.hls_time or 10
    passed = options.pass_params or {}
    muxer = ["-hls_time", str(hls_time), "-hls_list_size", "0"]
    muxer += ["-start_number", str(seg.start_segment_num)]
    if "hls_playlist_type" not in passed:
        muxer += ["-hls_playlist_type", "vod"]
    key_name = ""
    if key is not None:
        key_name = stem + ".key"
        muxer += ["-hls_key_info_file", os.path.join(scratch, KEY_INFO)]
    encode = spec.video.codec not in ("", "copy") and facts.has_video
    keyframes = ["-force_key_frames", f"expr:gte(t,n_forced*{hls_time})"] if encode else []
    wanted: list[Rendition | None] = list(renditions) or [None]
    outputs: list[Output] = []
    commands: list[tuple[str, ...]] = []
    head: list[str] = []
    tails: list[str] = []
    for rendition in wanted:
        one = spec if rendition is None else rendition_spec(spec, rendition)
        if rendition is not None:
            one = replace(one, video=replace(one.video, twopass=False))
        plan = plan_transcode(
            one,
            options,
            facts,
            input_args=input_args,
            scratch=scratch,
            threads=threads,
            composition=composition,
        )
        name = rendition.name if rendition is not None else ""
        playlist = f"{stem}-{name}.m3u8" if name else stem + ".m3u8"
        if composition.subtitle_tracks:  # the master playlist takes the stem's name
            playlist = f"{stem}-video.m3u8"
        segments = segment_pattern(options, stem, name)
        fmp4 = []
        if passed.get("hls_segment_type") == "fmp4":
            init = f"{stem}-{name}-init.mp4" if name else f"{stem}-init.mp4"
            fmp4 = ["-hls_fmp4_init_filename", init]
        at = head_length(plan.commands[-1], input_args, composition)
        for command in plan.commands[:-1]:  # the first pass of two (one rendition only)
            commands.append((*command[:-3], *keyframes, *command[-3:]))
        last = plan.commands[-1]
        head = list(last[:at])
        tails += [*last[at:-3], *keyframes, *muxer, *fmp4]
        tails += ["-hls_segment_filename", os.path.join(folder, segments)]
        tails += ["-f", "hls", os.path.join(folder, playlist)]
        outputs.append(Output(playlist, rendition))
        duration = plan.duration
    subtitles: list[Subtitles] = []
    for number, track in enumerate(composition.subtitle_tracks):
        vtt = os.path.join(scratch, f"hls-subtitle{number}.vtt")
        tails += ["-map", f"{track.input}:s:0", "-c:s", "webvtt", "-f", "webvtt", vtt]
        base = f"{stem}-sub{number}"
        subtitles.append(
            Subtitles(vtt, base + ".m3u8", base + "-%d.vtt", track.name, track.language)
        )
    commands.append((*head, *tails))
    first = os.path.join(folder, outputs[0].playlist)
    master = stem + ".m3u8" if renditions or subtitles else ""
    return HlsPlan(
        TranscodePlan(tuple(commands), first, duration, "application/vnd.apple.mpegurl"),
        folder,
        tuple(outputs),
        master,
        key_name,
        tuple(subtitles),
    )


@dataclass(frozen=True)
class Entry:
    """One segment of a media playlist: its URI, duration (s) and bytes (its byte range's
    length, else the file's size: given by the caller)."""

    uri: str
    duration: float
    length: int | None = None  # from #EXT-X-BYTERANGE


def playlist_entries(text: str) -> list[Entry]:
    """The segments of a media playlist, in order."""
    entries: list[Entry] = []
    duration: float | None = None
    length: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            length = int(line[17:].split("@")[0])
        elif line and not line.startswith("#") and duration is not None:
            entries.append(Entry(line, duration, length))
            duration, length = None, None
    return entries


@dataclass(frozen=True)
class Variant:
    """One rendition as the master playlist lists it (bit rates in bits/s)."""

    uri: str
    bandwidth: int  # the peak segment bit rate
    average: int  # all segments' bytes over their duration
    width: int
    height: int
    fps: float
    codecs: str


def bit_rates(entries: Sequence[Entry], sizes: Sequence[int]) -> tuple[int, int]:
    """(peak, average) bit rate of segments of ``sizes`` bytes: the highest of each
    segment's bytes over its duration, and all bytes over all durations (HLS §4.3.4.2)."""
    peak = max(
        (size * 8 / e.duration for e, size in zip(entries, sizes, strict=True) if e.duration > 0),
        default=0.0,
    )
    total = sum(e.duration for e in entries)
    average = sum(sizes) * 8 / total if total else 0.0
    return math.ceil(peak), math.ceil(average)


_H264_PROFILES = {
    "baseline": "4200",
    "constrained baseline": "42e0",
    "main": "4d40",
    "extended": "5800",
    "high": "6400",
    "high 10": "6e00",
    "high 4:2:2": "7a00",
    "high 4:4:4 predictive": "f400",
}


def codec_tag(stream: Mapping[str, Any]) -> str:
    """The RFC 6381 name of a probed stream (``avc1.64001f``, ``hvc1.1.6.L93.90``,
    ``mp4a.40.2``); "" when unknown."""
    name = str(stream.get("codec_name") or "")
    profile = str(stream.get("profile") or "").lower()
    try:
        level = int(stream.get("level") or 0)
    except (TypeError, ValueError):
        level = 0
    if name == "h264":
        return f"avc1.{_H264_PROFILES.get(profile, '6400')}{max(level, 0):02x}"
    if name == "hevc":
        space = 2 if "10" in profile else 1
        return f"hvc1.{space}.{2 if space == 2 else 6}.L{max(level, 0)}.90"
    if name == "aac":
        return (
            "mp4a.40.5"
            if profile.startswith("he") and "v2" not in profile
            else ("mp4a.40.29" if "v2" in profile else "mp4a.40.2")
        )
    if name == "mp3":
        return "mp4a.40.34"
    return ""


def master_playlist(
    variants: Sequence[Variant],
    *,
    independent: bool,
    version: int = 3,
    subtitles: Sequence[SubtitleMedia] = (),
) -> str:
    """The master playlist listing ``variants`` (highest first), relative to its own key;
    with ``subtitles`` every variant names their group (``engine/hls_subtitles.py``)."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}"]
    if independent:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    lines += media_lines(subtitles)
    for v in variants:
        attrs = [f"BANDWIDTH={v.bandwidth}", f"AVERAGE-BANDWIDTH={v.average}"]
        if v.width and v.height:
            attrs.append(f"RESOLUTION={v.width}x{v.height}")
        if v.fps:
            attrs.append(f"FRAME-RATE={v.fps:.3f}")
        if v.codecs:
            attrs.append(f'CODECS="{v.codecs}"')
        if subtitles:
            attrs.append(f'SUBTITLES="{GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), v.uri]
    return "\n".join(lines) + "\n"
