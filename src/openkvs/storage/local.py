"""Local storage: each bucket is a folder under one root.

Objects are files; their ACL and content type sit beside the tree in ``<root>/.meta``
(a name that is not a valid bucket, so no key can reach it). Writes go to a temporary file
that is renamed into place, so a reader never sees half an object. ffmpeg reads the files
in place (:meth:`LocalStorage.source_for` is their path); ``/objects`` serves them itself
(:meth:`LocalStorage.presigned_url` is None).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from openkvs.storage.base import NotFound, ObjectInfo, StorageError
from openkvs.storage.keys import validate_bucket, validate_key

_Filler = Callable[[IO[bytes]], object]
#: Temporary names of writes in progress (never listed).
_UPLOAD_PREFIX = ".upload-"


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._meta = self.root / ".meta"

    def _bucket_dir(self, bucket: str) -> Path:
        validate_bucket(bucket)
        return self.root / bucket

    def _path(self, bucket: str, key: str) -> Path:
        validate_key(key)
        base = self._bucket_dir(bucket)
        path = (base / key).resolve()
        if not path.is_relative_to(base.resolve()) or path == base.resolve():
            raise StorageError(f"key {key!r} escapes bucket {bucket!r}")
        return path

    def _existing(self, bucket: str, key: str) -> Path:
        """The object's file; :class:`NotFound` for a missing bucket or object."""
        validate_key(key)
        if not self.bucket_exists(bucket):
            raise NotFound(f"bucket {bucket!r} does not exist")
        path = self._path(bucket, key)
        if not path.is_file():
            raise NotFound(f"/{bucket}/{key} does not exist")
        return path

    def is_local(self) -> bool:
        return True

    def bucket_exists(self, bucket: str) -> bool:
        return self._bucket_dir(bucket).is_dir()

    def create_bucket(self, bucket: str) -> None:
        try:
            self._bucket_dir(bucket).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create bucket {bucket!r}: {exc}") from exc

    def list_buckets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != ".meta")

    def object_exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def source_for(self, bucket: str, key: str) -> str:
        return str(self._existing(bucket, key))

    def presigned_url(self, bucket: str, key: str, expires: int) -> str | None:
        return None

    def _write(self, bucket: str, key: str, fill: _Filler, acl: str, content_type: str) -> None:
        if not self.bucket_exists(bucket):
            raise NotFound(f"bucket {bucket!r} does not exist")
        path = self._path(bucket, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_UPLOAD_PREFIX)
            try:
                with os.fdopen(fd, "wb") as out:
                    fill(out)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            meta = self._meta / bucket / (key + ".json")
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"acl": acl, "content_type": content_type}))
        except OSError as exc:
            raise StorageError(f"cannot write /{bucket}/{key}: {exc}") from exc

    def put_file(self, bucket: str, key: str, path: Path, *, acl: str, content_type: str) -> None:
        def fill(out: IO[bytes]) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._write(bucket, key, fill, acl, content_type)

    def put_bytes(self, bucket: str, key: str, data: bytes, *, acl: str, content_type: str) -> None:
        self._write(bucket, key, lambda out: out.write(data), acl, content_type)

    def get_file(self, bucket: str, key: str, dest: Path) -> None:
        source = self._existing(bucket, key)
        try:
            shutil.copyfile(source, dest)
        except OSError as exc:
            raise StorageError(f"cannot read /{bucket}/{key}: {exc}") from exc

    def read_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        source = self._existing(bucket, key)
        try:
            with open(source, "rb") as file:
                file.seek(max(0, start))
                return file.read(max(0, length))
        except OSError as exc:
            raise StorageError(f"cannot read /{bucket}/{key}: {exc}") from exc

    def object_info(self, bucket: str, key: str) -> ObjectInfo:
        path = self._existing(bucket, key)
        meta_file = self._meta / bucket / (key + ".json")
        try:
            status = path.stat()
        except FileNotFoundError as exc:  # removed meanwhile
            raise NotFound(f"/{bucket}/{key} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot read /{bucket}/{key}: {exc}") from exc
        try:
            meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        except (OSError, ValueError):  # unreadable metadata: the defaults (private)
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        return ObjectInfo(
            key=key,
            size=status.st_size,
            content_type=str(meta.get("content_type") or "application/octet-stream"),
            acl="public-read" if meta.get("acl") == "public-read" else "private",
            modified=status.st_mtime,
            etag=f"{status.st_size:x}-{status.st_mtime_ns:x}",
        )

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.bucket_exists(bucket):
            raise NotFound(f"bucket {bucket!r} does not exist")
        base = self._bucket_dir(bucket)
        # Only the folder the prefix ends in can hold matching keys.
        start = base / prefix.rpartition("/")[0] if "/" in prefix else base
        found: list[tuple[bytes, ObjectInfo]] = []
        for folder, dirs, files in os.walk(start):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in files:
                full = Path(folder, name)
                key = full.relative_to(base).as_posix()
                if name.startswith(_UPLOAD_PREFIX) or not key.startswith(prefix):
                    continue
                try:
                    status = full.stat()
                except OSError:  # removed meanwhile, or a dangling link
                    continue
                if not full.is_file() or full.is_symlink():
                    continue
                info = ObjectInfo(
                    key=key,
                    size=status.st_size,
                    modified=status.st_mtime,
                    etag=f"{status.st_size:x}-{status.st_mtime_ns:x}",
                )
                found.append((key.encode("utf-8", "surrogateescape"), info))
        found.sort(key=lambda item: item[0])
        return iter([info for _, info in found])

    def delete(self, bucket: str, key: str) -> None:
        if not self.bucket_exists(bucket):
            raise NotFound(f"bucket {bucket!r} does not exist")
        path = self._path(bucket, key)
        try:
            path.unlink(missing_ok=True)
            (self._meta / bucket / (key + ".json")).unlink(missing_ok=True)
        except IsADirectoryError:  # a "folder" of keys is not an object
            return
        except OSError as exc:
            raise StorageError(f"cannot delete /{bucket}/{key}: {exc}") from exc
        # Keys have no folders in S3: the ones left empty go too (never the bucket itself).
        base = self._bucket_dir(bucket).resolve()
        folder = path.parent
        while folder != base and folder.is_relative_to(base):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
