"""``SrcInfo`` and destination checks shared by every task-creating action."""

from __future__ import annotations

from typing import Any

from openkvs.errors import ApiError, ServiceUnavailable
from openkvs.model import User
from openkvs.service.params import case_insensitive_get, to_int
from openkvs.storage.base import AccessDenied, ObjectStorage, StorageError, Unavailable
from openkvs.storage.keys import parse_source_path
from openkvs.store.buckets import BucketStore

MAX_SOURCES = 20


def source_list(raw: Any) -> list[dict[str, Any]]:
    """``SrcInfo`` as an array of ``{"path", "index"[, "type"]}`` (an object is one item);
    keys are read in any case, ``index`` defaults to the position.

    1016 when it is neither, is empty, or an item has no string ``path``; 1017 for more
    than :data:`MAX_SOURCES` items.
    """
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise ApiError(1016, "SrcInfo must be an object or a non-empty array of objects")
    if len(items) > MAX_SOURCES:
        raise ApiError(1017, f"at most {MAX_SOURCES} sources")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(1016, f"SrcInfo[{n}] must be an object")
        path = case_insensitive_get(item, "path")
        if path is None or path == "":
            raise ApiError(1016, f"SrcInfo[{n}].path is required")
        if not isinstance(path, str):
            raise ApiError(1016, f"SrcInfo[{n}].path must be a string")
        entry: dict[str, Any] = {"path": path}
        index = case_insensitive_get(item, "index")
        entry["index"] = n if index in (None, "") else to_int(f"SrcInfo[{n}].index", index)
        kind = case_insensitive_get(item, "type")
        if isinstance(kind, str) and kind:
            entry["type"] = kind
        out.append(entry)
    for entry in out:
        parse_source_path(entry["path"])
    return out


def storage_failure(exc: StorageError, what: str) -> ApiError | ServiceUnavailable:
    """The answer for a storage failure at creation: the store refused openkvs
    (:class:`AccessDenied`: its credentials or a bucket policy) → 1013 "bucket not
    accessible"; the store cannot be reached (:class:`Unavailable`) → HTTP 503
    ``ServiceUnavailable``, which clients retry; anything else → 1013."""
    if isinstance(exc, Unavailable):
        return ServiceUnavailable(f"the object storage cannot be reached; please retry ({what})")
    return ApiError(1013, f"{what}: the object storage refused access")


def _bucket_exists(storage: ObjectStorage, bucket: str, field: str) -> None:
    """1011 for a bucket that does not exist, 1013/503 when the store cannot say."""
    try:
        exists = storage.bucket_exists(bucket)
    except StorageError as exc:
        raise storage_failure(exc, f"{field} {bucket!r}") from exc
    if not exists:
        raise ApiError(1011, f"{field} {bucket!r} does not exist")


def check_source(
    storage: ObjectStorage, buckets: BucketStore, user: User, path: str
) -> tuple[str, str]:
    """(bucket, key) of an existing source object ``user`` may read: 1011 for a missing
    bucket, 1212 for a bucket the user neither owns nor was granted, 1210 for a missing
    object (only asked once the user may read the bucket); 1013 when the store refuses
    openkvs, HTTP 503 ``ServiceUnavailable`` when it cannot be reached."""
    bucket, key = parse_source_path(path)
    _bucket_exists(storage, bucket, "source bucket")
    if not buckets.access(user.id, bucket).can_read:
        raise ApiError(1212, f"source bucket {bucket!r} is not yours and was not granted to you")
    try:
        found = storage.object_exists(bucket, key)
    except (AccessDenied, Unavailable) as exc:
        raise storage_failure(exc, path) from exc
    except StorageError as exc:  # e.g. a link inside the bucket that points outside it
        raise ApiError(1210, f"{path} does not exist") from exc
    if not found:
        raise ApiError(1210, f"{path} does not exist")
    return bucket, key


def check_destination(
    storage: ObjectStorage, buckets: BucketStore, user: User, bucket: str
) -> None:
    """1011 for a missing bucket, 1212 for one ``user`` neither owns nor was granted
    read-write access to; 1013 or 503 as :func:`check_source`."""
    _bucket_exists(storage, bucket, "DstBucket")
    if not buckets.access(user.id, bucket).can_write:
        raise ApiError(
            1212, f"DstBucket {bucket!r} is not yours and was not granted to you for writing"
        )
