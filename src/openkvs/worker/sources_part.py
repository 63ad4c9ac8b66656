"""The part of an avtrans job's composition made from its other ``SrcInfo`` items: more
videos joined after the first (``engine/concat.py``), a soundtrack (``engine/soundtrack.py``)
and subtitles (``engine/subtitles.py``). The rules are checked at CreateTask
(``presets/avtrans_sources.py``); ``docs/transcoding.md`` ("Several sources") explains them.

Inputs, numbered from 1 after the first video (input 0): the other videos in index order,
then the soundtrack, then soft subtitle tracks. Each source is opened through the sandbox
(``engine.sandbox.source_input``) and probed; subtitle files are copied into the job's
scratch folder (the ``subtitles`` filter and the subtitle demuxers read a local file).
While the part is open, the job records its commands with each source's storage path in
place of its sandbox link (as ``worker/avtrans.py`` does for input 0).
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from openkvs.engine.concat import Clip, Frame, Window, join_audio, join_video
from openkvs.engine.graph import EMPTY, Composition, SubtitleTrack, VideoStage
from openkvs.engine.hls_subtitles import track_label
from openkvs.engine.probe import first_video, positive_seconds, probe
from openkvs.engine.sandbox import source_input
from openkvs.engine.soundtrack import soundtrack
from openkvs.engine.subtitles import (
    BurnedSubtitles,
    kind_of,
    shift_cues,
    soft_codec,
    soft_track_args,
)
from openkvs.engine.transcode import SourceFacts, facts_from_probe
from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.storage.base import StorageError
from openkvs.worker.job import Job, Source

#: ffprobe of one more source (headers and a few packets).
PROBE_TIMEOUT = 60.0
#: The largest subtitle file a task may use.
MAX_SUBTITLE_BYTES = 16 * 1024 * 1024
#: The joined video's frame rate when the master's is unknown.
DEFAULT_FPS = 25.0
#: The joined sound's rate when the master has no sound.
DEFAULT_RATE = 48000
#: The pad of the joined sound when a soundtrack is mixed into it.
JOINED_SOUND = "[acat]"


@dataclass(frozen=True)
class Joined:
    """One video to join: its source, its facts, and its length."""

    source: Source
    facts: SourceFacts
    seconds: float


def _even(value: float) -> int:
    side = max(2, round(value))
    return side - side % 2


def frame_of(master: SourceFacts, clips: Sequence[SourceFacts]) -> Frame:
    """What every joined clip is made into: the master's upright displayed size (even
    sides) and frame rate; the master's sample rate (else the highest of the clips', else
    48000); stereo unless every clip with sound is mono."""
    width, height = master.width * (master.sar or 1.0), master.height
    if master.rotation in (90, 270):
        width, height = height, width
    rates = [c.sample_rate for c in clips if c.has_audio and c.sample_rate]
    rate = master.sample_rate if master.has_audio and master.sample_rate else max(rates or [0])
    mono = all(c.channels == 1 for c in clips if c.has_audio)
    return Frame(
        width=_even(width),
        height=_even(height),
        fps=master.fps or DEFAULT_FPS,
        sample_rate=rate or DEFAULT_RATE,
        layout="mono" if mono else "stereo",
    )


def window_of(spec: AvtransSpec, options: AvtransOptions) -> Window:
    """The clip window (ExtParam wins over the preset's ``CLIP``)."""
    start = options.ss if options.ss is not None else spec.clip.ss or 0.0
    length = options.duration if options.duration is not None else spec.clip.duration
    return Window(start, length)


def output_seconds(window: Window, total: float) -> float:
    """How long the output is (0: unknown)."""
    if not total:
        return window.length or 0.0
    left = max(0.0, total - window.start)
    return min(window.length, left) if window.length else left


def _length(found: dict[str, Any], facts: SourceFacts) -> float:
    """A clip's length: its picture's when ffprobe says, else the file's."""
    video = first_video(found) or {}
    return positive_seconds(video.get("duration")) or facts.duration


def _probe(job: Job, source: Source) -> dict[str, Any]:
    return probe(source.location, min(PROBE_TIMEOUT, job.remaining()), cancel=job.cancel)


def _fetch(job: Job, source: Source, number: int) -> str:
    """A local copy of a subtitle file in the scratch folder."""
    extension = os.path.splitext(source.key)[1].lower()
    path = job.scratch / f"subtitle{number}{extension}"
    try:
        size = job.storage.object_info(source.bucket, source.key).size
        if size > MAX_SUBTITLE_BYTES:
            where = f"/{source.bucket}/{source.key}"
            raise TaskError(
                3150, f"the subtitle file {where} is over the {MAX_SUBTITLE_BYTES} bytes allowed"
            )
        job.storage.get_file(source.bucket, source.key, path)
    except StorageError as exc:
        raise TaskError(2041, f"/{source.bucket}/{source.key}: {exc}") from exc
    return str(path)


def _shift_file(path: str, kind: str, seconds: float) -> None:
    """Move a local subtitle file's cues ``seconds`` earlier (its text encoding is kept:
    cue times are ASCII, other bytes are written back as they were)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as file:
        text = file.read()
    shifted = shift_cues(text, kind, seconds)
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as file:
        file.write(shifted)


def _show_as(job: Job, stack: contextlib.ExitStack, link: str, location: str) -> None:
    """Record the task's commands with ``location`` (the source's path or URL in storage,
    as for the first source) instead of the sandbox's temporary ``link``, until ``stack``
    closes."""
    if link == location:
        return
    record = job.record_command

    def recorded(command: str) -> None:
        record(command.replace(shlex.quote(link), shlex.quote(location)))

    job.record_command = recorded
    stack.callback(setattr, job, "record_command", record)


def _type(source: Source) -> str:
    """The item's ``type`` as CreateTask read it (in any case; empty: ``video``)."""
    return (source.type or "video").lower()


def _own_sound(facts: SourceFacts) -> str:
    """The pad of input 0's sound (``""``: none)."""
    if not facts.has_audio:
        return ""
    return f"[0:{facts.audio_index}]" if facts.audio_index >= 0 else "[0:a:0]"


def _clips(spec: AvtransSpec, joined: Sequence[Joined], numbers: Sequence[int]) -> list[Clip]:
    clips = []
    for item, number in zip(joined, numbers, strict=True):
        if spec.video.codec and not item.facts.has_video:
            where = f"/{item.source.bucket}/{item.source.key}"
            raise TaskError(3155, f"the video source {where} has no video stream to join")
        clips.append(
            Clip(
                input=number,
                seconds=item.seconds,
                video_index=item.facts.video_index,
                audio_index=item.facts.audio_index if item.facts.has_audio else None,
            )
        )
    return clips


def joined_facts(master: SourceFacts, frame: Frame, total: float, sound: bool) -> SourceFacts:
    """The facts of the joined media: the master's, at the joined size, rate and length."""
    return replace(
        master,
        duration=total,
        has_video=True,
        has_audio=sound,
        width=frame.width,
        height=frame.height,
        rotation=0,
        fps=frame.fps,
        sar=1.0,
        video_codec="",
        audio_codec="",
        sample_rate=frame.sample_rate if sound else 0,
        channels=(1 if frame.layout == "mono" else 2) if sound else 0,
        video_index=-1,
        audio_index=-1,
    )


@dataclass
class _Inputs:
    """The inputs a part opens, numbered from 1 (input 0 is the first video)."""

    job: Job
    stack: contextlib.ExitStack
    args: list[tuple[str, ...]]

    def open(self, location: str, shown: str = "") -> int:
        """Open ``location`` through the sandbox; its number. ``shown``: the name the
        task's command shows instead of the sandbox's link."""
        link = self.stack.enter_context(source_input(location))
        self.args.append(tuple(link.args()))
        if shown:
            _show_as(self.job, self.stack, link.url, shown)
        return len(self.args)


@dataclass(frozen=True)
class _Sound:
    """The sound before a soundtrack: its pad and the fragment that makes it."""

    pad: str = ""  # "" = none
    fragment: str = ""  # "" = a stream of input 0


def _join(
    job: Job,
    spec: AvtransSpec,
    options: AvtransOptions,
    first: Joined,
    videos: Sequence[Source],
    window: Window,
    inputs: _Inputs,
) -> tuple[SourceFacts, str, str, _Sound]:
    """(facts of the joined media, its video fragment, its audio fragment, its sound for a
    soundtrack to mix into)."""
    joined = [first]
    for source in videos:
        probed = _probe(job, source)
        clip_facts = facts_from_probe(probed)
        joined.append(Joined(source, clip_facts, _length(probed, clip_facts)))
    numbers = [0, *(inputs.open(j.source.location, j.source.location) for j in joined[1:])]
    clips = _clips(spec, joined, numbers)
    master = next((j for j in joined if j.source.index == options.master_index), joined[0])
    frame = frame_of(master.facts, [j.facts for j in joined])
    with_sound = any(clip.audio_index is not None for clip in clips)
    out = joined_facts(master.facts, frame, sum(j.seconds for j in joined), with_sound)
    if not with_sound:
        return out, join_video(clips, frame, window), "", _Sound()
    sound = _Sound(JOINED_SOUND, join_audio(clips, frame, window, out=JOINED_SOUND))
    return out, join_video(clips, frame, window), join_audio(clips, frame, window), sound


def _soundtrack(
    job: Job,
    options: AvtransOptions,
    audio: Source,
    facts: SourceFacts,
    sound: _Sound,
    window: Window,
    inputs: _Inputs,
) -> tuple[SourceFacts, str]:
    """(facts with the soundtrack's sound, the audio fragment)."""
    track = facts_from_probe(_probe(job, audio))
    if not track.has_audio:
        raise TaskError(3155, f"the audio source /{audio.bucket}/{audio.key} has no audio stream")
    number = inputs.open(audio.location, audio.location)
    index = track.audio_index if track.audio_index >= 0 else "a:0"
    mixed = options.audio_mix and bool(sound.pad)
    fragment = soundtrack(
        f"[{number}:{index}]",
        start=window.start,
        length=output_seconds(window, facts.duration),
        own=sound.pad,
        mix=mixed,
    )
    if mixed and sound.fragment:
        fragment = f"{sound.fragment};{fragment}"
    if not mixed:  # the output's sound is the soundtrack's
        facts = replace(
            facts, has_audio=True, sample_rate=track.sample_rate, channels=track.channels
        )
    return replace(facts, audio_codec="", audio_bitrate=0), fragment


def _subtitles(
    job: Job,
    spec: AvtransSpec,
    options: AvtransOptions,
    subtitles: Sequence[Source],
    window: Window,
    inputs: _Inputs,
) -> tuple[list[VideoStage], list[str], list[SubtitleTrack]]:
    """(burning stages, soft tracks' output options, soft tracks an HLS package writes as
    WebVTT renditions)."""
    stages: list[VideoStage] = []
    output_args: list[str] = []
    tracks: list[SubtitleTrack] = []
    for position, source in enumerate(subtitles):
        kind = kind_of(source.key)
        path = _fetch(job, source, position)
        if options.subtitle_mode != "soft":
            stages.append(BurnedSubtitles(path, kind, window.start))
            continue
        if window.start:  # the cues follow the cut picture (-ss would misplace them)
            _shift_file(path, kind, window.start)
        number = inputs.open(path, path)
        if spec.f == "hls":
            tracks.append(SubtitleTrack(number, *track_label(source.key)))
            continue
        output_args += soft_track_args(number, soft_codec(spec.f, kind), position)
    return stages, output_args, tracks


def sources_part(
    job: Job,
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    found: dict[str, Any],
    stack: contextlib.ExitStack,
) -> tuple[Composition, SourceFacts]:
    """The part of the job's other sources and the facts of what enters the preset's chain
    (for a concatenation: the joined media). Sources stay open until ``stack`` closes."""
    others = job.sources[1:]
    videos = sorted((s for s in others if _type(s) == "video"), key=lambda s: s.index)
    audio = next((s for s in others if _type(s) == "audio"), None)
    subtitles = sorted((s for s in job.sources if _type(s) == "subtitle"), key=lambda s: s.index)
    if not (videos or audio or subtitles):
        return EMPTY, facts
    inputs = _Inputs(job, stack, [])
    window = window_of(spec, options)
    out, video_source, audio_source = facts, "", ""
    sound = _Sound(_own_sound(facts))
    if videos:
        first = Joined(job.source, facts, _length(found, facts))
        out, video_source, audio_source, sound = _join(
            job, spec, options, first, videos, window, inputs
        )
    if audio is not None:
        out, audio_source = _soundtrack(job, options, audio, out, sound, window, inputs)
    stages, output_args, tracks = _subtitles(job, spec, options, subtitles, window, inputs)
    composition = Composition(
        inputs=tuple(inputs.args),
        video_source=video_source,
        audio_source=audio_source,
        video_stages=tuple(stages),
        output_args=tuple(output_args),
        owns_clip=bool(videos),
        subtitle_tracks=tuple(tracks),
    )
    return composition, out
