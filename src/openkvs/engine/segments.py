"""Segment mode (spec §3.5): a non-HLS output (``f=mp4``, ``flv``, ``ts`` ...) with
``segment_time > 0`` cut into independent files, plus a list file at ``DstObjectKey``.

Pure: the plan is :func:`engine.transcode.plan_transcode`'s, with its output turned into
ffmpeg's ``segment`` muxer: ``-segment_time N``, ``-reset_timestamps 1`` (every file starts
at 0), ``-segment_start_number`` (``start_segment_num``) and, when the video is re-encoded,
a keyframe forced at every boundary (``-force_key_frames expr:gte(t,n_forced*N)``) so each
file starts on a keyframe and decodes alone. With ``vcodec=copy`` the cuts fall on the
source's own keyframes (each file still starts on one). ``start_segment_time`` (seconds)
leaves that much of the clip out: segmenting starts that far after ``ss``.

The files are written in the scratch folder under their final names (the pattern of
ExtParam ``segment_filename``, else ``<list name without extension>-%03d<ext>``) and go
beside ``DstObjectKey``; ffmpeg's own list (:data:`FFMPEG_LIST`, CSV) gives their order.
The list file written at ``DstObjectKey`` is an HLS VOD playlist (``segmentlisttype``
``m3u8``) naming the files relative to it, with each file's real duration.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from openkvs.engine.graph import EMPTY, Composition
from openkvs.engine.transcode import SourceFacts, TranscodePlan, plan_transcode
from openkvs.errors import ApiError
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.storage.mime import content_type_for

#: ``segmentlisttype`` of every segment-mode task: the list file is an m3u8 playlist.
LIST_TYPE = "m3u8"
#: ffmpeg's list of the files it wrote, in order (scratch folder; CSV: name,start,end).
FFMPEG_LIST = "segments.csv"
#: A ``segment_filename``: one ``%d`` or ``%0Nd`` counter, no other ``%``, no ``/``.
_PATTERN = re.compile(r"[^/%\x00-\x1f]*%(0[1-9])?d[^/%\x00-\x1f]*")
MAX_NAME = 200


@dataclass(frozen=True)
class Segment:
    """One file written: its name (beside the list), real duration (s) and size (bytes)."""

    name: str
    duration: float
    size: int


@dataclass(frozen=True)
class SegmentPlan:
    """The commands (``plan.output`` is ffmpeg's list, :data:`FFMPEG_LIST`), the folder
    the files go to in the bucket (``""`` or ending ``/``) and their content type."""

    plan: TranscodePlan
    prefix: str
    content_type: str


def check_pattern(value: object) -> str:
    """ExtParam ``segment_filename`` checked (1018 when it is not a usable pattern)."""
    text = str(value) if isinstance(value, str) else ""
    if not _PATTERN.fullmatch(text) or len(text) > MAX_NAME or text.startswith("."):
        raise ApiError(
            1018,
            "ExtParam segment_filename must be a file name with one %d or %03d counter "
            f"(no '/' and no other '%'), got {value!r:.60}",
        )
    return text


def file_pattern(spec: AvtransSpec, options: AvtransOptions, list_key: str) -> str:
    """The segment files' name pattern (printf counter), extension added when missing."""
    extension = spec.container.extension
    if options.segment_filename:
        name = options.segment_filename
        return name if os.path.splitext(name)[1] else name + extension
    stem = os.path.splitext(os.path.basename(list_key))[0] or "segment"
    return stem.replace("%", "") + "-%03d" + extension


def plan_segments(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    *,
    input_args: Sequence[str],
    scratch: str,
    list_key: str,
    threads: int = 0,
    composition: Composition = EMPTY,
) -> SegmentPlan:
    """The segment-mode plan of one avtrans task (``spec.segment.segment_time > 0``);
    ``composition``: watermarks, several sources (``engine/graph.py``)."""
    seg = spec.segment
    if seg.start_segment_time:
        start = options.ss if options.ss is not None else spec.clip.ss or 0.0
        options = replace(options, ss=start + seg.start_segment_time)
    plan = plan_transcode(
        spec,
        options,
        facts,
        input_args=input_args,
        scratch=scratch,
        threads=threads,
        composition=composition,
    )
    length = str(seg.segment_time)
    keyframes = ["-force_key_frames", f"expr:gte(t,n_forced*{length})"]
    encode = spec.video.codec not in ("", "copy", "gif", "webp") and facts.has_video
    commands = []
    for command in plan.commands:
        cut = list(command[:-3])  # without "-f", muxer, output
        muxer, output = command[-2], command[-1]
        if encode:
            cut += keyframes
        if output != plan.output:  # the first pass of two
            commands.append((*cut, *command[-3:]))
            continue
        cut, formats = _format_options(cut)
        pattern = os.path.join(scratch, file_pattern(spec, options, list_key))
        cut += ["-f", "segment", "-segment_format", muxer]
        cut += formats
        cut += ["-segment_time", length, "-segment_start_number", str(seg.start_segment_num)]
        cut += ["-reset_timestamps", "1", "-segment_list_type", "csv"]
        cut += ["-segment_list", os.path.join(scratch, FFMPEG_LIST), pattern]
        commands.append(tuple(cut))
    folder = os.path.dirname(list_key)
    return SegmentPlan(
        TranscodePlan(tuple(commands), os.path.join(scratch, FFMPEG_LIST), plan.duration, ""),
        folder + "/" if folder else "",
        content_type_for(pattern),
    )


def _format_options(command: list[str]) -> tuple[list[str], list[str]]:
    """``-movflags`` is the inner muxer's: moved to ``-segment_format_options``."""
    if "-movflags" not in command:
        return command, []
    at = command.index("-movflags")
    flags = command[at + 1]
    return command[:at] + command[at + 2 :], ["-segment_format_options", f"movflags={flags}"]


def listed_files(csv_text: str) -> list[str]:
    """The file names of ffmpeg's CSV segment list, in order."""
    names = []
    for line in csv_text.splitlines():
        name = line.split(",")[0].strip().strip('"')
        if name:
            names.append(os.path.basename(name))
    return names


def _duration(seconds: float) -> str:
    return f"{seconds:.4f}"


def segments_info(segments: Sequence[Segment]) -> str:
    """The callback's ``segmentsinfo`` (spec §5.3.3): a JSON array as a string."""
    items = [
        {
            "fileindex": index,
            "filename": segment.name,
            "duration": _duration(segment.duration),
            "filesize": segment.size,
        }
        for index, segment in enumerate(segments)
    ]
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def m3u8_list(segments: Sequence[Segment]) -> str:
    """The list file: an HLS VOD playlist of the files, relative to its own key."""
    target = max((math.ceil(s.duration) for s in segments), default=0)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}"]
    lines += ["#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for segment in segments:
        lines += [f"#EXTINF:{segment.duration:.6f},", segment.name]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
