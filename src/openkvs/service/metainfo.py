"""FetchMetaInfo (spec §2.14): probe an object now, without creating a task."""

from __future__ import annotations

from typing import Any

from openkvs.engine.metainfo import metainfo_text, require_av_streams
from openkvs.engine.probe import probe
from openkvs.errors import ApiError, TaskError
from openkvs.model import User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.sources import check_source, storage_failure
from openkvs.storage.base import NotFound, StorageError

#: The caller waits for the answer (SDK read timeout 10 s, §1.7): ffprobe gets that long.
FETCH_TIMEOUT = 10.0
#: ffprobe could not be started: the server's fault, answered as InternalError, not 1016.
_SERVER_FAULTS = frozenset({2013})


def fetch_meta_info(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    """``{"MetaInfo": <text>}`` for ``SrcPath`` (``/bucket/key``, or ``bucket/key``).

    The text is the one an avinfo task of the same object reports (``engine.metainfo``).
    Errors: 1000 no SrcPath; 1016/1213/1011/1014 a malformed path, too long, bad bucket
    name or key; 1011 no such bucket; 1210 no such object; 1016 ffprobe failed, ran over
    :data:`FETCH_TIMEOUT`, found no audio or video stream, or described it in more than
    the size limits of ``engine/metainfo.py`` (the detail says which). More probes at once
    than ``OPENKVS_FETCH_META_LIMIT`` (or ``OPENKVS_FETCH_META_USER_LIMIT`` for this user)
    → HTTP 429 ``Throttling``, without running ffprobe.
    """
    raw = p.required_str(params, "SrcPath")
    path = raw if raw.startswith("/") else "/" + raw
    bucket, key = check_source(services.storage, services.buckets, user, path)
    try:
        source = services.storage.source_for(bucket, key)
    except NotFound as exc:  # removed since check_source looked
        raise ApiError(1210, f"{path} does not exist") from exc
    except StorageError as exc:  # unreachable (503) or refused (1013), as at creation
        raise storage_failure(exc, path) from exc
    assert services.fetch_slots is not None  # Services.__post_init__ sets it
    try:
        with services.fetch_slots.slot(user.id):
            found = probe(source, FETCH_TIMEOUT)
            require_av_streams(found)
            text = metainfo_text(found, source=f"/{bucket}/{key}")
    except TaskError as exc:
        if exc.code in _SERVER_FAULTS:
            raise
        if exc.code == 2041:  # removed between the existence check and ffprobe
            raise ApiError(1210, f"{path} does not exist") from exc
        # ffprobe names the file it opened: the server's path (or a signed URL) becomes the
        # client's own name for the object.
        why = (exc.detail or exc.message).replace(source, path)
        raise ApiError(1016, f"{path} cannot be probed: {why}") from exc
    return {"MetaInfo": text}
