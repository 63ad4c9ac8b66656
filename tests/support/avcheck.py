"""Independent checks of media files for black-box transcode tests.

Everything here reads an output the way a client would: ffprobe and ffmpeg for stream
properties, packets, pictures and loudness, and small parsers of the file bytes for what
ffprobe 5.1 does not report (GIF frame delays and loop count, animated WebP frames, MP4
top-level boxes, Matroska doc type, the settings x264 writes into its stream).

``Media`` wraps ``ffprobe -show_streams -show_format`` of one file::

    media = Media.of(path)
    assert media.video is not None and media.video["codec_name"] == "h264"
    assert abs(media.fps() - 25) <= 0.25
"""

from __future__ import annotations

import json
import re
import shlex
import struct
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = [
    "GifInfo",
    "Media",
    "Packet",
    "WebpInfo",
    "container_doc_type",
    "ffmpeg",
    "gif_info",
    "gray_frame",
    "half_means",
    "idet_counts",
    "mean_volume",
    "mp4_top_boxes",
    "packets",
    "psnr",
    "reproduce_command",
    "set_mp4_rotation_matrix",
    "stream_bitrate",
    "webp_info",
    "x264_options",
]

TIMEOUT = 300.0


def _run(args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{args[0]} failed ({result.returncode}): {' '.join(args)}\n"
            + result.stderr.decode(errors="replace")[-3000:]
        )
    return result


def ffmpeg(*args: str, timeout: float = TIMEOUT) -> str:
    """Run ``ffmpeg -nostdin -y -hide_banner <args>``; returns its stderr (text)."""
    result = _run(["ffmpeg", "-nostdin", "-y", "-hide_banner", *args], timeout)
    return result.stderr.decode(errors="replace")


def _ratio(text: str | None) -> float:
    if not text or text in ("0/0", "N/A"):
        return 0.0
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return 0.0


@dataclass(frozen=True)
class Media:
    """ffprobe's view of one file (the first video and the first audio stream)."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def of(cls, path: Path | str) -> Media:
        result = _run(
            [
                "ffprobe", "-v", "error", "-print_format", "json",
                "-show_streams", "-show_format", str(path),
            ],
            timeout=60,
        )  # fmt: skip
        return cls(Path(path), json.loads(result.stdout))

    @property
    def streams(self) -> list[dict[str, Any]]:
        return list(self.data.get("streams", []))

    @property
    def format(self) -> dict[str, Any]:
        return dict(self.data.get("format", {}))

    @property
    def format_name(self) -> str:
        return str(self.format.get("format_name", ""))

    @property
    def tags(self) -> dict[str, str]:
        """Container tags with lower-case names."""
        return {str(k).lower(): str(v) for k, v in self.format.get("tags", {}).items()}

    @property
    def duration(self) -> float:
        value = self.format.get("duration")
        return float(value) if value not in (None, "N/A") else 0.0

    def _first(self, codec_type: str) -> dict[str, Any] | None:
        for stream in self.streams:
            # An attached picture (cover art) is not a video stream of the media.
            cover = stream.get("disposition", {}).get("attached_pic")
            if stream.get("codec_type") == codec_type and not cover:
                return dict(stream)
        return None

    @property
    def video(self) -> dict[str, Any] | None:
        return self._first("video")

    @property
    def audio(self) -> dict[str, Any] | None:
        return self._first("audio")

    def fps(self) -> float:
        """Frame rate of the video stream: ``avg_frame_rate``, else ``r_frame_rate``."""
        video = self.video
        if video is None:
            return 0.0
        return _ratio(video.get("avg_frame_rate")) or _ratio(video.get("r_frame_rate"))

    def rotation(self) -> int:
        """Rotation of the video stream as ffprobe reports it (display matrix side data,
        counter-clockwise degrees, or a legacy ``rotate`` tag); 0 when there is none."""
        video = self.video or {}
        for side in video.get("side_data_list", []) or []:
            if "rotation" in side:
                return round(float(side["rotation"]))
        rotate = video.get("tags", {}).get("rotate")
        return int(rotate) if rotate else 0

    def has_display_matrix(self) -> bool:
        video = self.video or {}
        return any(
            side.get("side_data_type") == "Display Matrix"
            for side in video.get("side_data_list", []) or []
        ) or "rotate" in video.get("tags", {})


# --- packets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    pts: float
    duration: float
    size: int
    key: bool


def packets(path: Path | str, selector: str) -> list[Packet]:
    """The packets of stream ``selector`` (``v:0``, ``a:0``) in file order."""
    result = _run(
        [
            "ffprobe", "-v", "error", "-select_streams", selector, "-print_format", "json",
            "-show_entries", "packet=pts_time,dts_time,duration_time,size,flags", str(path),
        ],
        timeout=120,
    )  # fmt: skip
    out: list[Packet] = []
    for item in json.loads(result.stdout).get("packets", []):
        pts = item.get("pts_time", item.get("dts_time", "0"))
        duration = item.get("duration_time", "0")
        out.append(
            Packet(
                pts=float(pts) if pts not in (None, "N/A") else 0.0,
                duration=float(duration) if duration not in (None, "N/A") else 0.0,
                size=int(item.get("size", 0)),
                key="K" in str(item.get("flags", "")),
            )
        )
    return out


def stream_span(items: list[Packet]) -> float:
    """Seconds from the first packet's start to the last packet's end."""
    if not items:
        return 0.0
    start = min(p.pts for p in items)
    end = max(p.pts + p.duration for p in items)
    return end - start


def stream_bitrate(path: Path | str, selector: str) -> float:
    """Average bit rate of one stream from its packets: 8 × bytes / span (bits/s)."""
    items = packets(path, selector)
    span = stream_span(items)
    if span <= 0:
        raise AssertionError(f"{path} {selector}: no packets with timing")
    return 8 * sum(p.size for p in items) / span


# --- pictures --------------------------------------------------------------------------------


def gray_frame(path: Path | str, at: float = 0.5, *, autorotate: bool = False) -> bytes:
    """One decoded picture at ``at`` seconds as 8-bit gray, in its *coded* orientation
    unless ``autorotate`` (ffmpeg otherwise turns pictures by the rotation flag)."""
    args = [] if autorotate else ["-noautorotate"]
    result = _run(
        [
            "ffmpeg", "-v", "error", "-nostdin", *args, "-ss", f"{at:.3f}", "-i", str(path),
            "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-",
        ],
        timeout=60,
    )  # fmt: skip
    return result.stdout


def half_means(gray: bytes, width: int, height: int) -> dict[str, float]:
    """Mean brightness (0-255) of the top, bottom, left and right halves of a picture."""
    if len(gray) != width * height:
        raise AssertionError(f"picture has {len(gray)} bytes, expected {width}x{height}")
    rows = [gray[y * width : (y + 1) * width] for y in range(height)]
    half_h, half_w = height // 2, width // 2

    def mean(cells: list[bytes]) -> float:
        total = sum(sum(c) for c in cells)
        count = sum(len(c) for c in cells)
        return total / count

    return {
        "top": mean(rows[:half_h]),
        "bottom": mean(rows[height - half_h :]),
        "left": mean([r[:half_w] for r in rows]),
        "right": mean([r[width - half_w :] for r in rows]),
    }


def idet_counts(path: Path | str) -> dict[str, int]:
    """ffmpeg ``idet``'s multi-frame verdicts: counts of ``tff``, ``bff``, ``progressive``."""
    text = ffmpeg("-i", str(path), "-an", "-vf", "idet", "-f", "null", "-")
    found = re.findall(
        r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)", text
    )
    if not found:
        raise AssertionError(f"idet printed no summary for {path}")
    tff, bff, progressive = (int(v) for v in found[-1])
    return {"tff": tff, "bff": bff, "progressive": progressive}


def psnr(distorted: Path | str, reference: Path | str) -> float:
    """Average luma+chroma PSNR (dB) of ``distorted`` against ``reference`` (same size)."""
    text = ffmpeg(
        "-i", str(distorted), "-i", str(reference),
        "-lavfi", "[0:v][1:v]psnr", "-an", "-f", "null", "-",
    )  # fmt: skip
    found = re.findall(r"PSNR .*? average:([0-9.]+|inf)", text)
    if not found:
        raise AssertionError(f"psnr printed no summary for {distorted}")
    return float(found[-1])


def mean_volume(path: Path | str) -> float:
    """The first audio stream's mean volume in dB (ffmpeg ``volumedetect``)."""
    text = ffmpeg("-i", str(path), "-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-")
    found = re.findall(r"mean_volume:\s*(-?[0-9.]+|-inf) dB", text)
    if not found:
        raise AssertionError(f"volumedetect printed no mean volume for {path}")
    return float(found[-1])


def reproduce_command(command: str, source: Path | str, workdir: Path) -> Path:
    """Run a task's ``Command`` line (shell-quoted ffmpeg commands joined with `` && ``)
    again with ``bash -c`` in ``workdir``, reading the local ``source``: the argument of
    every ``-i`` becomes ``source`` and the folder of the output (the last argument of the
    last command) becomes ``workdir``, wherever it appears. Returns the new output's path."""
    commands = [shlex.split(part) for part in command.split(" && ")]
    assert commands and all(argv and argv[0] == "ffmpeg" for argv in commands), command
    output = commands[-1][-1]
    folder = str(Path(output).parent)
    rewritten = [
        [
            str(source) if i > 0 and argv[i - 1] == "-i" else arg.replace(folder, str(workdir))
            for i, arg in enumerate(argv)
        ]
        for argv in commands
    ]
    line = " && ".join(shlex.join(argv) for argv in rewritten)
    result = subprocess.run(
        ["bash", "-c", line],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{line}\n{result.stderr[-2000:]}"
    return Path(output.replace(folder, str(workdir)))


# --- bytes of the file -----------------------------------------------------------------------


def x264_options(path: Path | str) -> dict[str, str]:
    """The ``options:`` that x264 writes into the stream it encodes (an SEI message), as a
    dict (``{"keyint": "10", "rc": "crf", ...}``); ``{}`` when the file holds none.

    Read from the raw bytes: fine for MP4, Matroska and FLV, where the SEI is stored whole.
    """
    data = Path(path).read_bytes()
    start = data.find(b"x264 - core")
    if start < 0:
        return {}
    end = data.find(b"\x00", start)
    text = data[start : end if end > 0 else start + 4000].decode("latin-1")
    _, _, options = text.partition("options: ")
    result: dict[str, str] = {}
    for item in options.split():
        key, sep, value = item.partition("=")
        if sep:
            result[key] = value
    return result


def mp4_top_boxes(path: Path | str) -> list[str]:
    """Types of an MP4/QuickTime file's top-level boxes, in order."""
    data = Path(path).read_bytes()
    boxes: list[str] = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            break
        boxes.append(kind.decode("latin-1"))
        pos += size
    return boxes


def set_mp4_rotation_matrix(path: Path | str, rotation_cw: int) -> None:
    """Rewrite the first (video) ``tkhd`` matrix of an MP4 in place so players turn the
    picture ``rotation_cw`` degrees clockwise (90 or 270), as phones record portrait video.
    The track's width and height fields are not changed (they stay the coded size)."""
    data = bytearray(Path(path).read_bytes())
    pos = data.find(b"tkhd")
    if pos < 0:
        raise ValueError(f"{path} has no tkhd box")
    version = data[pos + 4]
    # type, version/flags, times/track id/duration, reserved, layer, group, volume, reserved
    matrix_at = pos + 4 + 4 + (32 if version == 1 else 20) + 16
    width = struct.unpack(">I", data[matrix_at + 36 : matrix_at + 40])[0] >> 16
    height = struct.unpack(">I", data[matrix_at + 40 : matrix_at + 44])[0] >> 16
    one = 1 << 16
    if rotation_cw == 90:  # (x, y) -> (height - y, x)
        matrix = (0, one, 0, -one, 0, 0, height * one, 0, 1 << 30)
    elif rotation_cw == 270:  # (x, y) -> (y, width - x)
        matrix = (0, -one, 0, one, 0, 0, 0, width * one, 1 << 30)
    else:
        raise ValueError("rotation_cw must be 90 or 270")
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", *matrix)
    Path(path).write_bytes(bytes(data))


def container_doc_type(path: Path | str) -> str:
    """The EBML DocType of a Matroska/WebM file (``matroska`` or ``webm``); "" if none."""
    head = Path(path).read_bytes()[:256]
    pos = head.find(b"\x42\x82")
    if pos < 0:
        return ""
    size_byte = head[pos + 2]
    if not size_byte & 0x80:
        return ""
    size = size_byte & 0x7F
    return head[pos + 3 : pos + 3 + size].decode("latin-1")


@dataclass(frozen=True)
class GifInfo:
    width: int
    height: int
    loop: int | None  # NETSCAPE2.0 loop count; None when the block is absent (play once)
    delays: list[int] = field(default_factory=list)  # centiseconds, one per frame


def _gif_sub_blocks(data: bytes, pos: int) -> tuple[bytes, int]:
    chunks: list[bytes] = []
    while True:
        size = data[pos]
        pos += 1
        if size == 0:
            return b"".join(chunks), pos
        chunks.append(data[pos : pos + size])
        pos += size


def gif_info(path: Path | str) -> GifInfo:
    """Logical screen size, loop count and per-frame delays of a GIF, from its blocks."""
    data = Path(path).read_bytes()
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise AssertionError(f"{path} is not a GIF (starts {data[:6]!r})")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13
    if flags & 0x80:
        pos += 3 * (2 ** ((flags & 0x07) + 1))
    loop: int | None = None
    delays: list[int] = []
    pending_delay = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension
            label = data[pos + 1]
            body, pos = _gif_sub_blocks(data, pos + 2)
            if label == 0xF9 and len(body) >= 4:  # graphic control
                pending_delay = struct.unpack("<H", body[1:3])[0]
            elif label == 0xFF and body[:11] == b"NETSCAPE2.0" and len(body) >= 14:
                loop = struct.unpack("<H", body[12:14])[0]
            continue
        if block == 0x2C:  # image descriptor
            local = data[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 * (2 ** ((local & 0x07) + 1))
            pos += 1  # LZW minimum code size
            _, pos = _gif_sub_blocks(data, pos)
            delays.append(pending_delay)
            pending_delay = 0
            continue
        raise AssertionError(f"{path}: unexpected GIF block 0x{block:02x} at {pos}")
    return GifInfo(width, height, loop, delays)


@dataclass(frozen=True)
class WebpInfo:
    width: int
    height: int
    animated: bool
    loop: int | None  # ANIM loop count (0 = infinite); None for a still image
    durations: list[int] = field(default_factory=list)  # milliseconds, one per frame
    lossless: list[bool] = field(default_factory=list)  # per frame: VP8L (True) or VP8


def _riff_chunks(data: bytes, pos: int, end: int) -> list[tuple[bytes, bytes]]:
    chunks: list[tuple[bytes, bytes]] = []
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def webp_info(path: Path | str) -> WebpInfo:
    """Canvas size, loop count and frames (duration, lossless or not) of a WebP file."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise AssertionError(f"{path} is not a WebP file (starts {data[:12]!r})")
    chunks = _riff_chunks(data, 12, len(data))
    kinds = [k for k, _ in chunks]
    if kinds and kinds[0] == b"VP8X":
        body = chunks[0][1]
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        animated = bool(body[0] & 0x02)
        loop: int | None = None
        durations: list[int] = []
        lossless: list[bool] = []
        for kind, chunk in chunks[1:]:
            if kind == b"ANIM":
                loop = struct.unpack("<H", chunk[4:6])[0]
            elif kind == b"ANMF":
                durations.append(int.from_bytes(chunk[12:15], "little"))
                inner = [k for k, _ in _riff_chunks(chunk, 16, len(chunk))]
                lossless.append(b"VP8L" in inner)
        if not animated:
            lossless = [b"VP8L" in kinds]
        return WebpInfo(width, height, animated, loop, durations, lossless)
    media = Media.of(path)
    video = media.video or {}
    return WebpInfo(
        int(video.get("width", 0)),
        int(video.get("height", 0)),
        False,
        None,
        [],
        [b"VP8L" in kinds],
    )
