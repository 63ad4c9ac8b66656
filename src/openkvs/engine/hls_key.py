"""ExtParam ``hlsKey`` (spec §3.8): the AES-128 key of an encrypted HLS output.

Pure. Accepted forms (anything else is 1018):

- a string of 32 hex digits: the 128-bit key;
- an object ``{"key": "<32 hex>", "url": "<key URI>", "iv": "<32 hex>", "acl": "private"}``,
  only ``key`` required. ``url`` is what the playlists give as the key's URI (absolute, or
  relative to the playlist; default the key object's own name, ``<playlist stem>.key``);
  ``iv`` a fixed IV (default: each segment's sequence number, as HLS defines); ``acl`` the
  key object's ACL (default ``private``: players then get the key from the URL the
  operator serves it at).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.errors import ApiError

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
KEY_ACLS = ("private", "public-read")
MAX_URL = 1024


@dataclass(frozen=True)
class HlsKey:
    """ExtParam ``hlsKey``, checked: the AES-128 key and IV as hex, the URL the playlists
    give for the key ("" = the key object's name, relative to the playlist) and the ACL of
    the key object."""

    key: str
    url: str = ""
    iv: str = ""
    acl: str = "private"


def parse_key(raw: Any) -> HlsKey | None:
    """ExtParam ``hlsKey``: 32 hex digits (the key), or an object ``{"key": hex, "url":
    text, "iv": hex, "acl": "private"|"public-read"}`` (only ``key`` required); 1018 when it
    is anything else."""
    if raw in (None, "", 0, "0"):
        return None
    if isinstance(raw, str):
        raw = {"key": raw}
    if not isinstance(raw, Mapping):
        raise ApiError(1018, "ExtParam hlsKey must be 32 hex digits or an object {key, url, iv}")
    unknown = sorted(set(raw) - {"key", "url", "iv", "acl"})
    if unknown:
        raise ApiError(1018, f"ExtParam hlsKey has unknown keys {unknown} (key, url, iv, acl)")
    key, iv, url = raw.get("key"), raw.get("iv", ""), raw.get("url", "")
    if not isinstance(key, str) or not _HEX32.fullmatch(key):
        raise ApiError(1018, "ExtParam hlsKey.key must be 32 hex digits (a 128-bit AES key)")
    if iv not in (None, "") and (not isinstance(iv, str) or not _HEX32.fullmatch(iv)):
        raise ApiError(1018, "ExtParam hlsKey.iv must be 32 hex digits (a 128-bit IV)")
    bad_url = not isinstance(url, str) or len(url) > MAX_URL
    if bad_url or any(c in str(url) for c in '"\r\n\x00'):
        raise ApiError(1018, f"ExtParam hlsKey.url must be a URL or a name of at most {MAX_URL} "
                             "characters, without quotes or line breaks")  # fmt: skip
    acl = raw.get("acl") or "private"
    if acl not in KEY_ACLS:
        raise ApiError(1018, "ExtParam hlsKey.acl must be private or public-read")
    return HlsKey(key.lower(), str(url or ""), str(iv or "").lower(), str(acl))
