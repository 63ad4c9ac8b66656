"""Rules for bucket names, object keys and ``/bucket/key`` source paths.

They hold for every backend, so a request is refused the same way whether objects live in
a local folder or in S3: a key can never name something outside its bucket.
"""

from __future__ import annotations

import re

from openkvs.errors import ApiError

#: The longest object key, in UTF-8 bytes (S3's limit).
MAX_KEY_BYTES = 1024
#: The longest ``/bucket/key`` source path, in UTF-8 bytes (1213 over it).
MAX_SOURCE_PATH = 1024
#: The longest segment of a key (between slashes), in UTF-8 bytes. Filesystems take 255
#: bytes per name, and local storage keeps an object's metadata as ``<name>.json``.
MAX_SEGMENT_BYTES = 250

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def validate_bucket(name: object, field: str = "bucket") -> str:
    """The bucket name, or 1011 when it cannot be one (S3 naming rules)."""
    if not isinstance(name, str) or not _BUCKET.fullmatch(name) or ".." in name:
        raise ApiError(1011, f"{field} {name!r:.80} is not a valid bucket name")
    return name


def validate_key(key: object, field: str = "object key") -> str:
    """The object key, or 1014 when it is empty, absolute, too long (in all, or in one
    segment), not valid Unicode (a lone surrogate), or could escape its bucket (``.``/``..``
    segments, empty segments, backslashes, NUL and control bytes)."""
    if not isinstance(key, str) or not key:
        raise ApiError(1014, f"{field} is empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ApiError(1014, f"{field} contains a lone UTF-16 surrogate") from None
    if size > MAX_KEY_BYTES:
        raise ApiError(1014, f"{field} is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise ApiError(1014, f"{field} must not start with '/'")
    if "\\" in key or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise ApiError(1014, f"{field} contains a backslash or a control character")
    segments = key.split("/")
    if any(seg in {"", ".", ".."} for seg in segments[:-1]) or segments[-1] in {".", ".."}:
        raise ApiError(1014, f"{field} contains an empty, '.' or '..' segment")
    if segments[-1] == "":
        raise ApiError(1014, f"{field} names a folder, not an object")
    if any(len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES for seg in segments):
        raise ApiError(1014, f"{field} has a segment longer than {MAX_SEGMENT_BYTES} bytes")
    return key


def parse_source_path(path: object) -> tuple[str, str]:
    """``/bucket/key`` → (bucket, key). 1016 for a malformed path, 1213 for a too long one
    (over :data:`MAX_SOURCE_PATH` bytes), 1011/1014 for a bad bucket or key."""
    if not isinstance(path, str) or not path:
        raise ApiError(1016, "path must be a non-empty string")
    if len(path) > MAX_SOURCE_PATH or len(path.encode("utf-8", "surrogatepass")) > MAX_SOURCE_PATH:
        raise ApiError(1213, f"path is longer than {MAX_SOURCE_PATH} bytes")
    if not path.startswith("/"):
        raise ApiError(1016, f"path {path!r} must look like /bucket/key")
    bucket, sep, key = path[1:].partition("/")
    if not sep or not key:
        raise ApiError(1016, f"path {path!r} must look like /bucket/key")
    return validate_bucket(bucket, "source bucket"), validate_key(key, "source key")
