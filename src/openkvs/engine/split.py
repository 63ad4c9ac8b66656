"""Split-and-stitch transcoding, the pure part: which tasks split, where, and the commands.

A long ``avtrans`` task is cut at keyframes of its source into chunks. Each chunk's video is
encoded on its own (any worker may run it); the audio is encoded once for the whole clip
while the chunks are stitched back with stream copy. ``docs/transcoding.md``
("Split-and-stitch") explains the rules; this module only builds:

- :func:`keyframe_probe`: the ffprobe command that finds the keyframes near each intended
  boundary (``-read_intervals``: a seek and a few seconds of packets per boundary, never the
  whole file), and :func:`keyframe_offsets`, its reading;
- :func:`plan_chunks`: the chunks, at keyframes near equal divisions of the clip;
- :func:`part_plan`: one chunk's command(s): the task's own command (``plan_transcode``)
  on ``[start, start + length)`` of the source, without audio, in the output's container;
- :func:`concat_list` and :func:`stitch_plan`: the chunks joined with the concat demuxer
  (stream copy, each chunk's ``duration`` stated so that the joins fall exactly where the
  source's keyframes were) muxed with the audio encoded from the source.

Times are whole microseconds (``int``), as ffmpeg's ``-ss``/``-t`` read them: a boundary is
the keyframe's exact time rounded *down* to a microsecond, so the keyframe is the first
frame kept by ``-ss`` (accurate seek keeps frames at or after it) and the last frame kept
by the previous chunk's ``-t`` (frames before it) is the one just before; the frames of
the chunks add up to those of a single pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from openkvs.engine import ffmpeg
from openkvs.engine.encoders import audio_args, audio_filters
from openkvs.engine.options import PASS_PARAMS
from openkvs.engine.transcode import (
    OUTPUT_NAME,
    SourceFacts,
    TranscodePlan,
    _clip,
    _muxer_args,
    plan_transcode,
)
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec, ClipSpec
from openkvs.storage.mime import content_type_for

US = 1_000_000
#: Containers whose output is one file that the concat demuxer can read back.
CONTAINERS = frozenset({"mp4", "mov", "mkv", "webm", "flv", "mpegts"})
#: Video encoders whose chunks join with stream copy.
CODECS = frozenset({"h264", "h265", "vp9"})
#: Demuxers (ffprobe's ``format_name``) that seek by an index of keyframes, so that ``-ss`` at
#: a keyframe starts there. Others (MPEG-TS, FLV, AVI, MPEG-PS, raw streams) seek by
#: timestamps or bytes and may land after the keyframe: such sources run as a single pass.
INDEXED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
#: Seconds of packets read after each intended boundary to find keyframes near it.
PROBE_WINDOW = 20.0
#: No chunk is shorter than this share of the intended chunk length (nor than 1 s).
MIN_SHARE = 0.25
#: A keyframe is on the output's frame grid when it is this close to it (in frames).
GRID_TOLERANCE = 0.01
#: The name of the concat list in the parent's scratch folder.
CONCAT_NAME = "parts.ffconcat"
#: A relative path the concat demuxer's safe mode (``-safe 1``) accepts.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")


@dataclass(frozen=True)
class Chunk:
    """One part of a split task, in microseconds from the source's start (what ``-ss``
    means): it encodes ``length`` from ``start`` (None: to the end) and is placed ``place``
    after the clip's start in the output."""

    index: int
    start: int
    length: int | None
    place: int


def seconds(us: int) -> str:
    """Microseconds as the seconds ffmpeg reads exactly (``60``, ``61.5``, ``2.002``)."""
    whole, frac = divmod(us, US)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)


def _us(value: float) -> int:
    return round(value * US)


def clip_window(
    spec: AvtransSpec, options: AvtransOptions, facts: SourceFacts
) -> tuple[int, int | None, int]:
    """(start, length or None = to the end, microseconds of output) of the task's clip,
    as the single pass cuts it (``TaskError(2003)`` for a start beyond the end)."""
    start, length, total = _clip(spec, options, facts)
    return _us(start), None if length is None else _us(length), _us(total)


def refusal(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    source_format: str,
    min_seconds: float,
) -> str:
    """Why this task runs as a single pass ("" when it may split).

    It splits when splitting is on (``min_seconds`` > 0), the output is at least
    ``min_seconds`` long, the source is MP4/MOV or Matroska/WebM (``source_format``, what
    ffprobe calls its format: see :data:`INDEXED_FORMATS`), the video is re-encoded with
    h264, h265 or vp9 into a one-file container at a constant quality (``crf``, capped by
    ``vb`` or not, or the encoder's default CRF; lossless too), and nothing in the chain
    needs the frames of the whole file at once. A bit-rate target without ``crf`` (average
    bit rate, or two passes) runs as a single pass: each chunk would spend the same rate
    whatever its content and restart its rate control, a quality step at every join
    (``docs/benchmarks.md`` measures it). So do ``fieldmatch`` (its decimation counts
    frames in cycles of five) and a turned picture whose rotation flag is copied
    (``autorotate=0`` on a rotated source: the chunks' flag would not survive the join)."""
    if min_seconds <= 0:
        return "splitting is off"
    if spec.segment.segment_time > 0:
        return "segment mode writes several files"
    if options.loudnorm is not None:
        return "loudnorm measures and normalises the whole file"
    if source_format not in INDEXED_FORMATS:
        return f"a {source_format or 'source'} source cannot be cut exactly at keyframes"
    video = spec.video
    if spec.f not in CONTAINERS:
        return f"f={spec.f} is not split"
    if not facts.has_video or video.codec not in CODECS:
        return "only re-encoded h264, h265 and vp9 video is split"
    if video.twopass or (video.bitrate and video.crf is None):
        return "a bit rate (vb without crf) is spent over the whole file"
    if video.fieldmatch:
        return "fieldmatch needs the whole file"
    if facts.rotation and not (spec.autorotate or video.rotate_auto):
        return "a rotation flag to copy"
    _start, _length, total = clip_window(spec, options, facts)
    if total < _us(min_seconds):
        return f"shorter than {min_seconds:g} s"
    return ""


def targets(start: int, length: int, chunk_seconds: float) -> list[int]:
    """The intended boundaries: the clip divided into equal parts of about
    ``chunk_seconds`` (at least two parts, or none)."""
    parts = max(1, round(length / _us(chunk_seconds))) if chunk_seconds > 0 else 1
    return [start + length * k // parts for k in range(1, parts)]


def keyframe_probe(
    input_args: Sequence[str], facts: SourceFacts, source_start: float, wanted: Sequence[int]
) -> list[str]:
    """ffprobe reading, after a seek to each boundary in ``wanted`` (microseconds from the
    source's start; ``source_start`` is its ``format.start_time``), ``PROBE_WINDOW``
    seconds of the video's packets: their pts and flags, the stream's time base and the
    file's start time. A seek lands on the keyframe at or before the point, so each
    boundary sees the keyframe before it and those after."""
    base = _us(source_start)
    intervals = ",".join(f"{seconds(base + at)}%+{PROBE_WINDOW:g}" for at in wanted)
    stream = str(facts.video_index) if facts.video_index >= 0 else "v:0"
    return [
        ffmpeg.FFPROBE, "-v", "error", "-of", "json", "-select_streams", stream,
        "-read_intervals", intervals,
        "-show_entries", "packet=pts,flags:stream=time_base:format=start_time",
        *input_args,
    ]  # fmt: skip


def keyframe_offsets(probe_json: dict[str, Any]) -> tuple[Fraction, ...]:
    """The keyframes in :func:`keyframe_probe`'s answer: their exact times in seconds from
    the source's start (``pts * time_base - start_time``), sorted, without repeats.
    Nothing readable → ()."""
    streams = probe_json.get("streams") or []
    time_base = _fraction(streams[0].get("time_base")) if streams else None
    start = _fraction((probe_json.get("format") or {}).get("start_time")) or Fraction(0)
    if not time_base:
        return ()
    found: set[Fraction] = set()
    for packet in probe_json.get("packets") or []:
        if not isinstance(packet, dict) or "K" not in str(packet.get("flags", "")):
            continue
        try:
            pts = int(packet["pts"])
        except (KeyError, TypeError, ValueError):
            continue
        offset = pts * time_base - start
        if offset >= 0:
            found.add(offset)
    return tuple(sorted(found))


def _fraction(value: Any) -> Fraction | None:
    try:
        result = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return result if result >= 0 else None


def output_fps(spec: AvtransSpec, facts: SourceFacts) -> float:
    """The output's frame rate: ``vr`` (at most the source's under ``intelligentSwitch``),
    else the source's; 0 when unknown."""
    fps = spec.video.fps
    if fps and spec.intelligent_switch and facts.fps and fps > facts.fps:
        fps = facts.fps
    return fps or facts.fps


def constant_rate(spec: AvtransSpec) -> bool:
    """Whether ffmpeg writes the output at a constant frame rate: its default for MP4 and
    MOV (``-fps_mode cfr``: a late first frame is repeated so that the video starts at 0);
    other containers, and two-pass encodes (``-fps_mode passthrough``), do not repeat it."""
    return spec.f in ("mp4", "mov") and not spec.video.twopass


def plan_chunks(
    start: int,
    length: int | None,
    total: int,
    keyframes: Sequence[Fraction],
    chunk_seconds: float,
    *,
    fps: float,
    filtered: bool = False,
    constant: bool = False,
) -> tuple[Chunk, ...]:
    """The chunks of the clip that starts ``start`` microseconds into the source and
    lasts ``total`` (``length`` None: it runs to the source's end), cut at ``keyframes``
    (exact seconds from the source's start). ``fps`` is the output's frame rate.

    Each intended boundary (:func:`targets`) moves to the nearest usable keyframe that
    leaves no chunk shorter than ``MIN_SHARE`` of ``chunk_seconds`` (nor 1 s). Usable
    keyframes are a whole number of frames apart (a source of variable frame rate is then
    seldom split); with ``filtered`` (``vr`` resamples the frames) also a whole number of
    frames after the clip's start, where the resampling grid of a single pass has a frame.
    Fewer than two chunks → (); so is an unknown frame rate, and a first frame more than
    half a frame after the clip's start when the rate is not ``constant`` (ffmpeg then
    gives it the timestamp of the next frame, which the joined chunks cannot keep).

    Every frame's timestamp is a whole number of frames (the encoder's time base is one
    frame). A chunk starts at its keyframe rounded down to a microsecond (``-ss`` keeps the
    frames at or after it: the keyframe is the first) and lasts the distance to the next
    keyframe rounded down (``-t`` keeps the frames before it: the next keyframe is not
    one); the first chunk lasts up to the second's place. A chunk's ``place`` in the output
    is the frame the single pass gives its keyframe: its distance from the clip's start in
    whole frames."""
    if fps <= 0:
        return ()
    end = start + total
    origin = Fraction(start, US)
    rate = Fraction(fps).limit_denominator(1_000_000)
    shortest = Fraction(max(US, _us(chunk_seconds * MIN_SHARE)), US)
    usable = [k for k in keyframes if origin + shortest <= k <= Fraction(end, US) - shortest]
    if keyframes:
        anchor = origin if filtered else min(keyframes)
        usable = [k for k in usable if _on_grid((k - anchor) * rate)]
    cuts: list[Fraction] = []
    for target in targets(start, total, chunk_seconds):
        aim = Fraction(target, US)
        after = [k for k in usable if k >= (cuts[-1] if cuts else origin) + shortest]
        if after:
            cuts.append(min(after, key=lambda k: (abs(k - aim), k)))
    if not cuts:
        return ()
    first = (cuts[0] - origin) * rate
    if not constant and first - math.floor(first + Fraction(GRID_TOLERANCE)) >= Fraction(1, 2):
        return ()
    # ffmpeg rounds a frame's time to the nearest frame, halves up (llrint).
    slots = [math.floor((cut - origin) * rate + Fraction(1, 2)) for cut in cuts]
    places = [0, *(math.floor(slot * US / rate) for slot in slots)]
    chunks = [Chunk(0, start, places[1], 0)]
    for index, at in enumerate(cuts, start=1):
        if index < len(cuts):
            chunk_length: int | None = math.floor((cuts[index] - at) * US)
        else:
            chunk_length = None if length is None else total - places[index]
        chunks.append(Chunk(index, math.floor(at * US), chunk_length, places[index]))
    return tuple(chunks)


def _on_grid(frames: Fraction) -> bool:
    return abs(frames - round(frames)) <= GRID_TOLERANCE


def _split_pass_params(options: AvtransOptions) -> tuple[dict[str, str], dict[str, str]]:
    """(the video encoder's ``passParams``, the rest: muxer and audio options)."""
    video: dict[str, str] = {}
    rest: dict[str, str] = {}
    for key, value in (options.pass_params or {}).items():
        (video if PASS_PARAMS[key].video else rest)[key] = value
    return video, rest


def part_plan(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    chunk: Chunk,
    *,
    input_args: Sequence[str],
    scratch: str,
    threads: int = 0,
) -> TranscodePlan:
    """The command(s) of one chunk: the task's own video encode (filters, size, rate
    control, two passes) of ``[chunk.start, chunk.start + chunk.length)``, without audio
    and without the muxer's ``passParams``, in the output's container (whose muxer makes
    the same timestamps as a single pass's)."""
    video_params, _rest = _split_pass_params(options)
    part_spec = replace(spec, audio=replace(spec.audio, codec=""), clip=ClipSpec())
    part_options = AvtransOptions(
        ss=chunk.start / US,
        duration=None if chunk.length is None else chunk.length / US,
        pass_params=video_params or None,
    )
    return plan_transcode(
        part_spec, part_options, facts, input_args=input_args, scratch=scratch, threads=threads
    )


def concat_list(chunks: Sequence[Chunk], names: Sequence[str]) -> str:
    """An ffconcat list of the chunks' files (``names``: relative paths from the list's
    folder, of the characters the demuxer's safe mode accepts). Each chunk but the last
    states its ``duration``, the distance from its place to the next chunk's: every chunk
    then starts exactly where the single pass has its keyframe, whatever its last frame's
    duration says. (The concat demuxer moves each file's first frame to the file's place:
    every chunk starts with a frame at its own start, see :func:`plan_chunks`.)"""
    lines = ["ffconcat version 1.0"]
    for index, (chunk, name) in enumerate(zip(chunks, names, strict=True)):
        if not _SAFE_NAME.fullmatch(name):
            raise ValueError(f"not a safe relative file name: {name!r}")
        lines.append(f"file '{name}'")
        if index + 1 < len(chunks):
            lines.append(f"duration {seconds(chunks[index + 1].place - chunk.place)}")
    return "\n".join(lines) + "\n"


def stitch_plan(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    *,
    concat: str,
    input_args: Sequence[str],
    scratch: str,
    threads: int = 0,
) -> TranscodePlan:
    """The command that makes the output: the chunks listed in ``concat`` (video, copied)
    and the source opened with ``input_args`` at the clip's start (its audio, encoded
    once, as the single pass encodes it; its metadata and chapters, unless ``clearmeta``),
    cut to the clip's length, with the task's muxer options."""
    container = spec.container
    start, length, total = clip_window(spec, options, facts)
    audio = spec.audio if facts.has_audio else replace(spec.audio, codec="")
    head = [ffmpeg.FFMPEG, "-hide_banner", "-nostdin", "-y"]
    threads_args = ["-threads", str(threads)] if threads else []
    head += ["-f", "concat", "-safe", "1", "-protocol_whitelist", "file", "-i", concat]
    head += threads_args + (["-ss", seconds(start)] if start else []) + list(input_args)
    maps = ["-map", "0:v:0"]
    sound = ["-an"]
    if audio.codec:
        maps += ["-map", f"1:{facts.audio_index}" if facts.audio_index >= 0 else "1:a:0"]
        chain = audio_filters(spec, options) if audio.codec != "copy" else []
        maps += ["-af", ",".join(chain)] if chain else []
        sound = audio_args(replace(spec, audio=audio), facts.sample_rate)
    limit = ["-t", seconds(length)] if length is not None else []
    meta = ["-map_metadata", "-1", "-map_chapters", "-1"] if spec.clearmeta else []
    meta = meta or ["-map_metadata", "1", "-map_chapters", "1"]
    upright = spec.autorotate or spec.video.rotate_auto
    if upright and facts.rotation:
        meta += ["-metadata:s:v:0", "rotate=0"]
    _video_params, rest = _split_pass_params(options)
    muxer = _muxer_args(spec, spec.video, replace(options, pass_params=rest or None))
    output = f"{scratch.rstrip('/')}/{OUTPUT_NAME}{container.extension}"
    command = (
        *head, *maps, *limit, "-c:v", "copy", *sound, *threads_args, *meta, *muxer,
        "-f", container.muxer, output,
    )  # fmt: skip
    return TranscodePlan((command,), output, total / US, content_type_for(output))
