"""The sources of an avtrans task (``SrcInfo``) and the ExtParam keys that say how they are
put together, checked at CreateTask (``docs/transcoding.md``, "Several sources").

* ``type: video`` items are joined in ``index`` order (one item, or one ``type: audio``
  item alone: the task's source); the indexes of a task of several items are 0 … n−1,
  each once (1016 otherwise: a sequence starting at 1 fails); ExtParam ``masterSrcIndex``
  names the video whose size and frame rate the joined video takes (default: the video of
  the lowest index);
* at most one ``type: audio`` item: the soundtrack, replacing the video's own sound, or
  mixed into it with ExtParam ``audio_mix`` 1;
* ``type: subtitle`` items (``.srt``, ``.ass``, ``.ssa``, ``.vtt``): burned into the picture,
  or soft tracks with ExtParam ``subtitle`` ``"soft"`` / ``{"mode": "soft"}`` (``f=hls``:
  WebVTT renditions of one video rendition; with ``mulHlsRate=1`` refused with 1015).

Errors: 1016 for the items themselves (type, indexes, extensions, counts); 1018 for an
ExtParam value, or for a combination with the preset that cannot be made (``copy`` with
several sources, a soundtrack for an output without re-encoded sound, burned subtitles
without a re-encoded picture, soft subtitles in a container that cannot hold them); 1015 for
what this openkvs does not run yet (ExtParam ``loudnorm`` with a joined or replaced
soundtrack, soft subtitles in segment mode; several renditions of one decode —
``mulHlsRate``, DASH ``mulrate`` — take one source, refused before:
``avtrans_ext.refuse_unrunnable``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openkvs.engine.subtitles import EXTENSIONS, MODES, kind_of, soft_codec
from openkvs.errors import ApiError
from openkvs.service.param_values import to_number

if TYPE_CHECKING:
    from openkvs.presets.avtrans import AvtransSpec

#: The kinds of ``SrcInfo`` items, in the order their inputs are opened.
TYPES = ("video", "audio", "subtitle")


@dataclass(frozen=True)
class SourceOptions:
    """How a task's sources are put together."""

    master_index: int | None = None  # SrcInfo.index of the master video (None: the first)
    audio_mix: bool = False  # mix the audio source into the video's sound
    subtitle_mode: str = MODES[0]  # burn or soft


def source_type(item: Mapping[str, Any]) -> str:
    return str(item.get("type") or "video").lower()


def stored_order(items: Sequence[Mapping[str, Any]]) -> list[int]:
    """Positions of ``items`` in the order a worker opens them: videos by index (the first
    is ffmpeg's input 0), then the soundtrack, then subtitles by index."""
    return sorted(
        range(len(items)),
        key=lambda n: (
            TYPES.index(t) if (t := source_type(items[n])) in TYPES else len(TYPES),
            items[n].get("index", n),
            n,
        ),
    )


def _items(sources: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The items by type, checked (1016)."""
    found: dict[str, list[Mapping[str, Any]]] = {kind: [] for kind in TYPES}
    for n, item in enumerate(sources):
        kind = source_type(item)
        if kind not in TYPES:
            raise ApiError(1016, f"SrcInfo[{n}].type must be video, audio or subtitle")
        if kind == "subtitle" and not kind_of(str(item.get("path", ""))):
            names = ", ".join(EXTENSIONS)
            raise ApiError(1016, f"SrcInfo[{n}] of type subtitle must be a file named {names}")
        found[kind].append(item)
    if len(sources) > 1:
        indexes = sorted(int(item.get("index", -1)) for item in sources)
        if indexes != list(range(len(sources))):
            raise ApiError(
                1016,
                f"SrcInfo indexes must be 0 to {len(sources) - 1}, each once (got {indexes})",
            )
    if not found["video"] and len(sources) == 1 and found["audio"]:
        return {**found, "video": found["audio"], "audio": []}  # an audio file alone
    if not found["video"]:
        raise ApiError(1016, "SrcInfo needs an item of type video")
    if len(found["audio"]) > 1:
        raise ApiError(1016, "SrcInfo may have one item of type audio (the soundtrack)")
    return found


def _switch(ext: Mapping[str, Any], key: str) -> bool:
    raw = ext.get(key)
    if raw in (None, ""):
        return False
    try:
        value = None if isinstance(raw, bool) else to_number(raw)
    except ValueError:
        value = None
    if value not in (0, 1):
        raise ApiError(1018, f"ExtParam {key} must be 0 or 1")
    return value == 1


def _subtitle_mode(raw: Any) -> str:
    mode = raw.get("mode", MODES[0]) if isinstance(raw, Mapping) else raw
    if mode not in MODES:
        raise ApiError(
            1018, 'ExtParam subtitle must be "burn", "soft" or {"mode": "burn" | "soft"}'
        )
    return str(mode)


def _master(ext: Mapping[str, Any], videos: list[Mapping[str, Any]]) -> int | None:
    raw = ext.get("masterSrcIndex")
    if raw in (None, ""):
        return None
    try:
        index = None if isinstance(raw, bool) else to_number(raw)
    except ValueError:
        index = None
    indexes = [item.get("index") for item in videos]
    if index not in indexes:
        raise ApiError(
            1018, f"ExtParam masterSrcIndex must be the index of a video SrcInfo item {indexes}"
        )
    return int(index) if index is not None else None


def read_sources(
    spec: AvtransSpec, ext: Mapping[str, Any], sources: Sequence[Mapping[str, Any]]
) -> SourceOptions:
    """The sources' options of a task, checked against its preset (see the module doc)."""
    found = _items(sources)
    videos, audio, subtitles = found["video"], found["audio"], found["subtitle"]
    joined = len(videos) > 1
    mix = _switch(ext, "audio_mix")
    given_subtitle = ext.get("subtitle") not in (None, "")
    mode = _subtitle_mode(ext["subtitle"]) if given_subtitle else MODES[0]
    if mix and not audio:
        raise ApiError(1018, "ExtParam audio_mix needs a SrcInfo item of type audio")
    if given_subtitle and not subtitles:
        raise ApiError(1018, "ExtParam subtitle needs a SrcInfo item of type subtitle")
    v, a = spec.video.codec, spec.audio.codec
    if joined and "copy" in (v, a):
        what = "vcodec" if v == "copy" else "acodec"
        raise ApiError(1018, f"{what}=copy cannot join several video sources: they are re-encoded")
    if audio and a in ("", "copy"):
        why = "the preset copies the audio" if a else "the output has no audio"
        raise ApiError(1018, f"a SrcInfo item of type audio needs re-encoded audio: {why}")
    if subtitles and mode == "burn" and v in ("", "copy"):
        why = "the preset copies the video" if v else "the output has no video"
        raise ApiError(1018, f"burned subtitles need re-encoded video: {why}")
    if subtitles and mode == "soft":
        for item in subtitles:
            kind = kind_of(str(item.get("path", "")))
            if not soft_codec(spec.f, kind):
                raise ApiError(
                    1018,
                    f"f={spec.f} cannot hold soft {kind} subtitles "
                    "(mp4, mov, mkv, webm and hls can; or burn them)",
                )
    several = joined or audio or subtitles
    if several and ext.get("loudnorm") not in (None, "") and (joined or audio):
        raise ApiError(
            1015,
            "ExtParam loudnorm with a joined or replaced soundtrack cannot run on this openkvs yet",
        )
    if subtitles and mode == "soft" and spec.segment.segment_time > 0:
        raise ApiError(1015, "soft subtitles in segment mode cannot run on this openkvs yet")
    return SourceOptions(_master(ext, videos), mix, mode)
