"""The object storage interface every backend implements (local, S3, in-memory).

Errors are typed so that callers can tell the cases apart: :class:`NotFound` (the bucket or
the object does not exist: 1011/1210 at creation, 2041/2033 at run time),
:class:`AccessDenied` (the store refused our credentials: 1013/1212 at creation) and
:class:`Unavailable` (the store could not be reached or failed: the operation may work
later). Every other failure is a plain :class:`StorageError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ACLS = ("private", "public-read")


class StorageError(Exception):
    """The backend failed (I/O, network); callers translate it to a task or API code."""


class NotFound(StorageError):
    """The bucket or the object does not exist."""


class AccessDenied(StorageError):
    """The store refused the request (credentials, bucket policy)."""


class Unavailable(StorageError):
    """The store could not be reached or answered with a server error; retrying may work."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object as the store describes it."""

    key: str
    size: int
    content_type: str = "application/octet-stream"
    acl: str = "private"  # what openkvs serves it with: "private" or "public-read"
    modified: float = 0.0  # Unix seconds
    etag: str = ""  # an opaque validator that changes with the content, without quotes


class ObjectStorage(Protocol):
    """Buckets of objects. Keys and bucket names are validated by the caller
    (``storage/keys.py``); backends check again that nothing escapes its bucket."""

    def bucket_exists(self, bucket: str) -> bool: ...

    def create_bucket(self, bucket: str) -> None:
        """Make the bucket, or adopt it when it exists already (and is ours to use)."""
        ...

    def list_buckets(self) -> list[str]:
        """The names of the buckets, sorted."""
        ...

    def object_exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists (False in a bucket that does not)."""
        ...

    def source_for(self, bucket: str, key: str) -> str:
        """A path or URL that ffmpeg can read the object from (a local path, or a presigned
        URL valid long enough for a task). :class:`NotFound` when it does not exist."""
        ...

    def is_local(self) -> bool:
        """Whether :meth:`source_for` gives local paths (else URLs)."""
        ...

    def put_file(self, bucket: str, key: str, path: Path, *, acl: str, content_type: str) -> None:
        """Write the file as the object (whole or not at all), with ``acl`` (one of
        :data:`ACLS`) and ``content_type``; :class:`NotFound` when the bucket does not
        exist."""
        ...

    def put_bytes(self, bucket: str, key: str, data: bytes, *, acl: str, content_type: str) -> None:
        """:meth:`put_file` of bytes in memory."""
        ...

    def get_file(self, bucket: str, key: str, dest: Path) -> None:
        """Copy the object to the local file ``dest``; :class:`NotFound` when missing."""
        ...

    def read_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start`` (fewer at the end of the object, none
        from its end on); :class:`NotFound` when it does not exist."""
        ...

    def object_info(self, bucket: str, key: str) -> ObjectInfo:
        """Size, content type, ACL and time of an object; :class:`NotFound` if missing."""
        ...

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """The bucket's objects whose keys start with ``prefix``, in key order (of their
        UTF-8 bytes, as S3 lists them). Only ``key``, ``size``, ``modified`` and ``etag``
        are filled in (an S3 listing carries no more): ask :meth:`object_info` for the
        rest. :class:`NotFound` when the bucket does not exist."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; nothing happens when it does not exist (:class:`NotFound`
        when the bucket does not)."""
        ...

    def presigned_url(self, bucket: str, key: str, expires: int) -> str | None:
        """A URL anyone may GET the object from for ``expires`` seconds, or None when the
        backend has no such URLs (local storage: openkvs serves the objects itself)."""
        ...
