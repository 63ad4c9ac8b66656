"""The avtrans command builder: preset spec + task options + probed source → ffmpeg argv.

Pure: no I/O, no clock. One command, or two for a two-pass encode (the first writes only
its pass log, ``-f null``). Each starts ``ffmpeg -hide_banner -nostdin -y``, opens the
source with the sandbox's ``input_args`` and writes ``output.<ext>`` in the job's scratch
folder. ``docs/transcoding.md`` explains every preset key's part in the command; the
filters are built by ``engine/video_filters.py`` and the encoders by ``engine/encoders.py``.

Failures known before anything runs are ``TaskError``: 2049 (``intelligentSwitch=1`` and
the request exceeds the source), 3155 (the source has none of the streams the output needs),
2025 (``copy`` of a codec the container cannot hold), 2003 (``ss`` beyond the source's end).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from openkvs.engine import ffmpeg
from openkvs.engine.encoders import audio_args, audio_filters, capped_video, video_args
from openkvs.engine.formats import PROBED_CODECS, Container
from openkvs.engine.graph import AUDIO_SOURCE, EMPTY, VIDEO_SOURCE, Composition
from openkvs.engine.loudnorm import MeasuredLoudness, apply_chain, measure_command
from openkvs.engine.options import PASS_PARAMS
from openkvs.engine.probe import first_video
from openkvs.engine.video_filters import geometry, gif_graph, video_filters
from openkvs.errors import TaskError
from openkvs.presets.avtrans import AudioSpec, AvtransOptions, AvtransSpec, VideoSpec
from openkvs.storage.mime import content_type_for

#: The output's name in the scratch folder (plus the container's extension).
OUTPUT_NAME = "output"
#: Prefix of the two-pass log files in the scratch folder.
PASSLOG_NAME = "passlog"


@dataclass(frozen=True)
class SourceFacts:
    """What the builder needs to know about the source (from its ffprobe JSON)."""

    duration: float = 0.0  # seconds; 0 when unknown
    has_video: bool = False
    has_audio: bool = False
    width: int = 0  # coded size, before rotation
    height: int = 0
    rotation: int = 0  # clockwise degrees to turn the picture upright: 0, 90, 180 or 270
    fps: float = 0.0
    video_codec: str = ""
    pix_fmt: str = ""
    video_bitrate: int = 0
    audio_codec: str = ""
    audio_bitrate: int = 0
    sample_rate: int = 0
    channels: int = 0
    sar: float = 1.0  # sample (pixel) aspect ratio
    video_index: int = -1  # absolute stream index; -1 = the first video stream
    audio_index: int = -1


@dataclass(frozen=True)
class TranscodePlan:
    """The commands to run, in order (two-pass: two); the last one writes ``output``."""

    commands: tuple[tuple[str, ...], ...]
    output: str  # path of the output file (in the job's scratch folder)
    duration: float  # seconds of media the output will hold (progress is measured on it)
    content_type: str  # of the output object


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number and abs(number) != float("inf") else 0.0


def _ratio(value: Any) -> float:
    """``"30000/1001"`` or ``"16:15"`` as a number; 0 when absent or undefined."""
    text = str(value or "")
    for sep in ("/", ":"):
        if sep in text:
            num, _, den = text.partition(sep)
            return _number(num) / _number(den) if _number(den) else 0.0
    return _number(text)


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise degrees to turn upright: the display matrix (ffprobe gives its angle
    counter-clockwise) or else the legacy ``rotate`` tag (clockwise); nearest quarter turn."""
    clockwise = None
    for side in stream.get("side_data_list") or []:
        if isinstance(side, dict) and "rotation" in side:
            clockwise = -_number(side["rotation"])
    if clockwise is None:
        clockwise = _number((stream.get("tags") or {}).get("rotate"))
    return round(clockwise / 90) % 4 * 90


def facts_from_probe(probe_json: dict[str, Any]) -> SourceFacts:
    """The :class:`SourceFacts` of ffprobe's ``-show_streams -show_format`` JSON. A cover
    picture (``attached_pic``) is not a video stream."""
    streams = [s for s in probe_json.get("streams") or [] if isinstance(s, dict)]
    fmt = probe_json.get("format") or {}
    video = first_video(probe_json)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _number(fmt.get("duration")) or max(
        (_number(s.get("duration")) for s in (video, audio) if s), default=0.0
    )
    facts = SourceFacts(duration=max(0.0, duration))
    if video is not None:
        facts = replace(
            facts,
            has_video=True,
            width=int(_number(video.get("width"))),
            height=int(_number(video.get("height"))),
            rotation=_rotation(video),
            fps=_ratio(video.get("avg_frame_rate")) or _ratio(video.get("r_frame_rate")),
            video_codec=str(video.get("codec_name") or ""),
            pix_fmt=str(video.get("pix_fmt") or ""),
            video_bitrate=int(_number(video.get("bit_rate"))),
            sar=_ratio(video.get("sample_aspect_ratio")) or 1.0,
            video_index=int(_number(video.get("index"))),
        )
    if audio is not None:
        facts = replace(
            facts,
            has_audio=True,
            audio_codec=str(audio.get("codec_name") or ""),
            audio_bitrate=int(_number(audio.get("bit_rate"))),
            sample_rate=int(_number(audio.get("sample_rate"))),
            channels=int(_number(audio.get("channels"))),
            audio_index=int(_number(audio.get("index"))),
        )
    return facts


def _seconds(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _copied(kind: str, probed: str, container: Container) -> None:
    codec = "pcm" if probed.startswith("pcm_") else PROBED_CODECS.get(probed, probed)
    holds = container.video if kind == "video" else container.audio
    if codec not in holds:
        raise TaskError(
            2025,
            f"{'vcodec' if kind == 'video' else 'acodec'}=copy: the source's {probed or 'unknown'} "
            f"{kind} cannot go in f={container.name} (it holds {', '.join(holds)})",
        )


def _streams(spec: AvtransSpec, facts: SourceFacts) -> tuple[VideoSpec, AudioSpec]:
    """The streams the output will have, given what the source has."""
    container = spec.container
    video = spec.video if facts.has_video else replace(spec.video, codec="")
    audio = spec.audio if facts.has_audio else replace(spec.audio, codec="")
    if spec.video.codec and not container.audio and not video.codec:
        raise TaskError(3155, f"the source has no video stream to make f={spec.f} from")
    if spec.audio.codec and not container.video and not audio.codec:
        raise TaskError(3155, f"the source has no audio stream to make f={spec.f} from")
    if not video.codec and not audio.codec:
        raise TaskError(3155, f"the source has none of the streams f={spec.f} is asked to hold")
    if video.codec == "copy":
        _copied("video", facts.video_codec, container)
    if audio.codec == "copy":
        _copied("audio", facts.audio_codec, container)
    return capped_video(video, facts.video_bitrate, spec.intelligent_switch), audio


def _clip(
    spec: AvtransSpec, options: AvtransOptions, facts: SourceFacts
) -> tuple[float, float | None, float]:
    """(start, length or None, seconds of output) — ExtParam wins over the preset's CLIP."""
    start = options.ss if options.ss is not None else spec.clip.ss or 0.0
    length = options.duration if options.duration is not None else spec.clip.duration
    if not facts.duration:
        return start, length, length or 0.0
    if start >= facts.duration:
        raise TaskError(
            2003,
            f"ss {_seconds(start)} is at or beyond the source's end ({_seconds(facts.duration)} s)",
        )
    left = facts.duration - start
    return start, length, min(length, left) if length else left


def _muxer_args(spec: AvtransSpec, video: VideoSpec, options: AvtransOptions) -> list[str]:
    container = spec.container
    passed = dict(options.pass_params or {})
    args: list[str] = []
    if container.faststart:
        flags = "+".join(["faststart", *[f for f in passed.pop("movflags", "").split("+") if f]])
        args += ["-movflags", "+" + "+".join(dict.fromkeys(flags.split("+")))]
    if video.codec in ("gif", "webp"):
        args += ["-loop", str(video.loop)]
    if video.codec == "gif" and video.final_delay is not None:
        args += ["-final_delay", str(video.final_delay)]
    for key, value in passed.items():
        args += [PASS_PARAMS[key].option, value]
    return args


def plan_transcode(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    *,
    input_args: Sequence[str],
    scratch: str,
    threads: int = 0,
    loudness: MeasuredLoudness | None = None,
    composition: Composition = EMPTY,
) -> TranscodePlan:
    """The plan for one avtrans task. ``input_args`` open the source (``-i`` included,
    from ``engine.sandbox.SourceInput.args()``); outputs and pass logs go in ``scratch``.
    ``loudness``: what :func:`loudness_measure` measured, for ExtParam ``loudnorm``.
    ``composition``: more inputs and filter stages (``engine/graph.py``); ``facts`` then
    describe what enters the preset's chain (for a concatenation: the joined media).
    Raises ``TaskError(2049)`` when ``intelligentSwitch`` is 1 and the request exceeds the
    source."""
    container = spec.container
    if not container.runs:
        raise TaskError(2025, f"f={spec.f} outputs cannot run on this openkvs yet")
    video, audio = _streams(spec, facts)
    start, length, seconds = _clip(spec, options, facts)
    upright = spec.autorotate or video.rotate_auto
    head = [ffmpeg.FFMPEG, "-hide_banner", "-nostdin", "-y"]
    if threads:
        head += ["-threads", str(threads)]
    if video.codec not in ("", "copy") and not upright:
        head.append("-noautorotate")
    if start and not composition.owns_clip:
        head += ["-ss", _seconds(start)]
    head += list(input_args)
    for extra in composition.inputs:
        head += list(extra)

    picture: list[str] = []  # the video stream's map and filters
    encode = video.codec not in ("", "copy")
    video_in = f"0:{facts.video_index}" if facts.video_index >= 0 else "0:v:0"
    chain: list[str] = []
    geo = None
    if video.codec:
        turned = upright and facts.rotation in (90, 270)
        w, h = (facts.height, facts.width) if turned else (facts.width, facts.height)
        geo = geometry(replace(spec, video=video), w, h, facts.sar) if encode else None
        chain = video_filters(replace(spec, video=video), geo, facts.fps) if geo else []
        if composition.filtered:
            pass  # one graph for both streams, below
        elif video.codec == "gif":
            picture += ["-filter_complex", gif_graph(chain, video_in), "-map", "[v]"]
        else:
            picture += ["-map", video_in] + (["-vf", ",".join(chain)] if chain else [])
    sound: list[str] = []
    chain_a: list[str] = []
    audio_in = f"0:{facts.audio_index}" if facts.audio_index >= 0 else "0:a:0"
    if audio.codec:
        chain_a = audio_filters(spec, options)
        if options.loudnorm is not None and loudness is not None:
            rate = audio.sample_rate or facts.sample_rate or 48000
            chain_a = [f for f in chain_a if not f.startswith("aresample")] + apply_chain(
                options.loudnorm, loudness, rate, soxr=audio.resampler == "soxr"
            )
        if audio.codec == "copy":
            chain_a = []
        if not composition.filtered:
            sound += ["-map", audio_in]
            if chain_a:
                sound += ["-af", ",".join(chain_a)]

    def graph(with_audio: bool) -> list[str]:
        """The maps (and ``-filter_complex``) of a composed command."""
        if not composition.filtered:
            return [*picture, *(sound if with_audio else [])]
        width, height = (geo.out_width, geo.out_height) if geo else (facts.width, facts.height)
        return composed(
            composition,
            video_in=video_in if video.codec else "",
            chain=chain,
            size=(width, height),
            gif=video.codec == "gif",
            audio_in=audio_in if audio.codec and with_audio else "",
            chain_a=chain_a,
        )

    limit = ["-t", _seconds(length)] if length and not composition.owns_clip else []
    tail = ["-threads", str(threads)] if threads else []
    if spec.clearmeta:
        tail += ["-map_metadata", "-1", "-map_chapters", "-1"]
    if encode and upright and facts.rotation:
        tail += ["-metadata:s:v:0", "rotate=0"]
    sound_args = (
        audio_args(replace(spec, audio=audio), facts.sample_rate) if audio.codec else ["-an"]
    )
    output = os.path.join(scratch, OUTPUT_NAME + container.extension)
    commands: list[tuple[str, ...]] = []
    if video.twopass and encode:
        # Both passes must encode the same frames: with the default frame-rate mode the
        # second (an mp4 with audio) may duplicate a frame the first (-f null) did not,
        # and x264 then fails ("Incomplete MB-tree stats file"). Timestamps pass through.
        passlog = os.path.join(scratch, PASSLOG_NAME)
        same = ["-fps_mode", "passthrough"]
        first = [*video_args(video, passno=1, passlog=passlog), *same]
        commands.append((*head, *graph(False), *limit, *first, "-an", *tail, "-f", "null", "-"))
        picture_args = [*video_args(video, passno=2, passlog=passlog), *same]
    else:
        picture_args = video_args(video) if video.codec else ["-vn"]
    commands.append(
        (
            *head, *graph(True), *limit, *picture_args, *sound_args,
            *composition.output_args, *tail,
            *_muxer_args(spec, video, options), "-f", container.muxer, output,
        )
    )  # fmt: skip
    return TranscodePlan(tuple(commands), output, seconds, content_type_for(output))


def composed(
    composition: Composition,
    *,
    video_in: str,
    chain: Sequence[str],
    size: tuple[int, int],
    gif: bool,
    audio_in: str,
    chain_a: Sequence[str],
) -> list[str]:
    """``-filter_complex`` and the maps of a composed command (``engine/graph.py``):
    ``video_in``/``audio_in`` are the source's streams (``""``: the output has none)."""
    parts: list[str] = []
    maps: list[str] = []
    if video_in:
        pad = VIDEO_SOURCE if composition.video_source else f"[{video_in}]"
        if composition.video_source:
            parts.append(composition.video_source)
        if chain:
            parts.append(f"{pad}{','.join(chain)}[vmain]")
            pad = "[vmain]"
        for number, stage in enumerate(composition.video_stages):
            out = f"[vstage{number}]"
            parts.append(stage.fragment(pad, size[0], size[1], out))
            pad = out
        if gif:
            parts.append(
                f"{pad}split[gifa][gifb];[gifa]palettegen[gifp];[gifb][gifp]paletteuse[vout]"
            )
            pad = "[vout]"
        maps += ["-map", pad if pad.startswith("[v") else video_in]
    if audio_in:
        pad = AUDIO_SOURCE if composition.audio_source else f"[{audio_in}]"
        if composition.audio_source:
            parts.append(composition.audio_source)
        if chain_a:
            parts.append(f"{pad}{','.join(chain_a)}[aout]")
            pad = "[aout]"
        maps += ["-map", pad if pad.startswith("[a") else audio_in]
    graph = ";".join(parts)
    return (["-filter_complex", graph] if graph else []) + maps


def loudness_measure(
    spec: AvtransSpec, options: AvtransOptions, facts: SourceFacts, *, input_args: Sequence[str]
) -> list[str] | None:
    """Pass 1 of ExtParam ``loudnorm``: measure the source's audio in the clip window the
    transcode reads, through the same volume filters (None when there is nothing to do: no
    ``loudnorm``, or a source without audio)."""
    if options.loudnorm is None or not facts.has_audio:
        return None
    start, length, _seconds_out = _clip(spec, options, facts)
    head = [ffmpeg.FFMPEG, "-hide_banner", "-nostdin", "-y"]
    if start:
        head += ["-ss", _seconds(start)]
    head += list(input_args)
    audio_map = f"0:{facts.audio_index}" if facts.audio_index >= 0 else "0:a:0"
    volume = [f for f in audio_filters(spec, options) if not f.startswith("aresample")]
    limit = ["-t", _seconds(length)] if length else []
    return measure_command(head, audio_map, limit, volume, options.loudnorm)


def command_text(commands: Sequence[Sequence[str]]) -> str:
    """The commands as one shell line: each shell-quoted, joined with `` && ``."""
    return " && ".join(shlex.join(command) for command in commands)
