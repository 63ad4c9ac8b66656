"""Object URLs: where an object is served, and presigned URLs for private objects.

Every object is served at ``/objects/<bucket>/<key>`` (``api/objects.py``): a
``public-read`` object to anyone, a private one only with a presigned query
``?Expires=<unix seconds>&Signature=<base64url>``. The signature is HMAC-SHA256, keyed with
the data key's ``presign`` subkey, over the bucket, the key and the expiry: the same URL
works for ``GET`` and ``HEAD``, and any change to one of them makes it invalid.

``GetObjectURL`` (an openkvs extension) issues such a URL for an object its caller may read;
``openkvs presign`` does the same for the operator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import quote

from openkvs.errors import ApiError, invalid
from openkvs.model import User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.sources import check_source

#: The subkey purpose (``Sealer.derive``) of presigned URLs.
PURPOSE = "presign"
PREFIX = "/objects"
DEFAULT_EXPIRES = 3600
MAX_EXPIRES = 7 * 86400
_VERSION = b"openkvs-presign-v1"
#: Longest ``Expires`` value read from a URL (unix seconds have 10 digits until 2286).
_MAX_EXPIRES_DIGITS = 12


def object_path(bucket: str, key: str) -> str:
    """The URL path of an object: ``/objects/<bucket>/<key>``, the key percent-encoded
    (``/`` kept). 1014 for a key that is not valid UTF-8 text (a lone surrogate)."""
    try:
        quoted = quote(key.encode("utf-8"), safe="/")
    except UnicodeEncodeError as exc:
        raise ApiError(1014, "the object key is not valid UTF-8 text") from exc
    return f"{PREFIX}/{bucket}/{quoted}"


def signature(signing_key: bytes, bucket: str, key: str, expires_at: int) -> str:
    """The ``Signature`` of a presigned URL (unpadded URL-safe base64 of the HMAC)."""
    message = b"\n".join(
        [_VERSION, bucket.encode("ascii"), key.encode("utf-8"), str(expires_at).encode("ascii")]
    )
    digest = hmac.new(signing_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def presigned_path(signing_key: bytes, bucket: str, key: str, expires_at: int) -> str:
    """Path and query of a URL that serves the object until ``expires_at`` (unix seconds)."""
    where = object_path(bucket, key)
    return (
        f"{where}?Expires={expires_at}&Signature={signature(signing_key, bucket, key, expires_at)}"
    )


def verify(
    signing_key: bytes,
    bucket: str,
    key: str,
    expires: str | None,
    sig: str | None,
    now: float,
) -> bool:
    """Whether ``Expires``/``Signature`` (as found in a URL) allow reading the object now.

    The signature is compared in constant time; an expired URL is refused even when its
    signature is right."""
    if not expires or not sig:
        return False
    if not expires.isascii() or not expires.isdigit() or len(expires) > _MAX_EXPIRES_DIGITS:
        return False
    expires_at = int(expires)
    try:
        expected = signature(signing_key, bucket, key, expires_at)
    except UnicodeEncodeError:
        return False
    good = hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace"))
    return good and now <= expires_at


def expires_in(params: p.Params) -> int:
    """``Expires``: seconds the URL stays valid, 1 to :data:`MAX_EXPIRES` (1001 otherwise),
    :data:`DEFAULT_EXPIRES` when not given."""
    if not p.given(params, "Expires"):
        return DEFAULT_EXPIRES
    seconds = p.to_int("Expires", params["Expires"])
    if not 1 <= seconds <= MAX_EXPIRES:
        raise invalid("Expires", f"must be between 1 and {MAX_EXPIRES} seconds, got {seconds}")
    return seconds


def full_url(base_url: str, path: str) -> str:
    """``path`` under ``base_url`` (``OPENKVS_PUBLIC_URL``); "" when there is none."""
    return base_url.rstrip("/") + path if base_url else ""


def get_object_url(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    """GetObjectURL: a presigned URL of ``SrcPath`` (``/bucket/key`` or ``bucket/key``).

    Answers ``Path`` (path and query, to put after the service's address), ``URL`` (the
    full URL when ``OPENKVS_PUBLIC_URL`` is set, else "") and ``ExpireTime`` (unix
    seconds). Errors: 1000 no SrcPath; 1001 a bad Expires; 1016/1213/1011/1014 a malformed
    path; 1011 no such bucket; 1212 a bucket the user may not read; 1210 no such object.
    """
    raw = p.required_str(params, "SrcPath")
    path = raw if raw.startswith("/") else "/" + raw
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no object can have that name
        raise ApiError(1014, "SrcPath is not valid UTF-8 text") from exc
    seconds = expires_in(params)
    bucket, key = check_source(services.storage, services.buckets, user, path)
    expires_at = int(services.clock()) + seconds
    found = presigned_path(services.sealer.derive(PURPOSE), bucket, key, expires_at)
    return {
        "Path": found,
        "URL": full_url(services.settings.public_url, found),
        "ExpireTime": expires_at,
    }
