"""S3-compatible object storage through boto3: AWS S3, KS3, MinIO, Ceph RGW, Garage.

Names. The openkvs bucket ``media`` is the S3 bucket ``<prefix>media``
(``OPENKVS_S3_BUCKET_PREFIX``); :meth:`S3Storage.list_buckets` shows only the buckets with
the prefix, without it. Keys are the same in both.

Reads. ffmpeg and ffprobe read a source through a presigned GET URL
(:meth:`S3Storage.source_for`), valid for the task's time limit plus a margin, with HTTP
range requests: a probe, a snapshot or a seek reads only the parts it needs, and no source
is downloaded first (S3 answers ranges, so no ffmpeg input is "non-seekable").
``source_for`` asks the store first (HEAD), so a source that is gone is :class:`NotFound`
before ffmpeg starts.

Writes. Objects up to ``multipart_threshold`` bytes go up in one PUT, bigger ones as
multipart uploads in parts of ``part_size`` bytes (boto3's transfer manager, 4 parts at
once). The ACL asked for (``DstAcl``) is sent as ``x-amz-acl`` (unless ``send_acl`` is off,
for stores without ACLs) and kept in the object's metadata ``x-amz-meta-openkvs-acl``:
that record decides who ``/objects`` serves the object to. The content type is the
object's ``Content-Type``.

Errors. Every boto3/botocore failure is translated once, by :func:`translate`: missing
bucket or key (``NoSuchBucket``, ``NoSuchKey``, 404) → :class:`NotFound`; refused
(``AccessDenied``, ``InvalidAccessKeyId``, ``SignatureDoesNotMatch``, 403, no credentials)
→ :class:`AccessDenied`; cannot connect, timed out, throttled or a 5xx answer →
:class:`Unavailable`; anything else → :class:`StorageError`. botocore itself tries each
request up to ``max_attempts`` times (its "standard" retry mode, with backoff) before
that.

Processes. The boto3 clients are made on first use in each process (``serve`` forks its API
processes after the storage was opened: a connection must never be shared across a fork).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from openkvs.config import Settings
from openkvs.storage.base import AccessDenied, NotFound, ObjectInfo, StorageError, Unavailable
from openkvs.storage.keys import validate_bucket, validate_key

MiB = 1024 * 1024
#: S3's smallest part (all but the last part of a multipart upload).
MIN_PART_SIZE = 5 * MiB
#: The longest a SigV4 presigned URL may be valid.
MAX_PRESIGN_SECONDS = 7 * 86400
#: How much longer than the task's time limit a source URL stays valid (the time before
#: the job starts its clock, a slow first byte).
SOURCE_URL_MARGIN = 900
#: The longest wait for a connection (a store that does not answer at all fails soon).
MAX_CONNECT_SECONDS = 10.0
#: The metadata that records the ACL openkvs was asked for (``x-amz-meta-openkvs-acl``).
ACL_METADATA = "openkvs-acl"
_ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"

_NOT_FOUND_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "NotFound", "404", "NoSuchUpload"})
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidToken",
        "ExpiredToken",
        "RequestTimeTooSkewed",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "500",
        "502",
        "503",
        "504",
    }
)


def translate(exc: BaseException, what: str) -> StorageError:
    """The storage error for a boto3/botocore failure of ``what`` (see the module doc)."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
        exc = exc.__context__  # boto3 wraps the real answer of a failed upload
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        text = f"{what}: {code or status} {error.get('Message') or ''}".rstrip()
        if code in _NOT_FOUND_CODES or status == 404:
            return NotFound(text)
        if code in _DENIED_CODES or status == 403:
            return AccessDenied(text)
        if code in _UNAVAILABLE_CODES or status >= 500 or status == 429:
            return Unavailable(text)
        return StorageError(text)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return AccessDenied(f"{what}: {exc}")
    if isinstance(exc, BotoConnectionError | HTTPClientError | RetriesExceededError):
        return Unavailable(f"{what}: {exc}")
    if isinstance(exc, BotoCoreError | OSError):
        return StorageError(f"{what}: {exc}")
    return StorageError(f"{what}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class S3Config:
    """How to reach the store (the ``OPENKVS_S3_*`` settings, in bytes and seconds)."""

    endpoint_url: str = ""  # "": AWS S3 of the region
    public_endpoint_url: str = ""  # for URLs given to clients; "": endpoint_url
    region: str = "us-east-1"
    access_key_id: str = ""  # "" (with the secret): boto3's own credential chain
    secret_access_key: str = field(default="", repr=False)
    addressing_style: str = "path"  # or "virtual"
    bucket_prefix: str = ""
    multipart_threshold: int = 64 * MiB
    part_size: int = 64 * MiB
    send_acl: bool = True
    source_url_seconds: int = 3600 + SOURCE_URL_MARGIN
    timeout: float = 30.0
    max_attempts: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Config:
        threshold = settings.s3_multipart_mb * MiB
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            region=settings.s3_region or "us-east-1",
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            addressing_style=settings.s3_addressing_style,
            bucket_prefix=settings.s3_bucket_prefix,
            multipart_threshold=threshold,
            part_size=max(threshold, MIN_PART_SIZE),
            send_acl=settings.s3_acl,
            source_url_seconds=min(
                MAX_PRESIGN_SECONDS, int(settings.task_timeout) + SOURCE_URL_MARGIN
            ),
            timeout=settings.s3_timeout,
        )

    def describe(self) -> str:
        """Where the store is, for people (never the secret)."""
        where = self.endpoint_url or f"AWS S3 {self.region}"
        prefix = f", bucket prefix {self.bucket_prefix!r}" if self.bucket_prefix else ""
        return f"s3, {where} ({self.addressing_style}-style{prefix})"


class S3Storage:
    """The object storage of one S3-compatible store (see the module doc)."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._clients: dict[tuple[int, bool], Any] = {}
        self._transfer = TransferConfig(
            multipart_threshold=max(1, config.multipart_threshold),
            multipart_chunksize=max(1, config.part_size),
            max_concurrency=4,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        return cls(S3Config.from_settings(settings))

    # -- clients and names ---------------------------------------------------------------

    def _client(self, public: bool = False) -> Any:
        """This process's client (``public``: for URLs given to clients)."""
        slot = (os.getpid(), public)
        with self._lock:
            client = self._clients.get(slot)
            if client is None:
                client = self._make_client(public)
                self._clients = {k: v for k, v in self._clients.items() if k[0] == slot[0]}
                self._clients[slot] = client
            return client

    def _make_client(self, public: bool) -> Any:
        config = self.config
        endpoint = (config.public_endpoint_url if public else "") or config.endpoint_url
        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=config.region,
            aws_access_key_id=config.access_key_id or None,
            aws_secret_access_key=config.secret_access_key or None,
            config=BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": config.addressing_style},
                retries={"mode": "standard", "max_attempts": config.max_attempts},
                connect_timeout=min(config.timeout, MAX_CONNECT_SECONDS),
                read_timeout=config.timeout,
                max_pool_connections=32,
                # Checksums only where S3 requires them: many S3-compatible stores refuse
                # the CRC headers newer botocore versions add by default.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def _name(self, bucket: str) -> str:
        """The S3 name of an openkvs bucket; :class:`NotFound` when it cannot exist."""
        validate_bucket(bucket)
        name = self.config.bucket_prefix + bucket
        if len(name) > 63:
            raise NotFound(f"bucket {bucket!r} cannot exist: {name!r} is over 63 characters")
        return name

    def _call(self, what: str, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client(), operation)(**kwargs)
        except Exception as exc:
            raise translate(exc, what) from exc

    # -- buckets -------------------------------------------------------------------------

    def is_local(self) -> bool:
        return False

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._call(f"bucket {bucket!r}", "head_bucket", Bucket=self._name(bucket))
        except NotFound:
            return False
        return True

    def create_bucket(self, bucket: str) -> None:
        """Create the S3 bucket, or adopt it when it exists and we may use it."""
        if self.bucket_exists(bucket):
            return
        name = self._name(bucket)
        what = f"create bucket {name!r}"
        region = self.config.region
        try:
            if region and region != "us-east-1":
                try:
                    self._client().create_bucket(
                        Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
                    )
                    return
                except ClientError as exc:  # stores that know no such location
                    if _code(exc) not in {
                        "InvalidLocationConstraint",
                        "IllegalLocationConstraintException",
                    }:
                        raise
            self._client().create_bucket(Bucket=name)
        except ClientError as exc:
            if _code(exc) == "BucketAlreadyOwnedByYou":
                return
            if _code(exc) == "BucketAlreadyExists":
                raise StorageError(f"{what}: the name is taken by another account") from exc
            raise translate(exc, what) from exc
        except Exception as exc:
            raise translate(exc, what) from exc

    def list_buckets(self) -> list[str]:
        answer = self._call("list buckets", "list_buckets")
        prefix = self.config.bucket_prefix
        names = (str(b["Name"]) for b in answer.get("Buckets", []))
        return sorted(n[len(prefix) :] for n in names if n.startswith(prefix) and n != prefix)

    # -- objects -------------------------------------------------------------------------

    def _head(self, bucket: str, key: str) -> dict[str, Any]:
        validate_key(key)
        answer: dict[str, Any] = self._call(
            f"/{bucket}/{key}", "head_object", Bucket=self._name(bucket), Key=key
        )
        return answer

    def object_exists(self, bucket: str, key: str) -> bool:
        try:
            self._head(bucket, key)
        except NotFound:
            return False
        return True

    def source_for(self, bucket: str, key: str) -> str:
        self._head(bucket, key)
        return self._presign(self._client(), bucket, key, self.config.source_url_seconds)

    def presigned_url(self, bucket: str, key: str, expires: int) -> str | None:
        validate_key(key)
        return self._presign(self._client(public=True), bucket, key, expires)

    def _presign(self, client: Any, bucket: str, key: str, expires: int) -> str:
        try:
            url: str = client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._name(bucket), "Key": key},
                ExpiresIn=max(1, min(MAX_PRESIGN_SECONDS, int(expires))),
            )
        except Exception as exc:
            raise translate(exc, f"presign /{bucket}/{key}") from exc
        return url

    def _extra(self, acl: str, content_type: str) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "ContentType": content_type or "application/octet-stream",
            "Metadata": {ACL_METADATA: acl},
        }
        if self.config.send_acl:
            extra["ACL"] = acl
        return extra

    def put_file(self, bucket: str, key: str, path: Path, *, acl: str, content_type: str) -> None:
        validate_key(key)
        name = self._name(bucket)
        try:
            self._client().upload_file(
                str(path),
                name,
                key,
                ExtraArgs=self._extra(acl, content_type),
                Config=self._transfer,
            )
        except Exception as exc:
            raise translate(exc, f"write /{bucket}/{key}") from exc

    def put_bytes(self, bucket: str, key: str, data: bytes, *, acl: str, content_type: str) -> None:
        validate_key(key)
        self._call(
            f"write /{bucket}/{key}",
            "put_object",
            Bucket=self._name(bucket),
            Key=key,
            Body=data,
            **self._extra(acl, content_type),
        )

    def get_file(self, bucket: str, key: str, dest: Path) -> None:
        validate_key(key)
        name = self._name(bucket)
        try:
            self._client().download_file(name, key, str(dest), Config=self._transfer)
        except Exception as exc:
            raise translate(exc, f"read /{bucket}/{key}") from exc

    def read_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        validate_key(key)
        start = max(0, start)
        if length <= 0:
            self._head(bucket, key)
            return b""
        what = f"read /{bucket}/{key}"
        try:
            answer = self._client().get_object(
                Bucket=self._name(bucket), Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
            data: bytes = answer["Body"].read()
        except ClientError as exc:
            if _code(exc) == "InvalidRange":  # from the end of the object on
                return b""
            raise translate(exc, what) from exc
        except Exception as exc:
            raise translate(exc, what) from exc
        return data[:length]

    def object_info(self, bucket: str, key: str) -> ObjectInfo:
        head = self._head(bucket, key)
        acl = (head.get("Metadata") or {}).get(ACL_METADATA) or self._acl_of(bucket, key)
        modified = head.get("LastModified")
        return ObjectInfo(
            key=key,
            size=int(head.get("ContentLength") or 0),
            content_type=str(head.get("ContentType") or "application/octet-stream"),
            acl="public-read" if acl == "public-read" else "private",
            modified=modified.timestamp() if modified is not None else 0.0,
            etag=str(head.get("ETag") or "").strip('"'),
        )

    def _acl_of(self, bucket: str, key: str) -> str:
        """The ACL of an object openkvs did not write: public-read when everyone may read
        it, else (or when the store cannot tell) private."""
        try:
            answer = self._call(
                f"ACL of /{bucket}/{key}", "get_object_acl", Bucket=self._name(bucket), Key=key
            )
        except StorageError:
            return "private"
        for grant in answer.get("Grants", []):
            grantee = grant.get("Grantee") or {}
            if grantee.get("URI") == _ALL_USERS and grant.get("Permission") in {
                "READ",
                "FULL_CONTROL",
            }:
                return "public-read"
        return "private"

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        name = self._name(bucket)
        what = f"list /{bucket}/{prefix}"
        try:  # the first page now: a missing bucket is an error of this call
            paginator = self._client().get_paginator("list_objects_v2")
            pages = iter(paginator.paginate(Bucket=name, Prefix=prefix))
            first = next(pages, None)
        except Exception as exc:
            raise translate(exc, what) from exc
        return self._listed(first, pages, what)

    def _listed(
        self, first: dict[str, Any] | None, pages: Iterator[dict[str, Any]], what: str
    ) -> Iterator[ObjectInfo]:
        page = first
        while page is not None:
            for item in page.get("Contents", []):
                modified = item.get("LastModified")
                yield ObjectInfo(
                    key=str(item["Key"]),
                    size=int(item.get("Size") or 0),
                    modified=modified.timestamp() if modified is not None else 0.0,
                    etag=str(item.get("ETag") or "").strip('"'),
                )
            try:
                page = next(pages, None)
            except Exception as exc:
                raise translate(exc, what) from exc

    def delete(self, bucket: str, key: str) -> None:
        validate_key(key)
        self._call(f"delete /{bucket}/{key}", "delete_object", Bucket=self._name(bucket), Key=key)


def _code(exc: ClientError) -> str:
    return str((exc.response.get("Error") or {}).get("Code") or "")
