"""Presigned object URLs: what the signature covers, expiry, and the Expires parameter."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from openkvs import config
from openkvs.errors import ApiError
from openkvs.service.presign import (
    DEFAULT_EXPIRES,
    MAX_EXPIRES,
    expires_in,
    full_url,
    object_path,
    presigned_path,
    signature,
    verify,
)
from openkvs.store.secrets import Sealer

KEY = Sealer(bytes(range(32))).derive("presign")
NOW = 1_800_000_000


def _query(path: str) -> tuple[str, str, str]:
    parts = urlsplit(path)
    query = parse_qs(parts.query)
    return parts.path, query["Expires"][0], query["Signature"][0]


def test_a_presigned_path_verifies_until_it_expires() -> None:
    path = presigned_path(KEY, "media", "in/a b+c/é.mp3", NOW + 60)
    where, expires, sig = _query(path)
    assert where == "/objects/media/in/a%20b%2Bc/%C3%A9.mp3"
    assert unquote(where) == "/objects/media/in/a b+c/é.mp3"
    assert expires == str(NOW + 60)
    assert verify(KEY, "media", "in/a b+c/é.mp3", expires, sig, NOW)
    assert verify(KEY, "media", "in/a b+c/é.mp3", expires, sig, NOW + 60)  # last second
    assert not verify(KEY, "media", "in/a b+c/é.mp3", expires, sig, NOW + 61)  # expired


def test_the_signature_covers_bucket_key_and_expiry() -> None:
    sig = signature(KEY, "media", "a.mp3", NOW + 60)
    assert verify(KEY, "media", "a.mp3", str(NOW + 60), sig, NOW)
    assert not verify(KEY, "other", "a.mp3", str(NOW + 60), sig, NOW)
    assert not verify(KEY, "media", "b.mp3", str(NOW + 60), sig, NOW)
    assert not verify(KEY, "media", "a.mp3", str(NOW + 61), sig, NOW)
    other_key = Sealer(bytes(32)).derive("presign")
    assert not verify(other_key, "media", "a.mp3", str(NOW + 60), sig, NOW)
    # the value is HMAC-SHA256 of the documented message, base64url without padding
    message = b"openkvs-presign-v1\nmedia\na.mp3\n" + str(NOW + 60).encode()
    digest = hmac.new(KEY, message, hashlib.sha256).digest()
    assert sig == base64.urlsafe_b64encode(digest).decode().rstrip("=")


@pytest.mark.parametrize(
    ("expires", "sig"),
    [
        (None, "x"),
        (str(NOW + 60), None),
        ("", ""),
        ("-5", "x"),
        ("1e10", "x"),
        ("9" * 40, "x"),
        ("١٢٣", "x"),  # non-ASCII digits
        (str(NOW + 60), "é" * 43),  # non-ASCII signature: refused, not an exception
        (str(NOW + 60), "\udc80"),  # a lone surrogate
    ],
)
def test_malformed_queries_are_refused(expires: str | None, sig: str | None) -> None:
    assert not verify(KEY, "media", "a.mp3", expires, sig, NOW)


def test_a_key_that_is_not_utf8_is_1014() -> None:
    with pytest.raises(ApiError) as caught:
        object_path("media", "bad\udc80.mp3")
    assert caught.value.code == 1014


def test_expires_parameter() -> None:
    assert expires_in({}) == DEFAULT_EXPIRES == 3600
    assert expires_in({"Expires": ""}) == DEFAULT_EXPIRES
    assert expires_in({"Expires": "60"}) == 60
    assert expires_in({"Expires": MAX_EXPIRES}) == MAX_EXPIRES == 7 * 86400
    for bad in (0, -1, MAX_EXPIRES + 1, "soon", 2**60, True):
        with pytest.raises(ApiError) as caught:
            expires_in({"Expires": bad})
        assert caught.value.code == 1001


def test_full_url() -> None:
    assert full_url("", "/objects/m/a") == ""
    assert full_url("https://media.example.org", "/objects/m/a") == (
        "https://media.example.org/objects/m/a"
    )
    assert full_url("https://example.org/kvs/", "/objects/m/a") == (
        "https://example.org/kvs/objects/m/a"
    )


def test_public_url_setting() -> None:
    assert config.load({}).public_url == ""
    loaded = config.load({"OPENKVS_PUBLIC_URL": " https://media.example.org/ "})
    assert loaded.public_url == "https://media.example.org"
    for bad in ("media.example.org", "ftp://x.org", "https://x.org/?a=1", "https://u:p@x.org"):
        with pytest.raises(config.ConfigError, match="OPENKVS_PUBLIC_URL"):
            config.load({"OPENKVS_PUBLIC_URL": bad})
