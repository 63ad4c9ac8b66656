"""Bucket names, object keys and source paths: nothing escapes its bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkvs.errors import ApiError
from openkvs.storage.base import StorageError
from openkvs.storage.keys import parse_source_path, validate_bucket, validate_key
from openkvs.storage.local import LocalStorage


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "a/../../b",
        "a/./b",
        "/abs/key",
        "a\\..\\b",
        "a\x00b",
        "a//b",
        "",
        "dir/",
        "..",
        ".",
        "a/..",
        "x" * 1025,
        "tab\tkey",
    ],
)
def test_bad_keys_are_1014(key: str) -> None:
    with pytest.raises(ApiError) as info:
        validate_key(key)
    assert info.value.code == 1014


@pytest.mark.parametrize("key", ["a", "a/b/c.mp3", "中文/歌.mp3", "a..b", "...x", "a b+c=d"])
def test_good_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("name", ["A", "ab", "-ab", "a_b", "a..b", "x" * 64, "..", "a/b"])
def test_bad_buckets_are_1011(name: str) -> None:
    with pytest.raises(ApiError) as info:
        validate_bucket(name)
    assert info.value.code == 1011


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("", 1016),
        ("bucket/key", 1016),
        ("/bucket", 1016),
        ("/bucket/", 1016),
        ("/Bad_Bucket/k", 1011),
        ("/media/../x", 1014),
        ("/media/" + "k" * 1100, 1213),
        (42, 1016),
    ],
)
def test_bad_source_paths(path: object, code: int) -> None:
    with pytest.raises(ApiError) as info:
        parse_source_path(path)
    assert info.value.code == code


def test_source_path() -> None:
    assert parse_source_path("/media/a/b.mp3") == ("media", "a/b.mp3")


def test_local_storage_round_trip_and_containment(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "buckets")
    storage.create_bucket("media")
    assert storage.list_buckets() == ["media"]
    storage.put_bytes(
        "media", "a/b.json", b"{}", acl="public-read", content_type="application/json"
    )
    assert storage.object_exists("media", "a/b.json")
    info = storage.object_info("media", "a/b.json")
    assert (info.key, info.size, info.acl, info.content_type) == (
        "a/b.json",
        2,
        "public-read",
        "application/json",
    )
    with pytest.raises(ApiError):
        storage.object_exists("media", "../outside")
    with pytest.raises(StorageError):
        storage.put_bytes("nobucket", "k", b"", acl="private", content_type="x")
    # a symlink inside a bucket that points outside is refused too
    (tmp_path / "secret").write_text("s")
    (tmp_path / "buckets" / "media" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(StorageError):
        storage.source_for("media", "link")


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("a/\ud800.mp3", "surrogate"),
        ("\udfff", "surrogate"),
        ("a" * 251, "segment longer than 250"),
        ("dir/" + "长" * 84 + "/x", "segment longer than 250"),
    ],
)
def test_keys_the_filesystem_could_not_hold_are_1014(key: str, why: str) -> None:
    with pytest.raises(ApiError, match=why) as info:
        validate_key(key)
    assert info.value.code == 1014


def test_segments_up_to_the_limit_are_written(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "buckets")
    storage.create_bucket("media")
    for key in ("a" * 250, "d/" + "长" * 83 + "x"):  # 250 bytes, its metadata file 255
        storage.put_bytes("media", validate_key(key), b"x", acl="private", content_type="x")
        assert storage.object_exists("media", key)


def test_source_paths_are_measured_in_bytes() -> None:
    path = "/media/" + "长/" * 300 + "x"  # 909 characters, 1207 bytes
    with pytest.raises(ApiError) as info:
        parse_source_path(path)
    assert info.value.code == 1213
    with pytest.raises(ApiError) as info:
        parse_source_path("/media/\ud800")
    assert info.value.code == 1014
    with pytest.raises(ApiError) as info:
        parse_source_path("/media\n/x")  # the bucket pattern matches whole names only
    assert info.value.code == 1011
