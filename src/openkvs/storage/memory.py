"""An in-memory object storage for unit tests: the whole Protocol, no disk, no network.

It follows the same rules as the real backends (names validated by ``storage/keys.py``,
:class:`NotFound` for a missing bucket or object, keys listed in UTF-8 byte order), so the
contract tests (``tests/unit/test_storage_contract.py``) run unchanged against it.

Two things differ by nature:

* :meth:`MemoryStorage.source_for` must give ffmpeg something to open: it writes the
  object to a file in a private temporary folder (one file per object and version, made
  on first use and removed by :meth:`MemoryStorage.close`) and returns its path, so
  :meth:`is_local` is True. Unit tests of logic rarely call it.
* :meth:`MemoryStorage.presigned_url` is None: nothing serves the objects over HTTP.

:meth:`MemoryStorage.fail` makes the next calls raise a given error (e.g. :class:`Unavailable`),
to test how callers retry and translate storage failures.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from openkvs.storage.base import NotFound, ObjectInfo, StorageError
from openkvs.storage.keys import validate_bucket, validate_key


@dataclass(frozen=True)
class _Object:
    data: bytes
    content_type: str
    acl: str
    modified: float
    etag: str


class MemoryStorage:
    """Buckets of objects in a dict, safe to use from several threads."""

    def __init__(self) -> None:
        self._buckets: dict[str, dict[str, _Object]] = {}
        self._lock = threading.RLock()
        self._faults: list[StorageError] = []
        self._spool: Path | None = None

    # -- test hooks ----------------------------------------------------------------------

    def fail(self, error: StorageError, times: int = 1) -> None:
        """Make the next ``times`` calls (of any method that reaches the store) raise
        ``error``."""
        with self._lock:
            self._faults.extend([error] * times)

    def close(self) -> None:
        """Remove the files :meth:`source_for` wrote."""
        with self._lock:
            spool, self._spool = self._spool, None
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)

    def _check_fault(self) -> None:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            raise fault

    # -- lookups -------------------------------------------------------------------------

    def _bucket(self, bucket: str) -> dict[str, _Object]:
        validate_bucket(bucket)
        self._check_fault()
        found = self._buckets.get(bucket)
        if found is None:
            raise NotFound(f"bucket {bucket!r} does not exist")
        return found

    def _object(self, bucket: str, key: str) -> _Object:
        validate_key(key)
        with self._lock:
            found = self._bucket(bucket).get(key)
        if found is None:
            raise NotFound(f"/{bucket}/{key} does not exist")
        return found

    # -- the Protocol --------------------------------------------------------------------

    def is_local(self) -> bool:
        return True

    def bucket_exists(self, bucket: str) -> bool:
        try:
            with self._lock:
                self._bucket(bucket)
        except NotFound:
            return False
        return True

    def create_bucket(self, bucket: str) -> None:
        validate_bucket(bucket)
        self._check_fault()
        with self._lock:
            self._buckets.setdefault(bucket, {})

    def list_buckets(self) -> list[str]:
        self._check_fault()
        with self._lock:
            return sorted(self._buckets)

    def object_exists(self, bucket: str, key: str) -> bool:
        try:
            self._object(bucket, key)
        except NotFound:
            return False
        return True

    def source_for(self, bucket: str, key: str) -> str:
        found = self._object(bucket, key)
        with self._lock:
            if self._spool is None:
                self._spool = Path(tempfile.mkdtemp(prefix="openkvs-memory-"))
            spool = self._spool
        name = hashlib.sha256(f"{bucket}/{key}/{found.etag}".encode()).hexdigest()[:32]
        path = spool / (name + Path(key).suffix[:16])
        if not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(found.data)
            tmp.replace(path)
        return str(path)

    def put_file(self, bucket: str, key: str, path: Path, *, acl: str, content_type: str) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        self.put_bytes(bucket, key, data, acl=acl, content_type=content_type)

    def put_bytes(self, bucket: str, key: str, data: bytes, *, acl: str, content_type: str) -> None:
        validate_key(key)
        stored = _Object(
            data=bytes(data),
            content_type=content_type,
            acl=acl,
            modified=time.time(),
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        )
        with self._lock:
            self._bucket(bucket)[key] = stored

    def get_file(self, bucket: str, key: str, dest: Path) -> None:
        found = self._object(bucket, key)
        try:
            Path(dest).write_bytes(found.data)
        except OSError as exc:
            raise StorageError(f"cannot write {dest}: {exc}") from exc

    def read_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        found = self._object(bucket, key)
        start = max(0, start)
        return found.data[start : start + max(0, length)]

    def object_info(self, bucket: str, key: str) -> ObjectInfo:
        found = self._object(bucket, key)
        return ObjectInfo(
            key=key,
            size=len(found.data),
            content_type=found.content_type or "application/octet-stream",
            acl=found.acl,
            modified=found.modified,
            etag=found.etag,
        )

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = [(k, o) for k, o in self._bucket(bucket).items() if k.startswith(prefix)]
        items.sort(key=lambda item: item[0].encode("utf-8"))
        return iter(
            [
                ObjectInfo(key=k, size=len(o.data), modified=o.modified, etag=o.etag)
                for k, o in items
            ]
        )

    def delete(self, bucket: str, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._bucket(bucket).pop(key, None)

    def presigned_url(self, bucket: str, key: str, expires: int) -> str | None:
        return None
