"""Local storage: each bucket is a folder under one root.

Objects are files; their ACL and content type sit beside the tree in ``<root>/.meta``
(a name that is not a valid bucket, so no key can reach it). Writes go to a temporary file
that is renamed into place, so a reader never sees half an object.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from openkvs.storage.base import StorageError
from openkvs.storage.keys import validate_bucket, validate_key

_Filler = Callable[[IO[bytes]], object]


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

    def bucket_exists(self, bucket: str) -> bool:
        return self._bucket_dir(bucket).is_dir()

    def create_bucket(self, bucket: str) -> None:
        self._bucket_dir(bucket).mkdir(parents=True, exist_ok=True)

    def list_buckets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != ".meta")

    def object_exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def source_for(self, bucket: str, key: str) -> str:
        path = self._path(bucket, key)
        if not path.is_file():
            raise StorageError(f"/{bucket}/{key} does not exist")
        return str(path)

    def _write(self, bucket: str, key: str, fill: _Filler, acl: str, content_type: str) -> None:
        if not self.bucket_exists(bucket):
            raise StorageError(f"bucket {bucket!r} does not exist")
        path = self._path(bucket, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
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
        try:
            shutil.copyfile(self.source_for(bucket, key), dest)
        except OSError as exc:
            raise StorageError(f"cannot read /{bucket}/{key}: {exc}") from exc

    def object_info(self, bucket: str, key: str) -> dict[str, object]:
        path = self._path(bucket, key)
        meta_file = self._meta / bucket / (key + ".json")
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        return {
            "size": path.stat().st_size,
            "acl": meta.get("acl", "private"),
            "content_type": meta.get("content_type", "application/octet-stream"),
        }
