"""One contract for every object storage: local folders, the in-memory fake, and S3 (moto's
S3 server on a random port). The same test runs against each, so a caller can rely on the
Protocol whatever ``OPENKVS_STORAGE`` says."""

from __future__ import annotations

import random
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from tests.support.moto_s3 import MotoS3, moto_s3, unique_prefix
from tests.support.server import free_port

from openkvs.errors import ApiError
from openkvs.storage.base import (
    AccessDenied,
    NotFound,
    ObjectStorage,
    StorageError,
    Unavailable,
)
from openkvs.storage.local import LocalStorage
from openkvs.storage.memory import MemoryStorage
from openkvs.storage.s3 import MiB, S3Config, S3Storage, translate

__all__ = ["moto_s3"]  # the fixture, imported for the tests below

#: Uploads over 1 MiB go in parts (S3's smallest part is 5 MiB: a 5.5 MiB file has two).
THRESHOLD = 1 * MiB


@pytest.fixture(params=["local", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStorage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "buckets")
    elif request.param == "memory":
        memory = MemoryStorage()
        yield memory
        memory.close()
    else:
        server: MotoS3 = request.getfixturevalue("moto_s3")
        yield S3Storage(
            server.config(
                bucket_prefix=unique_prefix(), multipart_threshold=THRESHOLD, part_size=5 * MiB
            )
        )


def _fetch(location: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """The bytes behind what ``source_for`` gave: a local path or a URL."""
    if "://" not in location:
        return 200, Path(location).read_bytes()
    request = urllib.request.Request(location, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status), bytes(answer.read())


def test_buckets(storage: ObjectStorage) -> None:
    assert storage.list_buckets() == []
    assert not storage.bucket_exists("media")
    storage.create_bucket("media")
    storage.create_bucket("media")  # again: adopted, nothing changes
    storage.create_bucket("out.2")
    assert storage.bucket_exists("media")
    assert storage.list_buckets() == ["media", "out.2"]
    with pytest.raises(ApiError) as info:
        storage.bucket_exists("No_Such")
    assert info.value.code == 1011


def test_put_get_info_and_source(storage: ObjectStorage, tmp_path: Path) -> None:
    storage.create_bucket("media")
    data = bytes(range(256)) * 40
    storage.put_bytes("media", "in/a b+é.bin", data, acl="public-read", content_type="x/y")
    assert storage.object_exists("media", "in/a b+é.bin")
    assert not storage.object_exists("media", "in/a")
    assert not storage.object_exists("nobucket", "in/a b+é.bin")

    info = storage.object_info("media", "in/a b+é.bin")
    assert (info.key, info.size, info.content_type, info.acl) == (
        "in/a b+é.bin",
        len(data),
        "x/y",
        "public-read",
    )
    assert info.etag and '"' not in info.etag and info.modified > 0

    dest = tmp_path / "copy.bin"
    storage.get_file("media", "in/a b+é.bin", dest)
    assert dest.read_bytes() == data

    # What ffmpeg is given reads the object, by ranges too (a URL answers 206).
    location = storage.source_for("media", "in/a b+é.bin")
    assert ("://" not in location) == storage.is_local()
    assert _fetch(location) == (200, data)
    if not storage.is_local():
        assert _fetch(location, {"Range": "bytes=10-19"}) == (206, data[10:20])

    # Rewriting replaces content, type and ACL; the validator changes with the content.
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"new content")
    storage.put_file("media", "in/a b+é.bin", source, acl="private", content_type="video/mp4")
    again = storage.object_info("media", "in/a b+é.bin")
    assert (again.size, again.content_type, again.acl) == (11, "video/mp4", "private")
    assert again.etag != info.etag


def test_read_range(storage: ObjectStorage) -> None:
    storage.create_bucket("media")
    data = random.Random(3).randbytes(1000)
    storage.put_bytes("media", "r.bin", data, acl="private", content_type="x/y")
    assert storage.read_range("media", "r.bin", 0, 10) == data[:10]
    assert storage.read_range("media", "r.bin", 500, 100) == data[500:600]
    assert storage.read_range("media", "r.bin", 995, 100) == data[995:]
    assert storage.read_range("media", "r.bin", 1000, 10) == b""
    assert storage.read_range("media", "r.bin", 5, 0) == b""
    with pytest.raises(NotFound):
        storage.read_range("media", "missing.bin", 0, 10)


def test_list_by_prefix_in_byte_order(storage: ObjectStorage) -> None:
    storage.create_bucket("media")
    keys = ["a/2", "a/1", "a/b/3", "ab", "b", "z.mp4", "é.mp4", "A.mp4"]
    for n, key in enumerate(keys):
        storage.put_bytes("media", key, b"x" * n, acl="private", content_type="x/y")
    listed = list(storage.list_objects("media"))
    assert [o.key for o in listed] == ["A.mp4", "a/1", "a/2", "a/b/3", "ab", "b", "z.mp4", "é.mp4"]
    assert {o.key: o.size for o in listed} == {key: n for n, key in enumerate(keys)}
    assert [o.key for o in storage.list_objects("media", "a/")] == ["a/1", "a/2", "a/b/3"]
    assert [o.key for o in storage.list_objects("media", "a")] == ["a/1", "a/2", "a/b/3", "ab"]
    assert list(storage.list_objects("media", "nothing/")) == []


def test_delete(storage: ObjectStorage) -> None:
    storage.create_bucket("media")
    storage.put_bytes("media", "d/x.json", b"{}", acl="private", content_type="x/y")
    storage.put_bytes("media", "d/y.json", b"{}", acl="private", content_type="x/y")
    storage.delete("media", "d/x.json")
    storage.delete("media", "d/x.json")  # gone already: nothing happens
    assert not storage.object_exists("media", "d/x.json")
    assert [o.key for o in storage.list_objects("media")] == ["d/y.json"]
    storage.delete("media", "d/y.json")
    assert list(storage.list_objects("media")) == []
    with pytest.raises(NotFound):
        storage.delete("nobucket", "d/y.json")


def test_not_found_is_typed(storage: ObjectStorage, tmp_path: Path) -> None:
    storage.create_bucket("media")
    source = tmp_path / "f"
    source.write_bytes(b"1")
    for call in (
        lambda: storage.object_info("media", "missing"),
        lambda: storage.object_info("nobucket", "missing"),
        lambda: storage.source_for("media", "missing"),
        lambda: storage.get_file("media", "missing", tmp_path / "out"),
        lambda: storage.put_bytes("nobucket", "k", b"", acl="private", content_type="x/y"),
        lambda: storage.put_file("nobucket", "k", source, acl="private", content_type="x/y"),
        lambda: list(storage.list_objects("nobucket")),
    ):
        with pytest.raises(NotFound):
            call()


def test_keys_are_checked_by_every_backend(storage: ObjectStorage) -> None:
    storage.create_bucket("media")
    for key in ("../outside", "/abs", "a//b", ""):
        with pytest.raises(ApiError) as info:
            storage.object_exists("media", key)
        assert info.value.code == 1014


def test_big_objects_round_trip(storage: ObjectStorage, tmp_path: Path) -> None:
    storage.create_bucket("media")
    data = random.Random(5).randbytes(5 * MiB + MiB // 2)
    source = tmp_path / "big.mp4"
    source.write_bytes(data)
    storage.put_file("media", "big.mp4", source, acl="public-read", content_type="video/mp4")
    info = storage.object_info("media", "big.mp4")
    assert (info.size, info.content_type, info.acl) == (len(data), "video/mp4", "public-read")
    if isinstance(storage, S3Storage):  # a multipart upload's ETag ends with its part count
        assert info.etag.endswith("-2"), info.etag
    dest = tmp_path / "back.mp4"
    storage.get_file("media", "big.mp4", dest)
    assert dest.read_bytes() == data
    assert storage.read_range("media", "big.mp4", 5 * MiB - 3, 6) == data[5 * MiB - 3 : 5 * MiB + 3]


def test_presigned_urls(storage: ObjectStorage) -> None:
    storage.create_bucket("media")
    storage.put_bytes("media", "p.txt", b"hello", acl="private", content_type="text/plain")
    url = storage.presigned_url("media", "p.txt", 60)
    if storage.is_local():
        assert url is None  # openkvs serves these objects itself (/objects)
    else:
        assert url is not None and _fetch(url) == (200, b"hello")


# -- S3 only: what the store itself records, and how its failures are told apart -----------


def test_s3_acl_header_and_bucket_prefix(moto_s3: MotoS3) -> None:
    prefix = unique_prefix()
    storage = S3Storage(moto_s3.config(bucket_prefix=prefix))
    quiet = S3Storage(moto_s3.config(bucket_prefix=prefix, send_acl=False))
    storage.create_bucket("media")
    client = moto_s3.client()
    assert prefix + "media" in [b["Name"] for b in client.list_buckets()["Buckets"]]
    client.create_bucket(Bucket=prefix + "made-elsewhere")
    client.create_bucket(Bucket="other-" + prefix + "x")  # not ours: not listed
    assert storage.list_buckets() == ["made-elsewhere", "media"]

    storage.put_bytes("media", "pub.txt", b"1", acl="public-read", content_type="text/plain")
    storage.put_bytes("media", "priv.txt", b"1", acl="private", content_type="text/plain")
    quiet.put_bytes("media", "quiet.txt", b"1", acl="public-read", content_type="text/plain")

    def everyone_reads(key: str) -> bool:
        grants = client.get_object_acl(Bucket=prefix + "media", Key=key)["Grants"]
        return any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)

    assert everyone_reads("pub.txt") and not everyone_reads("priv.txt")
    assert not everyone_reads("quiet.txt")  # no x-amz-acl sent...
    assert storage.object_info("media", "quiet.txt").acl == "public-read"  # ...but recorded

    # An object openkvs did not write: its ACL is read from the store.
    client.put_object(Bucket=prefix + "media", Key="ext.txt", Body=b"1", ACL="public-read")
    assert storage.object_info("media", "ext.txt").acl == "public-read"
    client.put_object(Bucket=prefix + "media", Key="ext2.txt", Body=b"1")
    assert storage.object_info("media", "ext2.txt").acl == "private"


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error("NoSuchBucket", 404), NotFound),
        (_client_error("NoSuchKey", 404), NotFound),
        (_client_error("404", 404), NotFound),  # HEAD answers carry no code
        (_client_error("AccessDenied", 403), AccessDenied),
        (_client_error("InvalidAccessKeyId", 403), AccessDenied),
        (_client_error("SignatureDoesNotMatch", 403), AccessDenied),
        (_client_error("403", 403), AccessDenied),
        (_client_error("SlowDown", 503), Unavailable),
        (_client_error("InternalError", 500), Unavailable),
        (_client_error("502", 502), Unavailable),
        (EndpointConnectionError(endpoint_url="http://x"), Unavailable),
        (ReadTimeoutError(endpoint_url="http://x"), Unavailable),
        (_client_error("InvalidArgument", 400), StorageError),
    ],
)
def test_s3_errors_are_translated(error: Exception, kind: type[StorageError]) -> None:
    found = translate(error, "what")
    assert type(found) is kind
    assert str(found).startswith("what: ")


def test_s3_unreachable_is_unavailable() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    storage = S3Storage(
        S3Config(
            endpoint_url=closed,
            access_key_id="k",
            secret_access_key="s",
            timeout=2.0,
            max_attempts=1,
        )
    )
    with pytest.raises(Unavailable):
        storage.bucket_exists("media")
    with pytest.raises(Unavailable):
        storage.put_bytes("media", "k", b"", acl="private", content_type="x/y")
