"""HLS outputs in the console's player: an m3u8 rewritten so that every file it names can be
fetched by the browser.

Outputs are usually private, and a presigned URL covers one object: the segments, keys and
variant playlists an m3u8 names by relative path would be refused. The console serves the
playlist itself (``/console/api/tasks/<TaskID>/hls?key=<m3u8 key>``, with the session) and
replaces each relative URI with a presigned ``/objects`` URL of the object it names, or,
for a nested playlist, with the same console URL for that playlist.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from starlette.responses import Response

from openkvs.console import html as h
from openkvs.console.context import Console, Refused, Req, Viewer
from openkvs.console.tasks_view import LINK_SECONDS, find_task
from openkvs.errors import ApiError
from openkvs.service.presign import PURPOSE, presigned_path
from openkvs.storage.base import StorageError
from openkvs.storage.keys import validate_key

#: The largest playlist read.
MAX_PLAYLIST_BYTES = 4 * 1024 * 1024
_URI = re.compile(r'URI="([^"]*)"')


def resolve(base_key: str, uri: str) -> str | None:
    """The key a relative ``uri`` of the playlist ``base_key`` names; None for an absolute
    URL or a path that leaves the bucket (left as written)."""
    if not uri or "://" in uri or uri.startswith(("/", "data:")):
        return None
    path = uri.split("?", 1)[0].split("#", 1)[0]
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base_key), path))
    if joined.startswith("..") or joined in (".", ""):
        return None
    return joined


def rewrite(
    text: str, base_key: str, sign: Callable[[str], str], nested: Callable[[str], str]
) -> str:
    """``text`` with each relative URI replaced: playlists (``.m3u8``) by ``nested(key)``,
    anything else by ``sign(key)``."""

    def target(uri: str) -> str:
        key = resolve(base_key, uri)
        if key is None:
            return uri
        return nested(key) if key.lower().endswith(".m3u8") else sign(key)

    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            out.append(target(stripped))
        elif stripped.startswith("#") and 'URI="' in stripped:
            out.append(_URI.sub(lambda m: f'URI="{target(m.group(1))}"', line))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def playlist(console: Console, viewer: Viewer, req: Req) -> Response:
    """``GET /console/api/tasks/<TaskID>/hls?key=<key>``: a playlist in the task's
    destination bucket, rewritten (404 unless the viewer may see the task and read the
    bucket)."""
    task = find_task(console, viewer, req.path["task_id"])
    bucket = str(task.request.get("DstBucket", ""))
    key = req.query.get("key", "")
    try:
        validate_key(key)
    except ApiError:
        raise Refused(404, "no such playlist") from None
    readable = console.services.buckets.access(viewer.user.id, bucket).can_read
    if not bucket or not key.lower().endswith(".m3u8") or not (readable or viewer.admin):
        raise Refused(404, "no such playlist")
    storage = console.services.storage
    try:
        size = storage.object_info(bucket, key).size
        if size > MAX_PLAYLIST_BYTES:
            raise Refused(413, "the playlist is too large")
        text = storage.read_range(bucket, key, 0, size).decode("utf-8", "replace")
    except StorageError:
        raise Refused(404, "no such playlist") from None
    signing = console.services.sealer.derive(PURPOSE)
    expires = int(console.services.clock()) + LINK_SECONDS
    body = rewrite(
        text,
        key,
        lambda k: presigned_path(signing, bucket, k, expires),
        lambda k: h.url("api", "tasks", task.task_id, "hls", key=k),
    )
    return Response(
        body, headers={**h.SECURITY_HEADERS}, media_type="application/vnd.apple.mpegurl"
    )
