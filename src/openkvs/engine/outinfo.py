"""``outMediainfo`` (spec §5.3.2): the description of an avtrans output, from an ffprobe of
the file that was actually written.

The key set and types are fixed (the vendor's table): ::

    {"metadata": {"rotate": "90"}?,
     "streams": [{"index": int, "codec_type": str, "codec_name": str, "bit_rate": int,
                  video: "width": int, "height": int, "r_frame_rate": str,
                  audio: "channels": int, "sample_rate": int}],
     "format": {"duration": str, "format_name": str, "size": int, "bit_rate": str}}

Choices where ffprobe and the vendor's examples differ:

- ``format_name`` is the name of the output's container among ffprobe's comma-separated
  names, chosen by the file's extension (``mov,mp4,m4a,3gp,3g2,mj2`` → ``mp4`` for an
  ``.mp4``, ``mov`` for a ``.mov``; ``matroska,webm`` → ``webm`` for a ``.webm``), else the
  first name: the vendor's examples say ``mp4`` and ``flv``.
- ``duration`` has three decimals (``"600.040"``), as in the vendor's examples.
- A stream's ``bit_rate`` that the container does not record (Matroska, WebM, FLV and
  MPEG-TS video streams) is measured: the sizes of its packets over its duration
  (:func:`packet_bytes`, one more ffprobe pass that reads packets without decoding).
  Unknown even then → 0.
- ``metadata.rotate`` is present only when the output still carries a rotation (a display
  matrix, or a ``rotate`` tag): clockwise degrees as the ``rotate`` tag of older FFmpeg
  wrote them. Transcoded pictures are turned upright, so it is normally absent
  (``"metadata": {}``).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import defaultdict
from typing import Any

from openkvs.engine import ffmpeg, sandbox
from openkvs.engine.probe import positive_seconds, probe


def _int(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number) if math.isfinite(number) else None


def format_name(names: str, extension: str) -> str:
    """The one of ffprobe's comma-separated demuxer ``names`` that ``extension`` (``.mp4``)
    names, else the first."""
    choices = [name for name in names.split(",") if name]
    wanted = extension.lower().lstrip(".")
    return wanted if wanted in choices else (choices[0] if choices else "")


def rotation(stream: dict[str, Any]) -> int:
    """Clockwise degrees (0, 90, 180, 270) a stream's display matrix or ``rotate`` tag asks
    for; 0 without either."""
    tags = stream.get("tags") or {}
    degrees = _int(tags.get("rotate")) if "rotate" in tags else None
    if degrees is None:
        for side in stream.get("side_data_list") or []:
            if "rotation" in side:
                counterclockwise = _int(side.get("rotation"))
                degrees = None if counterclockwise is None else -counterclockwise
                break
    return 0 if degrees is None else degrees % 360


def out_mediainfo(
    probe_json: dict[str, Any],
    *,
    extension: str = "",
    measured: dict[int, int] | None = None,
) -> dict[str, Any]:
    """The ``outMediainfo`` object of an output's ffprobe JSON (``-show_streams
    -show_format``). ``extension`` picks ``format_name``; ``measured`` maps a stream index to
    the bytes of its packets (:func:`packet_bytes`), used for streams whose bit rate the
    container does not record."""
    fmt = probe_json.get("format") or {}
    duration = positive_seconds(fmt.get("duration"))
    metadata: dict[str, str] = {}
    streams = []
    for stream in probe_json.get("streams") or []:
        index = _int(stream.get("index")) or 0
        codec_type = str(stream.get("codec_type", ""))
        item: dict[str, Any] = {
            "index": index,
            "codec_type": codec_type,
            "codec_name": str(stream.get("codec_name", "")),
            "bit_rate": stream_bit_rate(stream, duration, (measured or {}).get(index)),
        }
        if codec_type == "video":
            item["width"] = _int(stream.get("width")) or 0
            item["height"] = _int(stream.get("height")) or 0
            item["r_frame_rate"] = str(stream.get("r_frame_rate", "0/0"))
            degrees = rotation(stream)
            if degrees and "rotate" not in metadata:
                metadata["rotate"] = str(degrees)
        elif codec_type == "audio":
            item["channels"] = _int(stream.get("channels")) or 0
            item["sample_rate"] = _int(stream.get("sample_rate")) or 0
        streams.append(item)
    size = _int(fmt.get("size")) or 0
    bit_rate = _int(fmt.get("bit_rate"))
    if bit_rate is None:
        bit_rate = round(size * 8 / duration) if duration else 0
    return {
        "metadata": metadata,
        "streams": streams,
        "format": {
            "duration": f"{duration or 0.0:.3f}",
            "format_name": format_name(str(fmt.get("format_name", "")), extension),
            "size": size,
            "bit_rate": str(bit_rate),
        },
    }


def stream_bit_rate(
    stream: dict[str, Any], format_duration: float | None, packet_size: int | None
) -> int:
    """The stream's recorded bit rate, else its packets' bytes over its (or the file's)
    duration, else 0."""
    recorded = _int(stream.get("bit_rate"))
    if recorded is not None:
        return recorded
    duration = positive_seconds(stream.get("duration")) or format_duration
    if packet_size is None or not duration:
        return 0
    return round(packet_size * 8 / duration)


def needs_measuring(probe_json: dict[str, Any]) -> bool:
    """Whether some stream has no recorded bit rate (then :func:`packet_bytes` is worth its
    pass over the file)."""
    return any(_int(s.get("bit_rate")) is None for s in probe_json.get("streams") or [])


def packet_bytes(
    path: str, *, timeout: float, cancel: threading.Event | None = None
) -> dict[int, int]:
    """Bytes of the packets of each stream of ``path`` (one ffprobe pass reading packets,
    not decoding them; its output is summed as it comes, so memory does not grow with the
    file). Raises ``TaskError`` like ``engine.ffmpeg.stream``."""
    totals: dict[int, int] = defaultdict(int)
    pending = bytearray()

    def consume(_index: int, data: memoryview) -> None:
        pending.extend(data)
        end = pending.rfind(b"\n")
        if end < 0:
            return
        for line in bytes(pending[:end]).split(b"\n"):
            fields = dict(field.partition(b"=")[::2] for field in line.split(b"|"))
            stream, size = fields.get(b"stream_index", b""), fields.get(b"size", b"")
            if stream.isdigit() and size.isdigit():
                totals[int(stream)] += int(size)
        del pending[: end + 1]

    with sandbox.source_input(path) as opened:
        command = [
            ffmpeg.FFPROBE, "-v", "error",
            "-show_entries", "packet=stream_index,size", "-of", "compact=p=0",
            *opened.args(),
        ]  # fmt: skip
        ffmpeg.stream([command], consume, chunk_bytes=1 << 16, cancel=cancel, timeout=timeout)
    consume(0, memoryview(b"\n"))
    return dict(totals)


def describe_output(
    path: str, *, timeout: float, cancel: threading.Event | None = None
) -> dict[str, Any]:
    """The ``outMediainfo`` object of the file at ``path`` (probed through the sandbox)."""
    found = probe(path, timeout, cancel=cancel)
    measured = (
        packet_bytes(path, timeout=timeout, cancel=cancel) if needs_measuring(found) else None
    )
    return out_mediainfo(found, extension=os.path.splitext(path)[1], measured=measured)


def outinfo_text(info: dict[str, Any]) -> str:
    """``info`` as the JSON text the callback carries (compact, non-ASCII kept)."""
    return json.dumps(info, ensure_ascii=False, separators=(",", ":"))
