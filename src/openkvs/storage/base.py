"""The object storage interface every backend implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

ACLS = ("private", "public-read")


class StorageError(Exception):
    """The backend failed (I/O, network); callers translate it to a task or API code."""


class ObjectStorage(Protocol):
    """Buckets of objects. Keys and bucket names are validated by the caller
    (``storage/keys.py``); backends check again that nothing escapes its bucket."""

    def bucket_exists(self, bucket: str) -> bool: ...

    def create_bucket(self, bucket: str) -> None: ...

    def list_buckets(self) -> list[str]: ...

    def object_exists(self, bucket: str, key: str) -> bool: ...

    def source_for(self, bucket: str, key: str) -> str:
        """A path or URL that ffmpeg can read the object from."""
        ...

    def put_file(
        self, bucket: str, key: str, path: Path, *, acl: str, content_type: str
    ) -> None: ...

    def put_bytes(
        self, bucket: str, key: str, data: bytes, *, acl: str, content_type: str
    ) -> None: ...

    def get_file(self, bucket: str, key: str, dest: Path) -> None: ...

    def object_info(self, bucket: str, key: str) -> dict[str, object]:
        """Size, content type and ACL of an object."""
        ...
