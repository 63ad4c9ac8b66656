"""ffprobe: the raw stream/format description of a source, and its first audio stream."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any

from openkvs.engine import ffmpeg, sandbox
from openkvs.errors import TaskError

#: The most ffprobe output read (a few KB for ordinary media): beyond it the probe fails with
#: 2010 at once. Huge tags within it are cut by ``engine/metainfo.py``.
MAX_PROBE_OUTPUT = 8 * 1024 * 1024


def probe(
    source: str, timeout: float = 60, *, cancel: threading.Event | None = None
) -> dict[str, Any]:
    """ffprobe's JSON (``-show_streams -show_format``) for ``source``, unchanged.

    ``source`` is opened through :func:`sandbox.source_input`: a source that is not a single
    media file (a playlist, a manifest, a list...) → 2037 with a detail saying its format is
    not accepted. ffprobe failing otherwise → :func:`ffmpeg.error_from_stderr`; running
    over ``timeout`` → 3187 (sniff time out); ``cancel`` set → 2005; output that is not a
    JSON object → 2410; more than :data:`MAX_PROBE_OUTPUT` bytes of it → 2010.
    ``format.filename`` is ``source``, the name ffprobe was asked about.
    """
    command = [ffmpeg.FFPROBE, "-v", "error", "-of", "json", "-show_streams", "-show_format"]
    with sandbox.source_input(source) as opened:
        try:
            out = ffmpeg.run(
                [*command, *opened.args()],
                timeout=timeout,
                cancel=cancel,
                timeout_code=3187,
                max_output=MAX_PROBE_OUTPUT,
            )
        except TaskError as exc:
            raise opened.explain(exc) from exc
    try:
        data = json.loads(out)
    except ValueError as exc:
        raise TaskError(2410, f"ffprobe output is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TaskError(2410, "ffprobe output is not a JSON object")
    fmt = data.get("format")
    if isinstance(fmt, dict) and fmt.get("filename") == opened.url:
        fmt["filename"] = source  # ffprobe printed the link it was given
    return data


def first_video(probe_json: dict[str, Any]) -> dict[str, Any] | None:
    """The first video stream of ffprobe's JSON; cover art (an ``attached_pic``) is not
    video. None when there is none."""
    return next(
        (
            s
            for s in probe_json.get("streams") or []
            if isinstance(s, dict)
            and s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )


@dataclass(frozen=True)
class AudioInfo:
    """What the engine needs to know about the audio stream it decodes."""

    sample_rate: int
    channels: int
    duration: float  # seconds; 0.0 when neither the stream nor the container says
    codec_name: str
    format_name: str
    stream_index: int  # absolute index, for ``-map 0:<index>``


def positive_seconds(value: Any) -> float | None:
    """A duration or time ffprobe printed, when it is a finite number above 0, else None."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def audio_info(probe_json: dict[str, Any]) -> AudioInfo:
    """The first audio stream of a :func:`probe` result; none (or an unusable one) → 2058.

    Duration is the stream's own when it has one, else the container's.
    """
    streams = probe_json.get("streams") or []
    fmt = probe_json.get("format") or {}
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise TaskError(2058, "no audio stream")
    sample_rate, channels = _int(audio.get("sample_rate")), _int(audio.get("channels"))
    if sample_rate <= 0 or channels <= 0:
        raise TaskError(2058, f"audio stream without sample rate or channels: {audio!r:.200}")
    duration = (
        positive_seconds(audio.get("duration")) or positive_seconds(fmt.get("duration")) or 0.0
    )
    return AudioInfo(
        sample_rate=sample_rate,
        channels=channels,
        duration=duration,
        codec_name=str(audio.get("codec_name", "")),
        format_name=str(fmt.get("format_name", "")),
        stream_index=_int(audio.get("index")),
    )
