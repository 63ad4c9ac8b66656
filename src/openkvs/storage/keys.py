"""Rules for bucket names, object keys and ``/bucket/key`` source paths.

They hold for every backend, so a request is refused the same way whether objects live in
a local folder or in S3: a key can never name something outside its bucket.
"""

from __future__ import annotations

import re

from openkvs.errors import ApiError

MAX_KEY_BYTES = 1024
MAX_SOURCE_PATH = 1024

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def validate_bucket(name: object, field: str = "bucket") -> str:
    """The bucket name, or 1011 when it cannot be one (S3 naming rules)."""
    if not isinstance(name, str) or not _BUCKET.match(name) or ".." in name:
        raise ApiError(1011, f"{field} {name!r} is not a valid bucket name")
    return name


def validate_key(key: object, field: str = "object key") -> str:
    """The object key, or 1014 when it is empty, absolute, too long, or could escape its
    bucket (``.``/``..`` segments, empty segments, backslashes, NUL and control bytes)."""
    if not isinstance(key, str) or not key:
        raise ApiError(1014, f"{field} is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
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
    return key


def parse_source_path(path: object) -> tuple[str, str]:
    """``/bucket/key`` → (bucket, key). 1016 for a malformed path, 1213 for a too long one,
    1011/1014 for a bad bucket or key."""
    if not isinstance(path, str) or not path:
        raise ApiError(1016, "path must be a non-empty string")
    if len(path) > MAX_SOURCE_PATH:
        raise ApiError(1213, f"path is longer than {MAX_SOURCE_PATH} characters")
    if not path.startswith("/"):
        raise ApiError(1016, f"path {path!r} must look like /bucket/key")
    bucket, sep, key = path[1:].partition("/")
    if not sep or not key:
        raise ApiError(1016, f"path {path!r} must look like /bucket/key")
    return validate_bucket(bucket, "source bucket"), validate_key(key, "source key")
