"""Serving objects: ``GET`` and ``HEAD /objects/<bucket>/<key>``.

A ``public-read`` object is served to anyone; a private one only with a valid presigned
query (``service/presign.py``), else 403. These answers are plain HTTP, not KVS envelopes:

* 200 with the whole object, or 206 with one byte range (``Range: bytes=a-b``, ``a-`` or
  ``-n``) and its ``Content-Range``. ``Accept-Ranges: bytes`` on every answer.
* A Range header that is malformed, names several ranges, or comes with an ``If-Range``
  that no longer matches, is ignored: the whole object, 200 (as RFC 9110 allows).
* 416 with ``Content-Range: bytes */<size>`` when the range starts past the end.
* 304 for an ``If-None-Match`` that matches the ``ETag``.
* 400 for a name that cannot be a bucket or key, 403 for a private object without a valid
  unexpired signature, 404 for a missing bucket or object. Error bodies are JSON:
  ``{"Error": {"Code": ..., "Message": ...}}``.

With local storage the file is opened once and streamed from that descriptor in chunks:
an object replaced meanwhile (uploads are renamed into place) is served whole, old or new,
never mixed.

With S3 storage openkvs does not carry the bytes: after the same checks (the object exists,
it is public or the presigned query is valid), a ``GET`` is answered ``302 Found`` to a
presigned URL of the store (``OPENKVS_S3_PUBLIC_ENDPOINT_URL``, else the endpoint), which
serves ranges and conditional requests itself. That URL expires when the openkvs URL does
(a private object) or after :data:`PUBLIC_REDIRECT_SECONDS` (a public one), and the redirect
is ``Cache-Control: no-store``. A ``HEAD`` is answered by openkvs from the object's
description (a presigned GET URL does not work for HEAD). A store that cannot be reached →
503 ``ServiceUnavailable``; one that refuses openkvs → 502 ``BadGateway``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import formatdate
from typing import BinaryIO

import anyio
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from openkvs.errors import ApiError
from openkvs.service.context import Services
from openkvs.service.presign import PREFIX, PURPOSE, verify
from openkvs.storage.base import (
    AccessDenied,
    NotFound,
    ObjectInfo,
    ObjectStorage,
    StorageError,
    Unavailable,
)
from openkvs.storage.keys import validate_bucket, validate_key
from openkvs.storage.mime import content_type_for

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
#: How long the store's URL a public object is redirected to works (a long film plays
#: from it by range requests until the end).
PUBLIC_REDIRECT_SECONDS = 12 * 3600
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})", re.ASCII | re.IGNORECASE)
_COMMON = {
    "Accept-Ranges": "bytes",
    # Anyone may fetch what the URL allows (players on other origins read with fetch/XHR).
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Accept-Ranges, Content-Length, Content-Range, ETag",
    # Objects are user content: never sniffed, never run as a page of this origin.
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
}


class ObjectError(Exception):
    """An answer other than the object: HTTP status, a short code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Unsatisfiable(Exception):
    """The range starts at or past the end of the object (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range ``header`` asks of an object of ``size`` bytes, as (first, last)
    inclusive; None to answer the whole object (no header, a malformed one, or several
    ranges); :class:`Unsatisfiable` when it starts at or past the end."""
    if header is None:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None:
        return None
    first, last = found.group(1), found.group(2)
    if not first:  # bytes=-n: the last n bytes
        if not last:
            return None
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable()
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable()
    return start, min(end, size - 1)


@dataclass(frozen=True)
class Opened:
    """An object opened for serving, with what its headers say."""

    file: BinaryIO
    size: int
    etag: str
    last_modified: str
    content_type: str
    public: bool


def _error(exc: ObjectError, extra: dict[str, str] | None = None) -> Response:
    body = json.dumps({"Error": {"Code": exc.code, "Message": exc.message}}).encode("utf-8")
    return Response(
        body,
        status_code=exc.status,
        headers={**_COMMON, **(extra or {})},
        media_type="application/json",
    )


def open_object(storage: ObjectStorage, bucket: str, key: str) -> Opened:
    """The object, opened; :class:`ObjectError` 400 or 404 when it cannot be.

    It is read from the path ``source_for`` gives: a local file (a backend whose
    ``is_local()`` is True; remote ones go through :func:`describe_object` and a redirect)."""
    try:
        validate_bucket(bucket)
        validate_key(key)
    except ApiError as exc:
        raise ObjectError(400, "InvalidObjectName", exc.message) from exc
    if not storage.bucket_exists(bucket):
        raise ObjectError(404, "NoSuchBucket", f"bucket {bucket!r} does not exist")
    missing = ObjectError(404, "NoSuchKey", f"/{bucket}/{key} does not exist")
    try:
        path = storage.source_for(bucket, key)
        # O_NONBLOCK: a FIFO put in place meanwhile must not hang the request.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (StorageError, OSError, UnicodeError) as exc:
        raise missing from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise missing
        os.set_blocking(fd, True)
        try:
            info: ObjectInfo | None = storage.object_info(bucket, key)
        except (StorageError, OSError, ValueError):  # unreadable metadata: private
            info = None
        file = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return Opened(
        file=file,
        size=status.st_size,
        etag=f'"{status.st_size:x}-{status.st_mtime_ns:x}"',
        last_modified=formatdate(status.st_mtime, usegmt=True),
        content_type=_content_type(info, key),
        public=info is not None and info.acl == "public-read",
    )


def _content_type(info: ObjectInfo | None, key: str) -> str:
    stored = info.content_type if info is not None else "application/octet-stream"
    return content_type_for(key) if stored == "application/octet-stream" else stored


def describe_object(storage: ObjectStorage, bucket: str, key: str) -> ObjectInfo:
    """The object of a remote store (S3); :class:`ObjectError` 400, 404, 502 or 503."""
    try:
        validate_bucket(bucket)
        validate_key(key)
    except ApiError as exc:
        raise ObjectError(400, "InvalidObjectName", exc.message) from exc
    try:
        if not storage.bucket_exists(bucket):
            raise ObjectError(404, "NoSuchBucket", f"bucket {bucket!r} does not exist")
        return storage.object_info(bucket, key)
    except NotFound as exc:
        raise ObjectError(404, "NoSuchKey", f"/{bucket}/{key} does not exist") from exc
    except Unavailable as exc:
        log.warning("object_storage_unavailable", extra={"error": str(exc)})
        raise ObjectError(
            503, "ServiceUnavailable", "the object storage cannot be reached; please retry"
        ) from exc
    except (AccessDenied, StorageError) as exc:
        log.error("object_storage_refused", extra={"error": str(exc)})
        raise ObjectError(502, "BadGateway", "the object storage refused the request") from exc


async def _chunks(file: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await anyio.to_thread.run_sync(file.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(file.read, min(CHUNK, remaining))
            if not chunk:  # the file shrank under us: end short, the client sees it
                log.warning("object_truncated", extra={"missing_bytes": remaining})
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        file.close()


def object_routes(services: Services) -> list[Route]:
    """The routes that serve objects; put them before any catch-all route."""
    signing_key = services.sealer.derive(PURPOSE)
    storage = services.storage

    def authorised(opened: Opened, request: Request, bucket: str, key: str) -> bool:
        if opened.public:
            return True
        query = request.query_params
        return verify(
            signing_key, bucket, key, query.get("Expires"), query.get("Signature"), time.time()
        )

    async def serve(request: Request) -> Response:
        bucket = request.path_params["bucket"]
        key = request.path_params["key"]
        if not storage.is_local():
            return await serve_remote(request, bucket, key)
        try:
            opened = await run_in_threadpool(open_object, storage, bucket, key)
        except ObjectError as exc:
            return _error(exc)
        served = False
        try:
            if not authorised(opened, request, bucket, key):
                return _error(
                    ObjectError(
                        403, "AccessDenied", "the object is private: use a valid presigned URL"
                    )
                )
            response = _answer(request, opened)
            served = isinstance(response, StreamingResponse)
            return response
        finally:
            if not served:
                opened.file.close()

    async def serve_remote(request: Request, bucket: str, key: str) -> Response:
        try:
            info = await run_in_threadpool(describe_object, storage, bucket, key)
        except ObjectError as exc:
            return _error(exc)
        public = info.acl == "public-read"
        query = request.query_params
        now = time.time()
        if not public and not verify(
            signing_key, bucket, key, query.get("Expires"), query.get("Signature"), now
        ):
            return _error(
                ObjectError(403, "AccessDenied", "the object is private: use a valid presigned URL")
            )
        headers = {
            **_COMMON,
            "ETag": f'"{info.etag}"',
            "Last-Modified": formatdate(info.modified, usegmt=True),
            "Cache-Control": "public, no-cache" if public else "private, no-cache",
        }
        if request.headers.get("if-none-match") in (headers["ETag"], "*"):
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            headers["Content-Type"] = _content_type(info, key)
            headers["Content-Length"] = str(info.size)
            return Response(status_code=200, headers=headers)
        # verify() accepted Expires: it is a number of seconds in the future.
        lifetime = PUBLIC_REDIRECT_SECONDS if public else int(query["Expires"]) - int(now)
        try:
            url = await run_in_threadpool(storage.presigned_url, bucket, key, max(60, lifetime))
        except StorageError as exc:
            log.error("object_presign_failed", extra={"error": str(exc)})
            return _error(ObjectError(502, "BadGateway", "the object storage refused the request"))
        if url is None:  # a remote backend without URLs: nothing to redirect to
            return _error(ObjectError(501, "NotImplemented", "this storage serves no objects"))
        return Response(
            status_code=302,
            headers={**_COMMON, "Location": url, "Cache-Control": "no-store"},
        )

    return [Route(PREFIX + "/{bucket}/{key:path}", serve, methods=["GET", "HEAD"])]


def _answer(request: Request, opened: Opened) -> Response:
    headers = {
        **_COMMON,
        "Content-Type": opened.content_type,
        "ETag": opened.etag,
        "Last-Modified": opened.last_modified,
        "Cache-Control": "public, no-cache" if opened.public else "private, no-cache",
    }
    if request.headers.get("if-none-match") in (opened.etag, "*"):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range not in (opened.etag, opened.last_modified):
        wanted = None  # the client's copy is stale: it gets the whole new object
    try:
        found = parse_range(wanted, opened.size)
    except Unsatisfiable:
        return _error(
            ObjectError(416, "InvalidRange", f"the object has {opened.size} bytes"),
            {"Content-Range": f"bytes */{opened.size}"},
        )
    status, start, length = 200, 0, opened.size
    if found is not None:
        first, last = found
        status, start, length = 206, first, last - first + 1
        headers["Content-Range"] = f"bytes {first}-{last}/{opened.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers)
    return StreamingResponse(
        _chunks(opened.file, start, length),
        status_code=status,
        headers=headers,
        background=BackgroundTask(opened.file.close),
    )
