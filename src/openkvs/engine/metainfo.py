"""The avinfo ``metainfo`` text (spec §5.3.1): ffprobe's own JSON, made compact.

The §5.3.1 schema is ffprobe's ``-show_streams -show_format`` output, so clients get exactly
that: the same keys in the same order, the same value types (``"size"`` stays a string,
``"level"`` an int) and formats (``"duration": "5.312000"``), non-ASCII tags as UTF-8. Nothing
is added, renamed or dropped. The single change is ``format.filename``: ffprobe prints the
name it opened, which for us is the server's local file (it would reveal the data folder) or,
with S3 storage, a pre-signed URL (it would reveal a valid signature). A cloud service does
not show either, so the field keeps its place and names the object as the client knows it,
``/bucket/key``.

Used by both the avinfo executor (callback, GetTaskMetaInfo) and FetchMetaInfo, so the two
give the same string for the same object.
"""

from __future__ import annotations

import json
from typing import Any

from openkvs.errors import TaskError

#: Stream types that make a file "media" for avinfo.
AV_TYPES = frozenset({"audio", "video"})


def metainfo_text(probe_json: dict[str, Any], *, source: str) -> str:
    """``probe_json`` (a parsed ffprobe result) as compact JSON, with ``format.filename``
    (when ffprobe printed one) replaced by ``source``, the client's ``/bucket/key``.

    ``probe_json`` is not modified. Key order and value types are those of the parsed
    document; ``ensure_ascii=False`` keeps tags in UTF-8 as ffprobe wrote them.
    """
    doc = probe_json
    fmt = probe_json.get("format")
    if isinstance(fmt, dict) and "filename" in fmt:
        # Assigning an existing key keeps its position, so the order stays ffprobe's.
        doc = {**probe_json, "format": {**fmt, "filename": source}}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def require_av_streams(probe_json: dict[str, Any]) -> None:
    """2058 when ffprobe read the file but found no audio or video stream in it.

    §6.2's 2058 ("sniffer result has AV headers but no audio and video data") is the spec's
    code for "probe of a file without A/V data": a container ffprobe understands whose
    streams are all subtitles or data, or that has no stream at all (an ffmetadata text,
    an empty Matroska). Pictures count as video (ffprobe reports them so).
    """
    streams = probe_json.get("streams") or []
    types = sorted({str(s.get("codec_type")) for s in streams if isinstance(s, dict)})
    if not AV_TYPES.intersection(types):
        found = ", ".join(types) if types else "no stream at all"
        raise TaskError(2058, f"no audio or video stream ({found})")
