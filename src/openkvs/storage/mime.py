"""The Content-Type of an object from its key's extension: the media formats openkvs
reads and writes. A fixed table, so the answer does not depend on the host's
``/etc/mime.types``; anything else is ``application/octet-stream``."""

from __future__ import annotations

from pathlib import PurePosixPath

OCTET_STREAM = "application/octet-stream"

TYPES: dict[str, str] = {
    # video
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".flv": "video/x-flv",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".avi": "video/x-msvideo",
    # audio
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    # streaming manifests and text tracks
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "application/x-subrip",
    ".ass": "text/x-ssa",
    # images
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    # documents openkvs writes (waveforms, metadata)
    ".json": "application/json",
}


def content_type_for(key: str) -> str:
    """The type of ``key`` by its extension (case-insensitive), else octet-stream."""
    return TYPES.get(PurePosixPath(key).suffix.lower(), OCTET_STREAM)
