"""What an avtrans task adds around its first source's own streams: more inputs and filter
stages (concatenation, a replacement soundtrack, watermarks, subtitles).

Pure data. :func:`engine.transcode.plan_transcode` takes one :class:`Composition`; when it
is not empty the command is built as one ``-filter_complex`` graph:

1. the video entering the preset's chain is ``[vsrc]`` when ``video_source`` is given (a
   fragment ending in that pad: the joined sources of a concatenation), else the source's
   own video stream; the audio likewise ``[asrc]`` from ``audio_source``;
2. the preset's video chain (``engine/video_filters.py``: deinterlace, rotate, scale, fps)
   runs on it;
3. each of ``video_stages`` in order runs on the result, knowing the picture's size
   (watermarks, burned-in subtitles);
4. the GIF palette, when ``f=gif``, comes last; the audio filters (volume, loudness, the
   resampler) run on the audio.

Inputs are numbered in the order they are given: the source is input 0, ``inputs[0]`` is
input 1. A builder that adds inputs is told the number of its first one (``first``) and
names its pads with its own prefix, so several builders' parts join with :func:`merge`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: Pads the fragments must end in (``video_source``/``audio_source``).
VIDEO_SOURCE = "[vsrc]"
AUDIO_SOURCE = "[asrc]"


class VideoStage(Protocol):
    """One stage on the picture after the preset's chain."""

    def fragment(self, source: str, width: int, height: int, out: str) -> str:
        """A filtergraph fragment reading the pad or stream ``source`` (``[0:0]``,
        ``[vmain]``) of ``width``×``height`` pixels (0 when unknown) and ending in ``out``
        (a pad such as ``[vs0]``). Several chains may be joined with ``;``."""
        ...


@dataclass(frozen=True)
class SubtitleTrack:
    """A soft subtitle track the output's packager writes itself (``f=hls``: a WebVTT
    rendition, ``engine/hls.py``), read from input ``input``."""

    input: int
    name: str  # as players list it
    language: str = ""  # RFC 5646 ("" = unknown)


@dataclass(frozen=True)
class Composition:
    """The parts a task adds; the empty composition changes nothing."""

    #: Each: the argv that opens one more input, ending with ``-i`` and its location.
    inputs: tuple[tuple[str, ...], ...] = ()
    #: A fragment ending in :data:`VIDEO_SOURCE`: replaces the source's video (``""``: none).
    video_source: str = ""
    #: A fragment ending in :data:`AUDIO_SOURCE`: replaces the source's audio (``""``: none).
    audio_source: str = ""
    #: Stages on the picture after the preset's chain, in order.
    video_stages: tuple[VideoStage, ...] = ()
    #: Output options after the maps of video and audio (a soft subtitle track's
    #: ``-map 2:0 -c:s mov_text``).
    output_args: tuple[str, ...] = ()
    #: When True the clip window (``ss``/``duration``) is applied to the joined result by
    #: the ``video_source``/``audio_source`` fragments themselves, not by ``-ss`` on input 0.
    owns_clip: bool = False
    #: Soft subtitle tracks not mapped into the output: its packager writes them.
    subtitle_tracks: tuple[SubtitleTrack, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.inputs
            or self.video_source
            or self.audio_source
            or self.video_stages
            or self.output_args
            or self.subtitle_tracks
        )

    @property
    def filtered(self) -> bool:
        """True when the command needs ``-filter_complex``."""
        return bool(self.video_source or self.audio_source or self.video_stages)


EMPTY = Composition()


def merge(parts: Sequence[Composition]) -> Composition:
    """One composition of several builders' parts (inputs in order; at most one part may
    replace the video source and one the audio source)."""
    video = [p.video_source for p in parts if p.video_source]
    audio = [p.audio_source for p in parts if p.audio_source]
    if len(video) > 1 or len(audio) > 1:
        raise ValueError("two parts replace the same source stream")
    return Composition(
        inputs=tuple(i for p in parts for i in p.inputs),
        video_source=video[0] if video else "",
        audio_source=audio[0] if audio else "",
        video_stages=tuple(s for p in parts for s in p.video_stages),
        output_args=tuple(a for p in parts for a in p.output_args),
        owns_clip=any(p.owns_clip for p in parts),
        subtitle_tracks=tuple(t for p in parts for t in p.subtitle_tracks),
    )
