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

Size limits. A file can carry tags of any size (``ffmpeg -metadata comment=<5 MB>``), and
the text is stored with the task and answered, possibly 100 at a time (GetTaskMetaInfo), so
it is bounded where it is made:

* every string ffprobe printed (tag values and names above all) is cut to
  :data:`MAX_VALUE_BYTES` bytes of UTF-8, on a character boundary, without a marker;
* a ``tags`` object keeps its first :data:`MAX_TAGS` tags;
* text that is not valid Unicode (a lone surrogate ffprobe passed through) becomes ``?``;
* if the text is still over :data:`MAX_METAINFO_BYTES`, every ``tags`` object is emptied;
  if it is still over (thousands of streams), the probe fails with 2010.

ffprobe's own output is read up to ``engine.probe.MAX_PROBE_OUTPUT`` bytes (2010 beyond).
"""

from __future__ import annotations

import json
from typing import Any

from openkvs.errors import TaskError

#: Stream types that make a file "media" for avinfo.
AV_TYPES = frozenset({"audio", "video"})
#: The longest string (tag value, tag name, any field) kept, in UTF-8 bytes.
MAX_VALUE_BYTES = 1024
#: Tags kept per ``tags`` object (a stream's or the format's).
MAX_TAGS = 64
#: The largest metainfo text, in UTF-8 bytes.
MAX_METAINFO_BYTES = 128 * 1024


def _cut(text: str) -> str:
    if text.isascii():
        return text[:MAX_VALUE_BYTES]
    data = text.encode("utf-8", "replace")  # a lone surrogate becomes "?"
    return data[:MAX_VALUE_BYTES].decode("utf-8", "ignore")


def _bounded(value: Any, *, keep_tags: bool) -> Any:
    """A copy of ``value`` within the limits of the module docstring."""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, list):
        return [_bounded(item, keep_tags=keep_tags) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name == "tags" and isinstance(item, dict):
                tags = list(item.items())[:MAX_TAGS] if keep_tags else []
                out[name] = {_cut(k): _bounded(v, keep_tags=keep_tags) for k, v in tags}
            else:
                out[_cut(name)] = _bounded(item, keep_tags=keep_tags)
        return out
    return value


def metainfo_text(probe_json: dict[str, Any], *, source: str) -> str:
    """``probe_json`` (a parsed ffprobe result) as compact JSON, with ``format.filename``
    (when ffprobe printed one) replaced by ``source``, the client's ``/bucket/key``, and
    within the size limits of the module docstring (2010 when it cannot be).

    ``probe_json`` is not modified. Key order and value types are those of the parsed
    document; ``ensure_ascii=False`` keeps tags in UTF-8 as ffprobe wrote them.
    """
    for keep_tags in (True, False):
        doc = _bounded(probe_json, keep_tags=keep_tags)
        fmt = doc.get("format")
        if isinstance(fmt, dict) and "filename" in fmt:
            # Assigning an existing key keeps its position, so the order stays ffprobe's.
            fmt["filename"] = source
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode("utf-8", "replace")) <= MAX_METAINFO_BYTES:
            return text
    raise TaskError(2010, f"the media description is larger than {MAX_METAINFO_BYTES} bytes")


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
